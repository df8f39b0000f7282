package verify

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// CheckXDS is the name of the xDS check: what each istiod tells the
// sample's sidecars of every network.
const CheckXDS = "xds"

// HelloworldCluster is the Envoy cluster of the sample's Service, whose
// endpoints the xDS check reads.
const HelloworldCluster = "outbound|5000||" + SampleService + "." + SampleNamespace + ".svc.cluster.local"

// Verdicts of an XDSRow.
const (
	VerdictOK      = "OK"
	VerdictWrong   = "WRONG"   // received, but should not be
	VerdictMissing = "MISSING" // expected, not received
)

// XDSReport is what the istiod of one primary cluster tells a sidecar of
// one network for HelloworldCluster, compared with what the clusters say.
type XDSReport struct {
	// Primary is the cluster whose istiod was asked.
	Primary string `json:"primary"`
	// Network is the proxy's network, ProxyCluster its cluster, Proxy the
	// sleep pod it stood for ("sample/sleep-5d4f8 (10.42.0.7)").
	Network      string `json:"network"`
	ProxyCluster string `json:"proxyCluster,omitempty"`
	Proxy        string `json:"proxy,omitempty"`
	EnvoyCluster string `json:"envoyCluster"`
	// Istiod says how istiod was reached.
	Istiod string   `json:"istiod,omitempty"`
	Rows   []XDSRow `json:"rows"`
	// Causes name what is likely wrong, each with a fix.
	Causes []string `json:"causes,omitempty"`
	// Error says why istiod could not be asked (with a fix); then there
	// are no rows.
	Error string `json:"error,omitempty"`
}

// XDSRow is one endpoint received or expected.
type XDSRow struct {
	Endpoint string `json:"endpoint"`
	Port     uint32 `json:"port"`
	Locality string `json:"locality,omitempty"`
	// StandsFor says which cluster and network the endpoint stands for.
	StandsFor string `json:"standsFor"`
	Verdict   string `json:"verdict"`
	// Why explains a verdict other than OK.
	Why string `json:"why,omitempty"`
}

// OK says whether istiod answered and told the sidecar exactly what the
// clusters say.
func (r XDSReport) OK() bool {
	if r.Error != "" || len(r.Causes) > 0 {
		return false
	}
	for _, row := range r.Rows {
		if row.Verdict != VerdictOK {
			return false
		}
	}
	return true
}

// count returns how many rows have the verdict.
func (r XDSReport) count(verdict string) int {
	n := 0
	for _, row := range r.Rows {
		if row.Verdict == verdict {
			n++
		}
	}
	return n
}

// Title is the report's first line.
func (r XDSReport) Title() string {
	proxy := "a sidecar"
	if r.Proxy != "" {
		proxy = "sidecar " + r.Proxy
	}
	if r.ProxyCluster != "" {
		proxy += " of " + r.ProxyCluster
	}
	return fmt.Sprintf("istiod of %s -> %s on %s: %s", r.Primary, proxy, r.Network, r.EnvoyCluster)
}

// Finding is the report as one finding of the verify table.
func (r XDSReport) Finding() Finding {
	f := Finding{Check: CheckXDS, Cluster: r.Primary, Object: fmt.Sprintf("sidecar on %s", r.Network)}
	if r.Proxy != "" {
		f.Object = fmt.Sprintf("sidecar %s/%s on %s", r.ProxyCluster, strings.SplitN(r.Proxy, " ", 2)[0], r.Network)
	}
	switch {
	case r.Error != "":
		f.Detail = r.Error
	case r.OK():
		f.OK = true
		f.Detail = fmt.Sprintf("%d endpoints of %s/%s as the clusters say: %s", len(r.Rows), SampleNamespace, SampleService, r.summary())
	default:
		f.Detail = fmt.Sprintf("%d OK, %d wrong, %d missing. %s", r.count(VerdictOK), r.count(VerdictWrong), r.count(VerdictMissing), strings.Join(r.Causes, " "))
	}
	return f
}

// summary counts the rows: "1 pod IP of network1, 1 gateway".
func (r XDSReport) summary() string {
	pods, gateways := 0, 0
	for _, row := range r.Rows {
		if row.Port == CrossNetworkPort {
			gateways++
		} else {
			pods++
		}
	}
	return fmt.Sprintf("%s of %s, %s of other networks", plural(pods, "pod IP"), r.Network, plural(gateways, "gateway"))
}

// plural is "1 gateway", "2 gateways".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// WriteXDSReports writes each report as a table of its rows, then its
// causes or error.
func WriteXDSReports(w io.Writer, reports []XDSReport) error {
	for _, r := range reports {
		verdict := "OK"
		if !r.OK() {
			verdict = "FAILED"
		}
		if _, err := fmt.Fprintf(w, "xDS %s: %s\n", verdict, r.Title()); err != nil {
			return err
		}
		if r.Istiod != "" {
			fmt.Fprintf(w, "  asked %s\n", r.Istiod)
		}
		if r.Error != "" {
			fmt.Fprintf(w, "  Error: %s\n\n", r.Error)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ENDPOINT\tPORT\tLOCALITY\tSTANDS FOR\tRESULT")
		for _, row := range r.Rows {
			endpoint, locality := row.Endpoint, row.Locality
			if endpoint == "" {
				endpoint = "(none)"
			}
			if locality == "" {
				locality = "-"
			}
			result := row.Verdict
			if row.Why != "" {
				result += ": " + row.Why
			}
			fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\t%s\n", endpoint, row.Port, locality, row.StandsFor, result)
		}
		if len(r.Rows) == 0 {
			fmt.Fprintln(tw, "  (no endpoints)\t\t\t\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, c := range r.Causes {
			fmt.Fprintf(w, "  Cause: %s\n", c)
		}
		fmt.Fprintln(w)
	}
	return nil
}

// XDSReportsText is WriteXDSReports into a string.
func XDSReportsText(reports []XDSReport) string {
	var b strings.Builder
	_ = WriteXDSReports(&b, reports)
	return b.String()
}
