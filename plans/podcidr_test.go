package plans

import (
	"slices"
	"testing"
)

// TestPodCIDRs: a cluster's pod CIDRs from its k3s args, in both of
// their spellings, else k3s's default.
func TestPodCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		cidrs  []string
		source string
	}{
		{"default", nil, []string{"10.42.0.0/16"}, "k3s's default --cluster-cidr"},
		{"other args", []string{"--disable=traefik"}, []string{"10.42.0.0/16"}, "k3s's default --cluster-cidr"},
		{"equals", []string{"--cluster-cidr=10.52.0.0/16", "--service-cidr=10.53.0.0/16"}, []string{"10.52.0.0/16"}, "clusters[c].k3s.args --cluster-cidr"},
		{"separate value", []string{"--cluster-cidr", "10.62.0.0/16"}, []string{"10.62.0.0/16"}, "clusters[c].k3s.args --cluster-cidr"},
		{"dual-stack", []string{"--cluster-cidr=10.72.0.0/16, 2001:db8:42::/56"}, []string{"10.72.0.0/16", "2001:db8:42::/56"}, "clusters[c].k3s.args --cluster-cidr"},
		{"last wins", []string{"--cluster-cidr=10.52.0.0/16", "--cluster-cidr=10.82.0.0/16"}, []string{"10.82.0.0/16"}, "clusters[c].k3s.args --cluster-cidr"},
		{"no value", []string{"--cluster-cidr"}, []string{"10.42.0.0/16"}, "k3s's default --cluster-cidr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &Plan{Clusters: []Cluster{{Name: "c", K3s: K3s{Args: tc.args}}}}
			got := p.PodCIDRs("c")
			if !slices.Equal(got.CIDRs, tc.cidrs) || got.Source != tc.source {
				t.Errorf("PodCIDRs = %+v, want %v from %q", got, tc.cidrs, tc.source)
			}
		})
	}
}
