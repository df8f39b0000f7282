package verify

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/plans"
)

// podRoutesDir holds the podroutes goldens and the host outputs they
// judge, captured by capture.sh from the command of command.golden.
var podRoutesDir = filepath.Join("testdata", "podroutes")

// cluster2Nodes are two Nodes of cluster2 with a pod CIDR each.
func cluster2Nodes() []corev1.Node {
	node := func(name, cidr, ip string) corev1.Node {
		return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr, PodCIDRs: []string{cidr}},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
	}
	return []corev1.Node{node("h2", "10.52.0.0/24", "10.0.0.3"), node("h3", "10.52.1.0/24", "10.0.0.4")}
}

// TestPodRoutesCommand: one command asks for every address, each quoted.
func TestPodRoutesCommand(t *testing.T) {
	peers, err := podCIDRsOf("cluster2", cluster2Nodes(), plans.PlanPodCIDRs{})
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, b := range peers.Blocks {
		addrs = append(addrs, firstAddress(b.CIDR).String())
	}
	golden.Check(t, filepath.Join(podRoutesDir, "command.golden"), routeCommand(addrs))
	if got := routeCommand([]string{"10.0.0.1'; reboot; '"}); !strings.Contains(got, `'10.0.0.1'\''; reboot; '\'''`) {
		t.Errorf("a value with a quote is not quoted: %s", got)
	}
}

// TestPodRoutesDecision judges what hosts printed (captured in network
// namespaces with each case's routes) for cluster2's pod CIDRs, from the
// Nodes and from the plan.
func TestPodRoutesDecision(t *testing.T) {
	fromNodes, err := podCIDRsOf("cluster2", cluster2Nodes(), plans.PlanPodCIDRs{})
	if err != nil {
		t.Fatal(err)
	}
	// No Node has a podCIDR: the plan's k3s args give the CIDR.
	fromPlan, err := podCIDRsOf("cluster2", []corev1.Node{{ObjectMeta: metav1.ObjectMeta{Name: "h2"}}},
		plans.PlanPodCIDRs{CIDRs: []string{"10.52.0.0/16"}, Source: "clusters[cluster2].k3s.args --cluster-cidr"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		peer  podCIDRs
		ok    bool
		inOut string // the host output's file, when not name.out
	}{
		{name: "routed", peer: fromNodes, ok: true},
		{name: "host-routes", peer: fromNodes, ok: true},
		{name: "default-only", peer: fromNodes},
		{name: "no-route", peer: fromNodes},
		{name: "half-routed", peer: fromNodes},
		{name: "unreachable", peer: fromNodes},
		{name: "blackhole", peer: fromNodes},
		{name: "prohibit", peer: fromNodes},
		{name: "ip-missing", peer: fromNodes},
		{name: "plan-routed", peer: fromPlan, ok: true, inOut: "routed.out"},
		{name: "plan-default-only", peer: fromPlan, inOut: "default-only.out"},
		{name: "empty-output", peer: fromNodes, inOut: "/dev/null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := filepath.Join(podRoutesDir, tc.name+".out")
			if tc.inOut == "/dev/null" {
				in = tc.inOut
			} else if tc.inOut != "" {
				in = filepath.Join(podRoutesDir, tc.inOut)
			}
			out, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			f := hostRoutesFinding("cluster1", "h1", tc.peer, parseRouteOutput(string(out)))
			if f.OK != tc.ok {
				t.Errorf("OK = %v, want %v: %s", f.OK, tc.ok, f)
			}
			golden.Check(t, filepath.Join(podRoutesDir, tc.name+".golden"), fmt.Sprintf("%s\n%s\n", map[bool]string{true: "OK", false: "FAIL"}[f.OK], f))
		})
	}
}

// TestPodCIDRsOverlap: clusters on one network with a pod CIDR in
// common fail as a pair; disjoint ones pass.
func TestPodCIDRsOverlap(t *testing.T) {
	plan := func(cluster, cidr string) podCIDRs {
		c, err := podCIDRsOf(cluster, nil, plans.PlanPodCIDRs{CIDRs: []string{cidr}, Source: "k3s's default --cluster-cidr"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	nodes, err := podCIDRsOf("cluster2", cluster2Nodes(), plans.PlanPodCIDRs{})
	if err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for _, tc := range []struct {
		name string
		a, b podCIDRs
	}{
		{"both k3s defaults", plan("cluster1", "10.42.0.0/16"), plan("cluster2", "10.42.0.0/16")},
		{"a Node's inside the other's", plan("cluster1", "10.52.0.0/16"), nodes},
		{"disjoint", plan("cluster1", "10.42.0.0/16"), nodes},
	} {
		if f, bad := overlapFinding(tc.a, tc.b); bad {
			fmt.Fprintf(&got, "%s: overlap\n%s\n\n", tc.name, f)
		} else {
			fmt.Fprintf(&got, "%s: no overlap\n\n", tc.name)
		}
	}
	golden.Check(t, filepath.Join(podRoutesDir, "overlap.golden"), got.String())
}

// TestPodCIDRsSources: Nodes' podCIDRs win, masked; a bad one is an error.
func TestPodCIDRsSources(t *testing.T) {
	nodes := cluster2Nodes()
	nodes[0].Spec.PodCIDRs = []string{"10.52.0.7/24", "fd00:52::/64"}
	c, err := podCIDRsOf("cluster2", nodes, plans.PlanPodCIDRs{CIDRs: []string{"10.99.0.0/16"}, Source: "plan"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Source != nodePodCIDRsSource || c.String() != "10.52.0.0/24, fd00:52::/64, 10.52.1.0/24" || c.Blocks[0].NodeIP != "10.0.0.3" {
		t.Errorf("got %+v", c)
	}
	if got := firstAddress(netip.MustParsePrefix("fd00:52::/64")).String(); got != "fd00:52::1" {
		t.Errorf("first address of fd00:52::/64: %s", got)
	}
	nodes[1].Spec.PodCIDRs = []string{"10.52.1.0/33"}
	if _, err := podCIDRsOf("cluster2", nodes, plans.PlanPodCIDRs{}); err == nil || !strings.Contains(err.Error(), "Node h3") {
		t.Errorf("a bad podCIDR: %v", err)
	}
}
