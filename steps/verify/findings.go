// Package verify checks that a mesh apply has built works, as the
// walkthrough's verification does by hand: the control plane's objects
// (ControlPlane), what each istiod tells the sidecars (XDS, Istio's ADS
// client through a port-forward) and traffic through the helloworld
// sample (Traffic). Run is what `mcplan verify` calls; the verify/sample
// step of package steps runs ControlPlane and XDS.
package verify

import (
	"fmt"
	"strings"
)

// Names of the verify checks, as `mcplan verify` prints them.
const (
	CheckAPI          = "api"          // the operator reaches the cluster's API
	CheckNetwork      = "network"      // istio-system carries the cluster's network label
	CheckCACerts      = "cacerts"      // Secret cacerts chains to the mesh root
	CheckEastWest     = "eastwest"     // the east-west gateway has an address
	CheckRemoteSecret = "remotesecret" // a remote secret's kubeconfig reads its cluster
	CheckTraffic      = "traffic"      // the sample answers from every version
	CheckIstiodCA     = "istiod-ca"    // istiod serves a chain through its cluster's intermediate
	CheckPodRoutes    = "podroutes"    // one network: every node routes the other clusters' pod CIDRs
)

// Finding is the outcome of one check on one object.
type Finding struct {
	Check   string
	Cluster string
	Object  string
	OK      bool
	// Detail says what was seen; for a failure also the likely fix.
	Detail string
}

// String is "cluster C: check X: object: detail".
func (f Finding) String() string {
	return fmt.Sprintf("cluster %s: %s: %s: %s", f.Cluster, f.Check, f.Object, f.Detail)
}

// Failed returns the findings that are not OK.
func Failed(fs []Finding) []Finding {
	var out []Finding
	for _, f := range fs {
		if !f.OK {
			out = append(out, f)
		}
	}
	return out
}

// FindingsError joins failed findings into one error, nil when all passed.
func FindingsError(fs []Finding) error {
	bad := Failed(fs)
	if len(bad) == 0 {
		return nil
	}
	lines := make([]string, len(bad))
	for i, f := range bad {
		lines[i] = "  " + f.String()
	}
	return fmt.Errorf("%d of %d checks failed:\n%s", len(bad), len(fs), strings.Join(lines, "\n"))
}
