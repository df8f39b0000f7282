package steps

import (
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// TestCheckInstalledClustersKept: a cluster mcplan installed (the state
// records its k3s on hosts) that the plan now gives by kubeconfig is
// refused, naming the cluster, its hosts and what to do; k3s records of
// the plan, of clusters still installed or gone from the plan, and of
// other clusters pass.
func TestCheckInstalledClustersKept(t *testing.T) {
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: h1, address: 192.0.2.1}
clusters:
  - {name: cluster1, servers: [h1]}
  - name: cluster2
    kubeconfig: {path: user.kubeconfig}
    api: {meshAddress: 192.0.2.20}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	k3s := func(kind, cluster string, status engine.Status) engine.StepRecord {
		return engine.StepRecord{Kind: kind, Status: status, Outputs: map[string]string{K3sOutputCluster: cluster}}
	}
	for _, tt := range []struct {
		name    string
		records map[string]engine.StepRecord
		want    []string // nil for no error
	}{
		{"cluster1's server is in the plan", map[string]engine.StepRecord{
			"host/h1/k3s/server": k3s(plans.KindK3sServer, "cluster1", engine.StatusSucceeded)}, nil},
		{"a host of cluster1 left it", map[string]engine.StepRecord{
			"host/h9/k3s/join": k3s(plans.KindK3sJoin, "cluster1", engine.StatusSucceeded)}, nil},
		{"a cluster that left the plan", map[string]engine.StepRecord{
			"host/h9/k3s/server": k3s(plans.KindK3sServer, "cluster3", engine.StatusSucceeded)}, nil},
		{"cluster2 was installed by mcplan", map[string]engine.StepRecord{
			"host/h2/k3s/server": k3s(plans.KindK3sServer, "cluster2", engine.StatusSucceeded),
			"host/h3/k3s/join":   k3s(plans.KindK3sJoin, "cluster2", engine.StatusSucceeded),
			"host/h1/k3s/server": k3s(plans.KindK3sServer, "cluster1", engine.StatusSucceeded)},
			[]string{"plan.yaml:9:17: clusters[1].kubeconfig: cluster cluster2 is given by kubeconfig, but mcplan installed it", "hosts h2, h3", "destroy the cluster first", "keep its servers and agents in the plan"}},
		{"cluster2's removal failed earlier", map[string]engine.StepRecord{
			"host/h2/k3s/server": k3s(plans.KindK3sServer, "cluster2", engine.StatusRemoving)},
			[]string{"clusters[1].kubeconfig: cluster cluster2", "hosts h2"}},
		{"other records of cluster2", map[string]engine.StepRecord{
			plans.KubeconfigFetchID("cluster2"): {Kind: plans.KindKubeconfigFetch, Status: engine.StatusSucceeded}}, nil},
		{"a record of an older mcplan (no cluster)", map[string]engine.StepRecord{"host/h2/k3s/server": {Kind: plans.KindK3sServer}}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckInstalledClustersKept(p, tt.records)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}
