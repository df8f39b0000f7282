package steps

import (
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

func rolloutPlan(t *testing.T, version string) *plans.Plan {
	t.Helper()
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: h1, address: 192.0.2.1}
  - {name: h2, address: 192.0.2.2}
  - {name: h3, address: 192.0.2.3}
  - {name: h4, address: 192.0.2.4}
clusters:
  - {name: c1, servers: [h1, h2], agents: [h3], k3s: {version: `+version+`}}
  - {name: c2, servers: [h4], k3s: {version: v1.31.4+k3s1}}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	return p
}

func nodeRecord(outputs map[string]string) engine.StepRecord {
	return engine.StepRecord{Kind: plans.KindK3sServer, Status: engine.StatusSucceeded, Outputs: outputs}
}

func TestRollouts(t *testing.T) {
	p := rolloutPlan(t, "v1.32.1+k3s1")
	for _, tt := range []struct {
		name    string
		records map[string]engine.StepRecord
		want    []string
	}{
		{"a new plan", nil, nil},
		{"every node at the plan's release", map[string]engine.StepRecord{
			"host/h1/k3s/server": nodeRecord(map[string]string{K3sOutputRelease: "version=v1.32.1+k3s1", "version": "v1.32.1+k3s1"}),
			"host/h4/k3s/server": nodeRecord(map[string]string{K3sOutputRelease: "version=v1.31.4+k3s1", "version": "v1.31.4+k3s1"}),
		}, nil},
		{"c1's version changed", map[string]engine.StepRecord{
			"host/h1/k3s/server": nodeRecord(map[string]string{K3sOutputRelease: "version=v1.31.4+k3s1", "version": "v1.31.4+k3s1"}),
		}, []string{"c1"}},
		{"an interrupted upgrade: one node done, one not", map[string]engine.StepRecord{
			"host/h1/k3s/server": nodeRecord(map[string]string{K3sOutputRelease: "version=v1.32.1+k3s1"}),
			"host/h3/k3s/join":   nodeRecord(map[string]string{K3sOutputRelease: "version=v1.31.4+k3s1"}),
		}, []string{"c1"}},
		{"a record of an older mcplan, by its version", map[string]engine.StepRecord{
			"host/h2/k3s/server": nodeRecord(map[string]string{"version": "v1.31.4+k3s1"}),
		}, []string{"c1"}},
	} {
		records := func(id string) (engine.StepRecord, bool) { r, ok := tt.records[id]; return r, ok }
		got := Rollouts(p, records)
		for _, c := range []string{"c1", "c2"} {
			want := strings.Contains(strings.Join(tt.want, ","), c)
			if got[c] != want {
				t.Errorf("%s: %s rolling = %v, want %v", tt.name, c, got[c], want)
			}
		}
	}
}

func TestCheckUpgrades(t *testing.T) {
	installed := func(v string) func(string) (engine.StepRecord, bool) {
		return func(id string) (engine.StepRecord, bool) {
			if id == "host/h1/k3s/server" {
				return nodeRecord(map[string]string{"version": v}), true
			}
			return engine.StepRecord{}, false
		}
	}
	for _, tt := range []struct{ installed, wanted, err string }{
		{"v1.31.4+k3s1", "v1.32.1+k3s1", ""},
		{"v1.32.1+k3s1", "v1.31.4+k3s1", "plan.yaml:10:64: "},
		{"v1.32.1+k3s1", "v1.31.4+k3s1", "clusters[0].k3s.version: v1.31.4+k3s1 is older than the installed v1.32.1+k3s1: k3s does not support downgrades (cluster c1, host h1)"},
		{"v1.30.2+k3s1", "v1.32.1+k3s1", "v1.32.1+k3s1 skips a minor version from the installed v1.30.2+k3s1: upgrade through v1.31 first (cluster c1, host h1)"},
	} {
		err := CheckUpgrades(rolloutPlan(t, tt.wanted), installed(tt.installed))
		if (tt.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s -> %s: err %v, want %q", tt.installed, tt.wanted, err, tt.err)
		}
	}
}

func TestRolloutNote(t *testing.T) {
	p := rolloutPlan(t, "v1.32.1+k3s1")
	for _, tt := range []struct {
		id, want string
	}{
		{"host/h1/k3s/server", "server 1 of 2, after the etcd snapshot; drained first"},
		{"host/h2/k3s/server", "server 2 of 2, after host/h1/k3s/server; drained first"},
		{"host/h3/k3s/join", "agent 1 of 1, 1 at a time, after the servers; drained first"},
		{"host/h4/k3s/server", "server 1 of 1"},
	} {
		_, host, _ := plans.SubjectOfID(tt.id)
		spec := plans.StepSpec{Host: host, Cluster: map[bool]string{true: "c2", false: "c1"}[host == "h4"]}
		n := NewK3sServer(p, spec, NewRuntime(p, nil))
		n.agent = strings.HasSuffix(tt.id, "/join")
		if got := n.rolloutNote(); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.id, got, tt.want)
		}
	}
}
