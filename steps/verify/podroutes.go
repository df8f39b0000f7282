package verify

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/internal/lists"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/remote"
)

// HostDialer reaches the plan's hosts over SSH, their host keys checked
// as in apply (steps.Runtime is one).
type HostDialer interface {
	Host(ctx context.Context, name string, logf func(string, ...any)) (*remote.Client, error)
}

// WithHosts is a copy of the verifier whose control-plane checks include
// podroutes, reaching the nodes through hosts: for each pair of clusters
// of the mesh on one network, whether the other cluster's pod IPs route
// from each node (Istio sends sidecars straight to them).
func (s *Verifier) WithHosts(hosts HostDialer) *Verifier {
	v := *s
	v.runOnHost = func(ctx context.Context, host, command string) (string, error) {
		c, err := hosts.Host(ctx, host, nil)
		if err != nil {
			return "", err
		}
		res, err := c.Run(ctx, command, remote.RunOptions{})
		return res.Stdout, err
	}
	return &v
}

// podRoutes runs the podroutes check of every cluster that shares its
// network with others of the mesh: their pod CIDRs must be disjoint, and
// every node of the cluster must have a route (not the default route)
// to each of the others' pod CIDRs. Clusters whose API did not answer
// (no client) are left out: the api check said so.
func (s *Verifier) podRoutes(ctx context.Context, clients map[string]*kube.Client) []Finding {
	var fs []Finding
	cidrs := map[string]podCIDRs{}
	for _, c := range s.mesh.Clusters {
		if len(s.topo.Peers[c]) == 0 || clients[c] == nil {
			continue
		}
		got, err := readPodCIDRs(ctx, clients[c], s.topo.PodCIDRs[c])
		if err != nil {
			fs = append(fs, Finding{Check: CheckPodRoutes, Cluster: c, Object: "pod CIDRs", Detail: err.Error()})
			continue
		}
		cidrs[c] = got
	}
	// overlapping pairs are reported once and not looked up.
	overlapping := map[[2]string]bool{}
	for i, a := range s.mesh.Clusters {
		for _, b := range s.mesh.Clusters[i+1:] {
			ca, okA := cidrs[a]
			cb, okB := cidrs[b]
			if !okA || !okB || s.topo.Networks[a] != s.topo.Networks[b] {
				continue
			}
			if f, bad := overlapFinding(ca, cb); bad {
				fs = append(fs, f)
				overlapping[[2]string{a, b}], overlapping[[2]string{b, a}] = true, true
			}
		}
	}
	for _, a := range s.mesh.Clusters {
		if _, ok := cidrs[a]; !ok {
			continue
		}
		var peers []podCIDRs
		for _, b := range s.topo.Peers[a] {
			if cb, ok := cidrs[b]; ok && !overlapping[[2]string{a, b}] {
				peers = append(peers, cb)
			}
		}
		if len(peers) == 0 {
			continue
		}
		if len(s.topo.Hosts[a]) == 0 {
			fs = append(fs, notLookedUp(a, peers))
			continue
		}
		for _, host := range s.topo.Hosts[a] {
			fs = append(fs, s.hostRoutes(ctx, a, host, peers)...)
		}
	}
	return fs
}

// hostRoutes looks up, on one host of cluster, the route to the first
// address of each of the peers' pod CIDRs (each address once), in one
// command, and returns a finding per peer.
func (s *Verifier) hostRoutes(ctx context.Context, cluster, host string, peers []podCIDRs) []Finding {
	var addrs []string
	for _, p := range peers {
		for _, b := range p.Blocks {
			addrs = lists.AppendNew(addrs, firstAddress(b.CIDR).String())
		}
	}
	out, err := s.runOnHost(ctx, host, routeCommand(addrs))
	fs := make([]Finding, len(peers))
	for i, p := range peers {
		if err != nil {
			fs[i] = Finding{Check: CheckPodRoutes, Cluster: cluster, Object: routesObject(host, p.Cluster),
				Detail: fmt.Sprintf("cannot ask host %s how it routes %s's pod CIDRs: %v", host, p.Cluster, err)}
			continue
		}
		fs[i] = hostRoutesFinding(cluster, host, p, parseRouteOutput(out))
	}
	return fs
}

