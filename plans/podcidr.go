package plans

import (
	"fmt"
	"strings"
)

// PlanPodCIDRs are the pod CIDRs the plan gives a cluster's k3s, and
// where they come from.
type PlanPodCIDRs struct {
	CIDRs []string
	// Source names where the CIDRs come from, for messages: the cluster's
	// k3s args or k3s's default.
	Source string
}

// PodCIDRs are the pod CIDRs a cluster's k3s servers get from the plan:
// the last --cluster-cidr of clusters[].k3s.args ("--cluster-cidr=X" or
// "--cluster-cidr X", X comma-separated for dual-stack), else k3s's
// default. The live Nodes' spec.podCIDRs say what k3s actually gave out.
func (p *Plan) PodCIDRs(cluster string) PlanPodCIDRs {
	c := p.Cluster(cluster)
	out := PlanPodCIDRs{CIDRs: []string{DefaultK3sClusterCIDR}, Source: "k3s's default --cluster-cidr"}
	if c == nil {
		return out
	}
	for i, arg := range c.K3s.Args {
		key, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "-") || key != "cluster-cidr" {
			continue
		}
		if !hasValue {
			if i+1 >= len(c.K3s.Args) {
				continue
			}
			value = c.K3s.Args[i+1]
		}
		var cidrs []string
		for _, cidr := range strings.Split(value, ",") {
			if cidr = strings.TrimSpace(cidr); cidr != "" {
				cidrs = append(cidrs, cidr)
			}
		}
		if len(cidrs) > 0 {
			out = PlanPodCIDRs{CIDRs: cidrs, Source: fmt.Sprintf("clusters[%s].k3s.args --cluster-cidr", cluster)}
		}
	}
	return out
}
