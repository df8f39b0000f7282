package status

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/steps/kube"
)

// readNodes are the nodes the cluster's API lists, in name order, then
// the plan's hosts it does not list (Missing). Nodes are named after the
// plan's hosts.
func readNodes(ctx context.Context, c *kube.Client, hosts []string) ([]Node, error) {
	list, err := c.Typed.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return []Node{}, fmt.Errorf("list nodes of %s: %w", c.Name, err)
	}
	out := []Node{}
	for i := range list.Items {
		n := &list.Items[i]
		ready, condition := nodeReady(n)
		out = append(out, Node{
			Name: n.Name, Ready: ready, Condition: condition,
			KubeletVersion: n.Status.NodeInfo.KubeletVersion, InPlan: slices.Contains(hosts, n.Name),
		})
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for _, h := range hosts {
		if !slices.ContainsFunc(out, func(n Node) bool { return n.Name == h }) {
			out = append(out, Node{Name: h, InPlan: true, Missing: true})
		}
	}
	return out, nil
}

// nodeReady is a node's Ready condition, and what it says when not True.
func nodeReady(n *corev1.Node) (bool, string) {
	for _, cond := range n.Status.Conditions {
		if cond.Type != corev1.NodeReady {
			continue
		}
		if cond.Status == corev1.ConditionTrue {
			return true, ""
		}
		return false, strings.TrimSpace(fmt.Sprintf("Ready=%s %s", cond.Status, cond.Reason))
	}
	return false, "no Ready condition"
}
