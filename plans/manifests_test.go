package plans

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// TestManifestsGraph: the manifests/apply step of each cluster that has
// manifests (its mesh's, then its own), after what makes its mesh up,
// for a flat mesh, a mesh over two networks, a revisioned mesh and a
// cluster in no mesh; none for a cluster without manifests.
func TestManifestsGraph(t *testing.T) {
	for _, tt := range []struct {
		name string
		mesh string // the mesh's settings beyond its name and clusters
	}{
		{"flat", "{}"},
		{"two-networks", "{}"},
		{"revisioned", "{revision: r1}"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			network2 := "n1"
			if tt.name == "two-networks" {
				network2 = "n2"
			}
			p, err := Parse("plan.yaml", []byte(fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: t}
hosts:
  - {name: h1, address: 203.0.113.1}
  - {name: h2, address: 203.0.113.2}
  - {name: h3, address: 203.0.113.3}
  - {name: h4, address: 203.0.113.4}
networks: [{name: n1}, {name: n2}]
clusters:
  - {name: c1, servers: [h1], network: n1, manifests: [{path: app, recursive: true}]}
  - {name: c2, servers: [h2], network: %s}
  - {name: alone, servers: [h3], network: n1, manifests: [{path: tools, kustomize: true}]}
  - {name: bare, servers: [h4], network: n1}
meshes:
  - name: m1
    clusters: [c1, c2]
    manifests: [{path: mesh/policies.yaml}]
    istio: %s
`, network2, tt.mesh)))
			if err != nil {
				t.Fatal(err)
			}
			ApplyDefaults(p)
			var b strings.Builder
			for _, s := range Steps(p) {
				if s.Kind != KindManifestsApply {
					continue
				}
				inputs, err := json.Marshal(s.Inputs)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(&b, "%s (%s) cluster %s\n    inputs %s\n", s.ID, s.Kind, s.Cluster, inputs)
				for _, d := range s.DependsOn {
					fmt.Fprintf(&b, "    <- %s\n", d)
				}
			}
			golden.Check(t, filepath.Join("testdata", "manifests-graph", tt.name+".golden"), b.String())
		})
	}
}
