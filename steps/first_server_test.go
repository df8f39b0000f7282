package steps

import (
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// firstServerPlan is cluster1 with h2 named first and h3 a later server;
// h1, which initialised it, left the plan.
func firstServerPlan(t *testing.T) *plans.Plan {
	t.Helper()
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: h2, address: 192.0.2.2}
  - {name: h3, address: 192.0.2.3}
  - {name: h4, address: 192.0.2.4}
clusters:
  - {name: cluster1, servers: [h2, h3], agents: [h4]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	return p
}

// serverRecord is a finished k3s/server record of cluster1.
func serverRecord(first string, status engine.Status) engine.StepRecord {
	return engine.StepRecord{Kind: plans.KindK3sServer, Status: status,
		Outputs: map[string]string{K3sOutputCluster: "cluster1", K3sOutputFirst: first}}
}

func TestCheckFirstServer(t *testing.T) {
	p := firstServerPlan(t)
	for _, tt := range []struct {
		name    string
		records map[string]engine.StepRecord
		want    string // "" for no error
	}{
		{"a new cluster", nil, ""},
		{"the first server stays first", map[string]engine.StepRecord{
			"host/h2/k3s/server": serverRecord("true", engine.StatusSucceeded),
		}, ""},
		{"a joined server becomes first", map[string]engine.StepRecord{
			"host/h1/k3s/server": serverRecord("true", engine.StatusSucceeded),
			"host/h2/k3s/server": serverRecord("false", engine.StatusSucceeded),
		}, ""},
		{"a host that never joined becomes first", map[string]engine.StepRecord{
			"host/h1/k3s/server": serverRecord("true", engine.StatusSucceeded),
		}, "plan.yaml: clusters[cluster1].servers[0] is h2, but h1 is the server that initialised the cluster and h2 has not joined it as a server"},
		{"a server whose join failed becomes first", map[string]engine.StepRecord{
			"host/h1/k3s/server": serverRecord("true", engine.StatusSucceeded),
			"host/h2/k3s/server": serverRecord("false", engine.StatusFailed),
		}, "h2 has not joined it as a server"},
		{"the first server of another cluster", map[string]engine.StepRecord{
			"host/h1/k3s/server": {Kind: plans.KindK3sServer, Status: engine.StatusSucceeded,
				Outputs: map[string]string{K3sOutputCluster: "cluster9", K3sOutputFirst: "true"}},
		}, ""},
	} {
		err := CheckFirstServer(p, tt.records)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}

// TestFirstServerLeavesForAJoinedOne: the server that initialised
// cluster1 leaves it when the plan names a joined server first; it is
// then drained, deleted and uninstalled as a joined server, through the
// new first server. Without a joined server named first it is refused.
func TestFirstServerLeavesForAJoinedOne(t *testing.T) {
	p := firstServerPlan(t)
	reach := `{"name":"h1","address":"192.0.2.1","ssh":{"user":"root","port":22}}`
	records := func(h2 engine.StepRecord) func(string) (engine.StepRecord, bool) {
		return func(id string) (engine.StepRecord, bool) {
			switch id {
			case plans.HostFactsID("h1"):
				return engine.StepRecord{Kind: plans.KindHostFacts, Outputs: map[string]string{HostOutputReach: reach}}, true
			case plans.K3sServerID("h2"):
				return h2, true
			}
			return engine.StepRecord{}, false
		}
	}
	oldFirst := serverRecord("true", engine.StatusSucceeded)

	r := Retirement(p, RemovalOptions{Runtime: NewRuntime(p, nil), Records: records(serverRecord("false", engine.StatusSucceeded))})(plans.K3sServerID("h1"), oldFirst)
	n, ok := r.(*K3sNode)
	if !ok || !n.drains() || n.cluster.Name != "cluster1" {
		t.Fatalf("the old first server with a joined server named first: %#v, want drained, deleted and uninstalled", r)
	}
	if got, want := n.Describe(nil), "drains and deletes node h1, then runs /usr/local/bin/k3s-uninstall.sh on it"; got != want {
		t.Errorf("describe: %q, want %q", got, want)
	}

	r = Retirement(p, RemovalOptions{Runtime: NewRuntime(p, nil), Records: records(engine.StepRecord{})})(plans.K3sServerID("h1"), oldFirst)
	refused, ok := r.(refusedRemoval)
	if !ok || !strings.Contains(refused.err.Error(), "host h1, the server the others joined, leaves cluster cluster1, which stays in the plan: clusters[cluster1].servers[0] is h2") {
		t.Errorf("the old first server with a new host named first: %#v, want refused", r)
	}
}
