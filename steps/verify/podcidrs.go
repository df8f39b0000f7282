package verify

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
)

// nodePodCIDRsSource names where pod CIDRs read from the API come from.
const nodePodCIDRsSource = "Nodes' spec.podCIDRs"

// podCIDRs are a cluster's pod CIDRs and where they come from: its
// Nodes' spec.podCIDRs, else the plan's k3s args, else k3s's default.
type podCIDRs struct {
	Cluster string
	Source  string
	Blocks  []podCIDRBlock
}

// podCIDRBlock is one pod CIDR: a Node's, with the Node's name and
// InternalIP, or (from the plan) the whole cluster's, without.
type podCIDRBlock struct {
	CIDR   netip.Prefix
	Node   string
	NodeIP string
}

// String lists the CIDRs, for messages.
func (c podCIDRs) String() string {
	cidrs := make([]string, len(c.Blocks))
	for i, b := range c.Blocks {
		cidrs[i] = b.CIDR.String()
	}
	return strings.Join(cidrs, ", ")
}

// readPodCIDRs reads a cluster's pod CIDRs from its Nodes, falling back
// to the plan's.
func readPodCIDRs(ctx context.Context, c *kube.Client, plan plans.PlanPodCIDRs) (podCIDRs, error) {
	nodes, err := c.Typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return podCIDRs{}, fmt.Errorf("list the Nodes of %s: %w", c.Name, err)
	}
	return podCIDRsOf(c.Name, nodes.Items, plan)
}

// podCIDRsOf are a cluster's pod CIDRs: every Node's spec.podCIDRs (or
// the older spec.podCIDR), else, when no Node has one, the plan's.
func podCIDRsOf(cluster string, nodes []corev1.Node, plan plans.PlanPodCIDRs) (podCIDRs, error) {
	out := podCIDRs{Cluster: cluster, Source: nodePodCIDRsSource}
	for _, n := range nodes {
		cidrs := n.Spec.PodCIDRs
		if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
			cidrs = []string{n.Spec.PodCIDR}
		}
		for _, s := range cidrs {
			cidr, err := netip.ParsePrefix(s)
			if err != nil {
				return podCIDRs{}, fmt.Errorf("Node %s of %s: spec.podCIDRs %q: %w", n.Name, cluster, s, err)
			}
			out.Blocks = append(out.Blocks, podCIDRBlock{CIDR: cidr.Masked(), Node: n.Name, NodeIP: internalIP(n)})
		}
	}
	if len(out.Blocks) > 0 {
		return out, nil
	}
	out.Source = plan.Source
	for _, s := range plan.CIDRs {
		cidr, err := netip.ParsePrefix(s)
		if err != nil {
			return podCIDRs{}, fmt.Errorf("%s %q of %s: %w", plan.Source, s, cluster, err)
		}
		out.Blocks = append(out.Blocks, podCIDRBlock{CIDR: cidr.Masked()})
	}
	return out, nil
}

// internalIP is a Node's InternalIP, "" when it has none.
func internalIP(n corev1.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == corev1.NodeInternalIP {
			return a.Address
		}
	}
	return ""
}

// overlappingBlocks returns the first pod CIDRs of a and b that overlap.
func overlappingBlocks(a, b podCIDRs) (netip.Prefix, netip.Prefix, bool) {
	for _, x := range a.Blocks {
		for _, y := range b.Blocks {
			if x.CIDR.Overlaps(y.CIDR) {
				return x.CIDR, y.CIDR, true
			}
		}
	}
	return netip.Prefix{}, netip.Prefix{}, false
}

// firstAddress is the first usable address of a pod CIDR (the network
// address itself for a single address): an address a pod of it may have.
func firstAddress(cidr netip.Prefix) netip.Addr {
	if next := cidr.Addr().Next(); next.IsValid() && cidr.Contains(next) {
		return next
	}
	return cidr.Addr()
}
