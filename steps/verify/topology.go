package verify

import "mcplan.io/mcplan/plans"

// Topology is the shape verify expects of a mesh, taken from the plan's
// topology rules (plans/topology.go) and nowhere else.
type Topology struct {
	// Networks of the clusters of the mesh.
	Networks map[string]string
	// EastWest are the clusters with an east-west gateway, and their
	// plan address ("" when the LoadBalancer gives it).
	EastWest map[string]string
	// Readers are the clusters whose istiod reads the other clusters:
	// they hold a remote secret for each of them.
	Readers []string
	// PrimaryOf is the cluster whose istiod serves each cluster.
	PrimaryOf map[string]string
	// Contexts are the clusters' contexts in the merged kubeconfig, for
	// the fix hints.
	Contexts map[string]string
	// Peers are, per cluster, the other clusters of the mesh on its
	// network: its sidecars reach their pods straight at their pod IPs.
	Peers map[string][]string
	// Hosts are each cluster's hosts in the plan: servers, then agents.
	Hosts map[string][]string
	// PodCIDRs are the pod CIDRs the plan gives each cluster's k3s, for
	// a cluster whose Nodes carry none.
	PodCIDRs map[string]plans.PlanPodCIDRs
}

// TopologyOf is the topology of a mesh of p.
func TopologyOf(p *plans.Plan, mesh plans.Mesh) Topology {
	t := Topology{Networks: map[string]string{}, EastWest: map[string]string{}, PrimaryOf: map[string]string{}, Contexts: map[string]string{},
		Peers: map[string][]string{}, Hosts: map[string][]string{}, PodCIDRs: map[string]plans.PlanPodCIDRs{}}
	for _, c := range mesh.Clusters {
		t.Networks[c] = p.ClusterNetwork(c)
		if peers := p.SameNetworkPeers(mesh.Name, c); len(peers) > 0 {
			t.Peers[c] = peers
		}
		if cl := p.Cluster(c); cl != nil {
			t.Hosts[c] = cl.Hosts()
		}
		t.PodCIDRs[c] = p.PodCIDRs(c)
		t.PrimaryOf[c] = p.PrimaryFor(mesh.Name, c)
		t.Contexts[c] = p.KubeconfigNames(c).Context
		if p.NeedsEastWest(mesh.Name, c) {
			addr := ""
			if cl := p.Cluster(c); cl != nil && cl.EastWest != nil {
				addr = cl.EastWest.Address
			}
			t.EastWest[c] = addr
		}
		if p.IsPrimary(mesh.Name, c) {
			t.Readers = append(t.Readers, c)
		}
	}
	return t
}
