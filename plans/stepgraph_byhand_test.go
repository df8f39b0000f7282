package plans

import (
	"fmt"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// TestStepsOfClusterByKubeconfig pins the graph of a plan with one cluster
// mcplan installs and one given by kubeconfig: the latter has no host or
// k3s steps, its kubeconfig is imported, and its mesh steps are the same.
func TestStepsOfClusterByKubeconfig(t *testing.T) {
	p, err := LoadAndValidate("testdata/valid/byhand.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range Steps(p) {
		fmt.Fprintf(&b, "%s (%s) <- %s\n", s.ID, s.Kind, strings.Join(s.DependsOn, ", "))
		if s.Host != "" && s.Cluster == "cluster2" {
			t.Errorf("step %s of cluster2 works on host %s", s.ID, s.Host)
		}
	}
	golden.Check(t, "testdata/valid/byhand.steps", b.String())
}
