package examples_test

import (
	"path/filepath"
	"testing"

	"mcplan.io/mcplan/plans"
)

// TestExamplesLoad loads and validates every example plan as mcplan apply
// would, and logs the warnings a user would see.
func TestExamplesLoad(t *testing.T) {
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d example plans, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			p, err := plans.LoadAndValidate(f)
			if err != nil {
				t.Fatalf("%s:\n%v", f, err)
			}
			for _, w := range plans.Warnings(p) {
				t.Logf("warning: %s", w.String())
			}
			if n := len(p.Clusters); n < 2 {
				t.Errorf("%s has %d clusters, want a multicluster example (>= 2)", f, n)
			}
			if len(p.Meshes) == 0 {
				t.Errorf("%s has no mesh", f)
			}
			if len(plans.Steps(p)) == 0 {
				t.Errorf("%s gives no steps", f)
			}
		})
	}
}

// TestWalkthrough pins walkthrough.yaml to the hand-made setup it stands for.
func TestWalkthrough(t *testing.T) {
	p, err := plans.LoadAndValidate("walkthrough.yaml")
	if err != nil {
		t.Fatal(err)
	}
	privateIP := map[string]string{}
	for _, h := range p.Hosts {
		privateIP[h.Name] = h.PrivateIP
	}
	if privateIP["vm1"] != "192.168.60.113" || privateIP["vm2"] != "192.168.60.9" || len(p.Hosts) != 2 {
		t.Errorf("hosts: private IPs %v, want vm1=192.168.60.113 vm2=192.168.60.9", privateIP)
	}
	want := map[string][2]string{"cluster1": {"network1", "vm1"}, "cluster2": {"network2", "vm2"}}
	for _, c := range p.Clusters {
		w, ok := want[c.Name]
		if !ok || c.Network != w[0] || len(c.Servers) != 1 || c.Servers[0] != w[1] || len(c.Agents) != 0 {
			t.Errorf("cluster %s: network %q servers %v agents %v", c.Name, c.Network, c.Servers, c.Agents)
		}
		if c.K3s.Mirror != "cn" {
			t.Errorf("cluster %s: mirror %q, want cn", c.Name, c.K3s.Mirror)
		}
	}
	if len(p.Clusters) != 2 || len(p.Meshes) != 1 {
		t.Fatalf("%d clusters, %d meshes; want 2 and 1", len(p.Clusters), len(p.Meshes))
	}
	m := p.Meshes[0]
	if m.Name != "mesh1" || m.Model != plans.ModelMultiPrimary || len(m.Clusters) != 2 {
		t.Errorf("mesh %s model %s clusters %v", m.Name, m.Model, m.Clusters)
	}
	if m.Istio.MeshConfig["accessLogFile"] != "/dev/stdout" || m.Istio.MeshConfig["accessLogEncoding"] != "JSON" {
		t.Errorf("meshConfig %v, want JSON access logs to /dev/stdout", m.Istio.MeshConfig)
	}
	if m.Verify.Sample != "helloworld" || m.Verify.Requests != 20 {
		t.Errorf("verify %s x%d, want helloworld x20", m.Verify.Sample, m.Verify.Requests)
	}
	if p.Kubeconfig == nil || filepath.Base(p.Kubeconfig.Path) != "kubeconfig" {
		t.Errorf("kubeconfig %+v, want ./kubeconfig", p.Kubeconfig)
	}
}
