package plans

import "fmt"

// Warnings returns what is legal in the plan but probably needs the user's
// attention, in the same format as Errors. Call it on a valid plan.
func Warnings(p *Plan) []Warning {
	var out []Warning
	for i, m := range p.Meshes {
		if len(m.Clusters) < 2 {
			continue
		}
		networks := map[string]bool{}
		for _, c := range m.Clusters {
			networks[p.ClusterNetwork(c)] = true
		}
		if len(networks) == 1 {
			var network string
			for n := range networks {
				network = n
			}
			e := p.errAt(fieldPath(indexPath("meshes", i), "clusters"),
				fmt.Sprintf("all %d clusters are on network %s: pod-to-pod routing between clusters on one network is your job (flat network or e.g. submariner); after apply, mcplan verify checks it (podroutes: disjoint pod CIDRs, routed from every node)", len(m.Clusters), quote(network)), "")
			out = append(out, Warning(*e))
		}
	}
	return out
}
