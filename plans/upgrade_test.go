package plans

import (
	"slices"
	"strings"
	"testing"
)

func TestK3sUpgradeProblem(t *testing.T) {
	for _, tt := range []struct{ from, to, want string }{
		{"v1.31.4+k3s1", "v1.32.1+k3s1", ""},
		{"v1.31.4+k3s1", "v1.31.5+k3s1", ""},
		{"v1.31.4+k3s1", "v1.31.4+k3s2", ""},
		{"v1.31.4+k3s1", "v1.31.4+k3s1", ""},
		{"v1.32.1+k3s1", "v1.31.4+k3s1", "v1.31.4+k3s1 is older than the installed v1.32.1+k3s1: k3s does not support downgrades"},
		{"v1.31.4+k3s2", "v1.31.4+k3s1", "does not support downgrades"},
		{"v1.31.4+k3s1", "v1.33.0+k3s1", "v1.33.0+k3s1 skips a minor version from the installed v1.31.4+k3s1: upgrade through v1.32 first"},
		{"v1.31.4+k3s1", "v2.0.0+k3s1", "skips a minor version"},
		{"", "v1.32.1+k3s1", ""}, // nothing installed
		{"v1.31.4+k3s1", "", ""}, // a channel: not known offline
		{"unknown", "v1.32.1+k3s1", ""},
	} {
		if got := K3sUpgradeProblem(tt.from, tt.to); !strings.Contains(got, tt.want) || (tt.want == "") != (got == "") {
			t.Errorf("%s -> %s: %q, want %q", tt.from, tt.to, got, tt.want)
		}
	}
}

func TestAgentBatch(t *testing.T) {
	for _, tt := range []struct {
		max    string
		agents int
		want   int
	}{{"", 4, 1}, {"2", 4, 2}, {"25%", 4, 1}, {"50%", 5, 3}, {"100%", 4, 4}, {"9", 4, 4}, {"", 0, 1}} {
		c := Cluster{Agents: make([]string, tt.agents)}
		if tt.max != "" {
			c.K3s.Upgrade = &Upgrade{MaxUnavailable: tt.max}
		}
		if got := c.AgentBatch(); got != tt.want {
			t.Errorf("maxUnavailable %q over %d agents: %d, want %d", tt.max, tt.agents, got, tt.want)
		}
	}
}

// TestRollingUpgradeOrder: a cluster whose release changes gets an etcd
// snapshot, its servers one after another, then its agents in batches;
// without a rollout the servers join and the agents install at once.
func TestRollingUpgradeOrder(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: s1, address: 192.0.2.1}
  - {name: s2, address: 192.0.2.2}
  - {name: s3, address: 192.0.2.3}
  - {name: a1, address: 192.0.2.11}
  - {name: a2, address: 192.0.2.12}
  - {name: a3, address: 192.0.2.13}
clusters:
  - name: c1
    servers: [s1, s2, s3]
    agents: [a1, a2, a3]
    k3s: {version: v1.32.1+k3s1, upgrade: {maxUnavailable: "2"}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ApplyDefaults(p)
	deps := func(specs []StepSpec) map[string][]string {
		m := map[string][]string{}
		for _, s := range specs {
			m[s.ID] = s.DependsOn
		}
		return m
	}
	still := deps(Steps(p))
	rolling := deps(StepsUpgrading(p, Upgrades{K3s: Rollouts{"c1": true}}))
	for _, tt := range []struct {
		id            string
		still, rolled []string
	}{
		{"cluster/c1/k3s/snapshot", nil, []string{"host/s1/facts"}},
		{"host/s1/k3s/server", []string{"host/s1/facts"}, []string{"host/s1/facts", "cluster/c1/k3s/snapshot"}},
		{"host/s2/k3s/server", []string{"host/s2/facts", "host/s1/k3s/server"}, []string{"host/s2/facts", "host/s1/k3s/server"}},
		{"host/s3/k3s/server", []string{"host/s3/facts", "host/s1/k3s/server"}, []string{"host/s3/facts", "host/s1/k3s/server", "host/s2/k3s/server"}},
		{"host/a1/k3s/join", []string{"host/a1/facts", "host/s1/k3s/server"}, []string{"host/a1/facts", "host/s1/k3s/server", "host/s3/k3s/server"}},
		{"host/a2/k3s/join", []string{"host/a2/facts", "host/s1/k3s/server"}, []string{"host/a2/facts", "host/s1/k3s/server", "host/s3/k3s/server"}},
		{"host/a3/k3s/join", []string{"host/a3/facts", "host/s1/k3s/server"}, []string{"host/a3/facts", "host/s1/k3s/server", "host/s3/k3s/server", "host/a1/k3s/join"}},
	} {
		if got := still[tt.id]; !slices.Equal(got, tt.still) {
			t.Errorf("%s without a rollout depends on %v, want %v", tt.id, got, tt.still)
		}
		if got := rolling[tt.id]; !slices.Equal(got, tt.rolled) {
			t.Errorf("%s rolling depends on %v, want %v", tt.id, got, tt.rolled)
		}
	}
}
