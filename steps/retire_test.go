package steps

import (
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

func TestRetirementRemovesOnlyPairsThatLeft(t *testing.T) {
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: h1, address: 192.0.2.1}
  - {name: h2, address: 192.0.2.2}
  - {name: h3, address: 192.0.2.3}
clusters:
  - {name: cluster1, servers: [h1]}
  - {name: cluster2, servers: [h2]}
  - {name: cluster3, servers: [h3]}
meshes:
  - {name: mesh3, clusters: [cluster1, cluster2]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	retire := Retirement(p, RemovalOptions{})
	secret := engine.StepRecord{Kind: plans.KindIstioRemoteSecret}
	tests := []struct {
		id     string
		rec    engine.StepRecord
		remove bool
	}{
		{"mesh/mesh1/remotesecret/cluster2->cluster1", secret, false}, // the pair moved to mesh3
		{"mesh/mesh1/remotesecret/cluster3->cluster1", secret, true},  // cluster3 left the mesh
		{"mesh/mesh1/remotesecret/cluster1->cluster9", secret, true},  // cluster9 left the plan: revoke its token in cluster1
		{"mesh/mesh1/remotesecret/cluster8->cluster9", secret, false}, // both left the plan
		{"cluster/cluster3/istio/controlplane", engine.StepRecord{Kind: plans.KindIstioControlPlane}, true},
		{"cluster/cluster3/istio/namespace", engine.StepRecord{Kind: plans.KindIstioNamespace}, true},
		{"cluster/cluster3/kubeconfig/fetch", engine.StepRecord{Kind: plans.KindKubeconfigFetch}, true},
		{"mesh/mesh1/ca/root", engine.StepRecord{Kind: plans.KindCARoot}, true},
		{"host/h3/facts", engine.StepRecord{Kind: plans.KindHostFacts}, false},
		{"host/h3/k3s/server", engine.StepRecord{Kind: plans.KindK3sServer}, false}, // not built yet: only forgotten
	}
	for _, tt := range tests {
		if got := retire(tt.id, tt.rec) != nil; got != tt.remove {
			t.Errorf("%s: remove = %v, want %v", tt.id, got, tt.remove)
		}
	}
	// Destroying a pair the plan has removes it.
	pair := plans.RemoteSecretID("mesh3", "cluster2", "cluster1")
	if Retirement(p, RemovalOptions{})(pair, secret) != nil {
		t.Errorf("%s removed while the plan keeps it", pair)
	}
	if Retirement(p, RemovalOptions{Destroying: []string{pair}})(pair, secret) == nil {
		t.Errorf("%s not removed when destroyed", pair)
	}
}
