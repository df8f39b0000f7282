package plans

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// TestCanaryGraph renders the step graph of the walkthrough's two-cluster,
// two-network, multi-primary mesh with a revision, without a canary, in
// a canary from the non-revisioned control plane, and in variants of it:
// the order the issue names (new control planes, gate, tags, restarts,
// gateways one cluster at a time, the old revision removed, verify) is
// in the golden files; and the same mesh as primary-remote on one
// network (cluster2 a remote of cluster1), whose remote follows its
// primary's revision: its install does not wait for the primary's gateway,
// which moves last.
func TestCanaryGraph(t *testing.T) {
	for _, tt := range []struct {
		name    string
		upgrade string // the mesh's istio.upgrade
		from    []string
		model   string
	}{
		{"revisioned-no-canary", "", nil, ""},
		{"canary-from-default", "", []string{""}, ""},
		{"canary-restart", "{restartWorkloads: true}", []string{""}, ""},
		{"canary-keep-previous", "{keepPrevious: true}", []string{"r1"}, ""},
		{"canary-from-two", "{restartWorkloads: true}", []string{"", "r1"}, ""},
		{"primary-remote-revisioned-no-canary", "", nil, ModelPrimaryRemote},
		{"primary-remote-canary", "{restartWorkloads: true}", []string{""}, ModelPrimaryRemote},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := canaryPlan(t, tt.upgrade, tt.model)
			var u Upgrades
			if tt.from != nil {
				u.Istio = Canaries{"mesh1": tt.from}
			}
			var b strings.Builder
			for _, s := range StepsUpgrading(p, u) {
				if s.Mesh == "" {
					continue // the k3s and kubeconfig steps do not change
				}
				fmt.Fprintf(&b, "%s (%s)\n", s.ID, s.Kind)
				for _, d := range s.DependsOn {
					fmt.Fprintf(&b, "    <- %s\n", d)
				}
			}
			golden.Check(t, filepath.Join("testdata", "canary", tt.name+".golden"), b.String())
		})
	}
}

func canaryPlan(t *testing.T, upgrade, model string) *Plan {
	t.Helper()
	up := ""
	if upgrade != "" {
		up = "\n      upgrade: " + upgrade
	}
	network2, shape := "network2", ""
	if model == ModelPrimaryRemote {
		network2, shape = "network1", "\n    model: primary-remote\n    primaries: [cluster1]"
	}
	p, err := Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: canary}
hosts:
  - {name: vm1, address: 192.0.2.1}
  - {name: vm2, address: 192.0.2.2}
networks: [{name: network1}, {name: network2}]
clusters:
  - {name: cluster1, network: network1, servers: [vm1]}
  - {name: cluster2, network: `+network2+`, servers: [vm2]}
meshes:
  - name: mesh1
    clusters: [cluster1, cluster2]`+shape+`
    istio:
      revision: r2`+up+`
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	ApplyDefaults(p)
	return p
}

func TestRevisionTags(t *testing.T) {
	for _, tt := range []struct {
		istio Istio
		want  string
	}{
		{Istio{}, ""},
		{Istio{Revision: "r2"}, "default"},
		{Istio{Revision: "r2", Tags: []string{"stable", "canary"}}, "stable,canary"},
	} {
		if got := strings.Join(Mesh{Istio: tt.istio}.RevisionTags(), ","); got != tt.want {
			t.Errorf("%+v: tags %q, want %q", tt.istio, got, tt.want)
		}
	}
}

// TestCanaryGraphHoldsTogether checks that every step a canary's steps
// depend on is in the graph, also for a canary back to the
// non-revisioned control plane (which steps.CheckCanaries refuses, but
// whose graph destroy still builds): its meshes have no tags step.
func TestCanaryGraphHoldsTogether(t *testing.T) {
	for _, tt := range []struct {
		name     string
		upgrade  string
		revision string
		from     []string
	}{
		{"to-a-revision", "{restartWorkloads: true}", "r2", []string{"", "r1"}},
		{"back-to-non-revisioned", "", "", []string{"r1"}},
		{"back-to-non-revisioned-restarting", "{restartWorkloads: true}", "", []string{"r1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := canaryPlan(t, tt.upgrade, "")
			p.Meshes[0].Istio.Revision = tt.revision
			specs := StepsUpgrading(p, Upgrades{Istio: Canaries{"mesh1": tt.from}})
			ids := map[string]bool{}
			for _, s := range specs {
				ids[s.ID] = true
			}
			for _, s := range specs {
				for _, d := range s.DependsOn {
					if !ids[d] {
						t.Errorf("step %s depends on %s, which is not in the graph", s.ID, d)
					}
				}
			}
		})
	}
}
