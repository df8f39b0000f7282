package steps

import (
	"strings"
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
  - {name: h4, address: 192.0.2.4}
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
	// Host steps, with a runtime: an agent or a whole cluster may go, a
	// server of a cluster that stays may not.
	withHosts := Retirement(p, RemovalOptions{Runtime: NewRuntime(p, nil)})
	k3s := func(kind, cluster string) engine.StepRecord {
		return engine.StepRecord{Kind: kind, Outputs: map[string]string{K3sOutputCluster: cluster}}
	}
	if r, ok := withHosts("host/h4/k3s/server", k3s(plans.KindK3sServer, "cluster9")).(*K3sNode); !ok || !r.noDrain {
		t.Errorf("a server of a cluster that left the plan: %#v, want an undrained uninstall", r)
	}
	if r, ok := withHosts("host/h4/k3s/join", k3s(plans.KindK3sJoin, "cluster2")).(*K3sNode); !ok || r.noDrain || r.cluster.Name != "cluster2" {
		t.Errorf("an agent leaving cluster2: %#v, want a drain through cluster2", r)
	}
	r := withHosts("host/h4/k3s/server", k3s(plans.KindK3sServer, "cluster2"))
	if _, ok := r.(refusedRemoval); !ok || !strings.Contains(r.(refusedRemoval).err.Error(), "host h4 leaves the servers of cluster cluster2, which stays in the plan") {
		t.Errorf("a server leaving a cluster that stays: %#v, want refused", r)
	}
	joined := k3s(plans.KindK3sServer, "cluster2")
	joined.Outputs[K3sOutputFirst] = "false"
	if r, ok := withHosts("host/h4/k3s/server", joined).(*K3sNode); !ok || !r.drains() {
		t.Errorf("a joined server leaving a cluster that stays: %#v, want drained and deleted, then uninstalled", r)
	}
	if withHosts("host/h9/k3s/join", k3s(plans.KindK3sJoin, "cluster2")) != nil {
		t.Error("a host that left the plan, and whose reach is not recorded, is reached")
	}
	// A host that left the plan is reached as its host/facts record says.
	reach := `{"name":"h9","address":"192.0.2.9","ssh":{"user":"ops","port":2222,"identityFile":"/keys/id","knownHosts":"/keys/known_hosts"}}`
	rt := NewRuntime(p, nil)
	records := func(id string) (engine.StepRecord, bool) {
		if id == plans.HostFactsID("h9") {
			return engine.StepRecord{Kind: plans.KindHostFacts, Outputs: map[string]string{HostOutputReach: reach}}, true
		}
		return engine.StepRecord{}, false
	}
	left := Retirement(p, RemovalOptions{Runtime: rt, Records: records})("host/h9/k3s/join", k3s(plans.KindK3sJoin, "cluster2"))
	if n, ok := left.(*K3sNode); !ok || n.host.Address != "192.0.2.9" {
		t.Fatalf("a recorded host that left the plan: %#v", left)
	}
	ep, err := rt.Endpoint("h9")
	if err != nil || ep.Address != "192.0.2.9" || ep.Port != 2222 || ep.User != "ops" || ep.IdentityFile != "/keys/id" || ep.KnownHosts != "/keys/known_hosts" {
		t.Errorf("endpoint of the recorded host: %+v %v", ep, err)
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
