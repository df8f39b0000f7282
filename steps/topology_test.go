package steps

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/verify"
)

// TestTopologyAgrees: for every example, the step graph, the expose and
// control-plane steps and verify agree with the plan's topology rules
// (plans/topology.go) on which clusters get an east-west gateway, which
// expose istiod, which read which, and which primary a remote uses.
func TestTopologyAgrees(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := plans.LoadAndValidate(file)
			if err != nil {
				t.Fatal(err)
			}
			specs := map[string]plans.StepSpec{}
			for _, s := range plans.Steps(p) {
				specs[s.ID] = s
			}
			for _, m := range p.Meshes {
				v := verify.TopologyOf(p, m)
				for _, c := range m.Clusters {
					_, hasGateway := specs[plans.IstioEastWestID(c)]
					_, verifyGateway := v.EastWest[c]
					if want := p.NeedsEastWest(m.Name, c); hasGateway != want || verifyGateway != want {
						t.Errorf("%s/%s: east-west gateway: rule %v, graph %v, verify %v", m.Name, c, want, hasGateway, verifyGateway)
					}
					e := NewIstioExpose(p, plans.StepSpec{Mesh: m.Name, Cluster: c, Reads: plans.IstioEastWestID(c)}, nil)
					if e.multiNetwork != p.MultiNetwork(m.Name) || e.exposeIstiod != p.ExposesIstiod(m.Name, c) {
						t.Errorf("%s/%s: expose %+v, rule multiNetwork %v exposeIstiod %v", m.Name, c, e, p.MultiNetwork(m.Name), p.ExposesIstiod(m.Name, c))
					}
					cp := specs[plans.IstioControlPlaneID(c)]
					if primary := p.PrimaryFor(m.Name, c); primary != c && !slices.Contains(cp.DependsOn, plans.IstioExposeID(primary)) {
						t.Errorf("%s/%s: a remote's control plane does not wait for its primary %s's expose: %v", m.Name, c, primary, cp.DependsOn)
					}
					if v.PrimaryOf[c] != p.PrimaryFor(m.Name, c) {
						t.Errorf("%s/%s: verify's primary %q, rule %q", m.Name, c, v.PrimaryOf[c], p.PrimaryFor(m.Name, c))
					}
					var graphReaders []string
					for _, r := range m.Clusters {
						if _, ok := specs[plans.RemoteSecretID(m.Name, c, r)]; ok {
							graphReaders = append(graphReaders, r)
						}
					}
					if want := p.Readers(m.Name, c); !slices.Equal(graphReaders, want) {
						t.Errorf("%s: readers of %s: graph %v, rule %v", m.Name, c, graphReaders, want)
					}
				}
				var primaries []string
				for _, c := range m.Clusters {
					if p.IsPrimary(m.Name, c) {
						primaries = append(primaries, c)
					}
				}
				if !slices.Equal(v.Readers, primaries) {
					t.Errorf("%s: verify reads remote secrets in %v, the primaries are %v", m.Name, v.Readers, primaries)
				}
			}
			for _, c := range p.Clusters {
				if !c.Installed() {
					continue // no k3s steps
				}
				if got := sansOf(t, specs[plans.K3sServerID(c.Servers[0])].Inputs); !slices.Equal(got, p.APISANs(c.Name)) {
					t.Errorf("%s: k3s/server inputs' TLS SANs %v, rule %v", c.Name, got, p.APISANs(c.Name))
				}
			}
		})
	}
}

// sansOf is the tlsSANs field of a k3s step's inputs.
func sansOf(t *testing.T, inputs any) []string {
	t.Helper()
	b, err := json.Marshal(inputs)
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		TLSSANs []string `json:"tlsSANs"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	return in.TLSSANs
}
