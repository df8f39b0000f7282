package plans

import (
	"path/filepath"
	"slices"
	"testing"
)

// TestTopologyRules: the parts clusters play, per mesh shape.
func TestTopologyRules(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: t}
hosts:
  - {name: h1, address: 203.0.113.1, privateIP: 10.0.0.1}
  - {name: h2, address: 203.0.113.2, privateIP: 10.0.0.2}
  - {name: h3, address: 203.0.113.3, privateIP: 10.0.0.3}
  - {name: h4, address: 203.0.113.4, privateIP: 10.0.0.4}
  - {name: h5, address: 203.0.113.5, privateIP: 10.0.0.5}
networks: [{name: n1}, {name: n2}]
clusters:
  - {name: a, servers: [h1, h5], network: n1, api: {meshAddress: 10.9.9.9}}
  - {name: b, servers: [h2], network: n2}
  - {name: c, servers: [h3], network: n1}
  - {name: d, servers: [h4], network: n1}
meshes:
  - {name: flat, clusters: [c, d]}
  - {name: pr, model: primary-remote, clusters: [a, b], primaries: [a, b]}
kubeconfig: {context: "ctx-{cluster}"}
`))
	if err != nil {
		t.Fatal(err)
	}
	ApplyDefaults(p)
	if p.MultiNetwork("flat") || !p.MultiNetwork("pr") {
		t.Errorf("MultiNetwork: flat %v, pr %v", p.MultiNetwork("flat"), p.MultiNetwork("pr"))
	}
	for _, tc := range []struct {
		mesh, cluster          string
		primary, eastWest, ist bool
		primaryFor             string
		readers, peers         []string
	}{
		{"flat", "c", true, false, false, "c", []string{"d"}, []string{"d"}},
		{"flat", "d", true, false, false, "d", []string{"c"}, []string{"c"}},
		{"pr", "a", true, true, true, "a", []string{"b"}, nil},
		{"pr", "b", true, true, true, "b", []string{"a"}, nil},
	} {
		if got := p.IsPrimary(tc.mesh, tc.cluster); got != tc.primary {
			t.Errorf("IsPrimary(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
		if got := p.NeedsEastWest(tc.mesh, tc.cluster); got != tc.eastWest {
			t.Errorf("NeedsEastWest(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
		if got := p.ExposesIstiod(tc.mesh, tc.cluster); got != tc.ist {
			t.Errorf("ExposesIstiod(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
		if got := p.PrimaryFor(tc.mesh, tc.cluster); got != tc.primaryFor {
			t.Errorf("PrimaryFor(%s, %s) = %q", tc.mesh, tc.cluster, got)
		}
		if got := p.Readers(tc.mesh, tc.cluster); !slices.Equal(got, tc.readers) {
			t.Errorf("Readers(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
		if got := p.SameNetworkPeers(tc.mesh, tc.cluster); !slices.Equal(got, tc.peers) {
			t.Errorf("SameNetworkPeers(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
		// Each pair here reads the other both ways.
		if got := p.Sources(tc.mesh, tc.cluster); !slices.Equal(got, tc.readers) {
			t.Errorf("Sources(%s, %s) = %v", tc.mesh, tc.cluster, got)
		}
	}
	// A remote on the second network uses that network's primary.
	p.Meshes[1].Primaries = []string{"a"}
	// The primary reads the remote; the remote reads nothing.
	if got := p.Sources("pr", "a"); !slices.Equal(got, []string{"b"}) {
		t.Errorf("primary-remote: Sources(pr, a) = %v", got)
	}
	if got := p.Sources("pr", "b"); len(got) != 0 {
		t.Errorf("primary-remote: Sources(pr, b) = %v", got)
	}
	if got := p.PrimaryFor("pr", "b"); got != "" {
		t.Errorf("a remote with no primary on its network: PrimaryFor = %q", got)
	}
	if got := p.APISANs("a"); !slices.Equal(got, []string{"10.0.0.1", "203.0.113.1", "10.0.0.5", "203.0.113.5", "10.9.9.9"}) {
		t.Errorf("APISANs(a) = %v", got)
	}
	if got := p.KubeconfigNames("b"); got != (KubeconfigNames{Cluster: "b", User: "user-b", Context: "ctx-b"}) {
		t.Errorf("KubeconfigNames(b) = %+v", got)
	}
}

// TestReadsIsADependency: a step reads the outputs only of a direct
// dependency (the engine hands it no others), for every example.
func TestReadsIsADependency(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, file := range files {
		p, err := LoadAndValidate(file)
		if err != nil {
			t.Fatal(err)
		}
		reads := 0
		for _, s := range Steps(p) {
			if s.Reads == "" {
				continue
			}
			reads++
			if !slices.Contains(s.DependsOn, s.Reads) {
				t.Errorf("%s: %s reads %s, which is not among its dependencies %v", file, s.ID, s.Reads, s.DependsOn)
			}
		}
		if reads == 0 {
			t.Errorf("%s: no step reads another's outputs", file)
		}
	}
}

func TestSubjectOfID(t *testing.T) {
	for _, tt := range []struct{ id, scope, name string }{
		{IstioControlPlaneID("c1"), "cluster", "c1"},
		{K3sJoinID("h3"), "host", "h3"},
		{CARootID("mesh1"), "mesh", "mesh1"},
		{RemoteSecretID("mesh1", "a", "b"), "mesh", "mesh1"},
		{KubeconfigMergeID, "", ""},
		{"cluster/", "", ""},
	} {
		scope, name, ok := SubjectOfID(tt.id)
		if scope != tt.scope || name != tt.name || ok != (tt.scope != "") {
			t.Errorf("%s: %q %q %v, want %q %q", tt.id, scope, name, ok, tt.scope, tt.name)
		}
	}
}
