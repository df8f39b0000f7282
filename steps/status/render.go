package status

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText prints a report as tables, cluster by cluster, each followed
// by its problems, then the verdict.
func WriteText(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan %s, read %s\n", r.Plan, r.ReadAt.Format(time.RFC3339))
	a := r.LastApply
	fmt.Fprintf(&b, "Last apply: %s, took %s: %s (%d steps)\n", a.StartedAt.Format(time.RFC3339), a.FinishedAt.Sub(a.StartedAt).Round(time.Millisecond), a.Result(), a.Steps)
	writeProblems(&b, "", r.Problems)
	for _, c := range r.Clusters {
		writeCluster(&b, c)
	}
	if n := r.ProblemCount(); n > 0 {
		fmt.Fprintf(&b, "\nNot healthy: %s.\n", plural(n, "problem"))
	} else {
		b.WriteString("\nHealthy.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints a report as one JSON document, with healthy and the
// problem count beside it.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		Healthy      bool `json:"healthy"`
		ProblemCount int  `json:"problemCount"`
		*Report
	}{r.Healthy(), r.ProblemCount(), r})
}

func writeCluster(b *strings.Builder, c Cluster) {
	fmt.Fprintf(b, "\n%s", c.Name)
	if c.Mesh != "" {
		fmt.Fprintf(b, " (mesh %s)", c.Mesh)
	}
	b.WriteString("\n")
	if c.Unreachable == "" {
		writeNodes(b, c.Nodes)
		for _, ist := range c.Istiods {
			writeIstiod(b, ist)
		}
		if ew := c.EastWest; ew != nil {
			addrs := strings.Join(ew.Addresses, ", ")
			switch {
			case ew.Missing:
				addrs = "Service missing"
			case addrs == "":
				addrs = "no address"
			}
			fmt.Fprintf(b, "  east-west gateway: %s\n", addrs)
		}
	}
	writeCredentials(b, c)
	writeProblems(b, "  ", c.Problems)
}

func writeNodes(b *strings.Builder, nodes []Node) {
	if len(nodes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NODE\tREADY\tK3S")
	for _, n := range nodes {
		ready, version := "Ready", dash(n.KubeletVersion)
		switch {
		case n.Missing:
			ready = "MISSING (a host of the plan, not a node)"
		case !n.Ready:
			ready = "NOT READY (" + n.Condition + ")"
		}
		name := n.Name
		if !n.InPlan {
			name += " (not in the plan)"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, ready, version)
	}
	tw.Flush()
}

func writeIstiod(b *strings.Builder, ist Istiod) {
	state := "Ready"
	switch {
	case ist.Missing:
		state = "MISSING (the plan's revision)"
	case !ist.Ready:
		state = "NOT READY (" + ist.State + ")"
	}
	expected := ""
	if !ist.Expected {
		expected = " (not the plan's revision)"
	}
	if ist.Pod != "" {
		state = ist.Pod + " " + state
	}
	fmt.Fprintf(b, "  istiod %s%s: %s\n", ist.Revision, expected, state)
	if ist.ReadError != "" {
		fmt.Fprintf(b, "    remote clusters not read: %s\n", ist.ReadError)
		return
	}
	if len(ist.RemoteClusters) == 0 {
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "    CLUSTER\tSECRET\tSYNC")
	for _, rc := range ist.RemoteClusters {
		sync := dash(rc.SyncStatus)
		switch {
		case rc.Missing:
			sync = "MISSING (the plan has istiod read it)"
		case rc.Local:
			sync += " (its own cluster)"
		case !rc.Expected:
			sync += " (not in the plan)"
		}
		fmt.Fprintf(tw, "    %s\t%s\t%s\n", rc.ID, dash(rc.Secret), sync)
	}
	tw.Flush()
}

func writeCredentials(b *strings.Builder, c Cluster) {
	if len(c.Credentials) == 0 {
		return
	}
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CREDENTIAL\tEXPIRES\tSTATUS")
	for _, cr := range c.Credentials {
		expires := "-"
		if !cr.NotAfter.IsZero() {
			expires = cr.NotAfter.Format("2006-01-02")
		}
		if cr.Note != "" {
			expires += " (" + cr.Note + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", cr.What, expires, cr.Status)
	}
	tw.Flush()
}

func writeProblems(b *strings.Builder, indent string, problems []string) {
	for _, p := range problems {
		fmt.Fprintf(b, "%sPROBLEM: %s\n", indent, p)
	}
}

// plural is "1 problem", "2 problems".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