// notLookedUp is the finding of a cluster whose nodes mcplan does not
// reach (one given by kubeconfig: no hosts in the plan): not a failure,
// but not a pass either, so it says what to check by hand.
func notLookedUp(cluster string, peers []podCIDRs) Finding {
	var cidrs []string
	for _, p := range peers {
		for _, b := range p.Blocks {
			cidrs = lists.AppendNew(cidrs, p.Cluster+" "+b.CIDR.String())
		}
	}
	return Finding{Check: CheckPodRoutes, Cluster: cluster, Object: "nodes (not mcplan's hosts)", OK: true,
		Detail: "not looked up: the cluster is given by kubeconfig and mcplan has no SSH access to its nodes; check on them that " +
			strings.Join(cidrs, ", ") + " route (ip route get) other than by the default route"}
}

// routesObject names what a podroutes finding of a host is about.
func routesObject(host, peer string) string {
	return fmt.Sprintf("host %s -> %s pods", host, peer)
}

// hostRoutesFinding judges, from the lookups a host of cluster printed
// (address -> first line), whether it routes every pod CIDR of peer.
func hostRoutesFinding(cluster, host string, peer podCIDRs, lookups map[string]string) Finding {
	f := Finding{Check: CheckPodRoutes, Cluster: cluster, Object: routesObject(host, peer.Cluster)}
	var routed, problems, fixes []string
	defaultOnly := false
	for _, b := range peer.Blocks {
		addr := firstAddress(b.CIDR).String()
		line, printed := lookups[addr]
		v := judgeRoute(line)
		if !printed {
			v.Why = "the host's output has no lookup of it"
		}
		if v.Routable {
			routed = append(routed, fmt.Sprintf("%s: %s", b.CIDR, v.Route))
			continue
		}
		defaultOnly = defaultOnly || v.Default
		problems = append(problems, fmt.Sprintf("%s%s, looked up as %s: %s", b.CIDR, nodeOf(b), addr, v.Why))
		via := "<a node IP of " + peer.Cluster + ">"
		if b.NodeIP != "" {
			via = b.NodeIP
		}
		fixes = append(fixes, fmt.Sprintf("`ip route add %s via %s`", b.CIDR, via))
	}
	if len(problems) == 0 {
		f.OK, f.Detail = true, fmt.Sprintf("routes %s (%s)", strings.Join(routed, "; "), peer.Source)
		return f
	}
	f.Detail = fmt.Sprintf("nothing routes %s's pod CIDRs (%s) from node %s of %s: %s. On one network, %s's sidecars send requests "+
		"straight to %s's pod IPs, and they fail (delayed connect error: 113). Fix: route the other clusters' pod CIDRs between the "+
		"nodes (flat network, e.g. on %s: %s; or submariner), or put the clusters on different networks (east-west gateways)",
		peer.Cluster, peer.Source, host, cluster, strings.Join(problems, "; "), cluster, peer.Cluster, host, strings.Join(fixes, ", "))
	if defaultOnly {
		f.Detail += ". This check reads the nodes' routes: a route table beyond their default gateway (a cloud's) that routes the CIDRs is not seen"
	}
	return f
}

// nodeOf names the Node a pod CIDR block belongs to, for messages.
func nodeOf(b podCIDRBlock) string {
	if b.Node == "" {
		return ""
	}
	return " (Node " + b.Node + ")"
}

// overlapFinding fails a pair of clusters on one network whose pod CIDRs
// overlap: a pod IP of one could be a pod of either.
func overlapFinding(a, b podCIDRs) (Finding, bool) {
	x, y, ok := overlappingBlocks(a, b)
	if !ok {
		return Finding{}, false
	}
	what := fmt.Sprintf("%s and %s both use pod CIDR %s", a.Cluster, b.Cluster, x)
	if x != y {
		what = fmt.Sprintf("%s's pod CIDR %s overlaps %s's %s", a.Cluster, x, b.Cluster, y)
	}
	return Finding{Check: CheckPodRoutes, Cluster: a.Cluster, Object: "pod CIDRs of " + a.Cluster + " and " + b.Cluster,
		Detail: fmt.Sprintf("%s (%s's from %s, %s's from %s): pods on one network need disjoint pod CIDRs. Fix: set k3s args --cluster-cidr "+
			"and --service-cidr (with --cluster-dns in it) per cluster in clusters[].k3s.args, and rebuild the cluster whose "+
			"CIDRs change (its Nodes keep the podCIDRs they got); or put the clusters on different networks (east-west gateways)",
			what, a.Cluster, a.Source, b.Cluster, b.Source)}, true
}
