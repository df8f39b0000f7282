package verify

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
)

// TestPodRoutesPairs runs podroutes over four clusters of a mesh: three
// on network1 (cluster3's Nodes without podCIDRs, so k3s's default,
// which overlaps cluster1's), one on network2. The overlapping pair
// fails once and is not looked up; every other pair on network1 is
// looked up on every host of the cluster, one command per host;
// network2's cluster is neither read nor asked; cluster5, given by
// kubeconfig, has no hosts to ask: it is routed to, and says what to
// check on its nodes by hand.
func TestPodRoutesPairs(t *testing.T) {
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: t}
hosts:
  - {name: h1, address: 203.0.113.1}
  - {name: h2, address: 203.0.113.2}
  - {name: h3, address: 203.0.113.3}
  - {name: h4, address: 203.0.113.4}
networks: [{name: network1}, {name: network2}]
clusters:
  - {name: cluster1, servers: [h1], network: network1, k3s: {args: [--cluster-cidr=10.42.0.0/16]}}
  - {name: cluster2, servers: [h2], network: network1, k3s: {args: [--cluster-cidr=10.52.0.0/16]}}
  - {name: cluster3, servers: [h3], network: network1}
  - {name: cluster4, servers: [h4], network: network2}
  - {name: cluster5, network: network1, kubeconfig: {path: by-hand.yaml}, api: {meshAddress: 203.0.113.5}}
meshes:
  - {name: mesh1, clusters: [cluster1, cluster2, cluster3, cluster4, cluster5]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	node := func(name, cidr, ip string) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
		if cidr != "" {
			n.Spec.PodCIDR, n.Spec.PodCIDRs = cidr, []string{cidr}
		}
		return n
	}
	clients := map[string]*kube.Client{
		"cluster1": {Name: "cluster1", Typed: fake.NewSimpleClientset(node("h1", "10.42.0.0/24", "10.0.0.1"))},
		"cluster2": {Name: "cluster2", Typed: fake.NewSimpleClientset(node("h2", "10.52.0.0/24", "10.0.0.2"))},
		"cluster3": {Name: "cluster3", Typed: fake.NewSimpleClientset(node("h3", "", "10.0.0.3"))},
		"cluster4": {Name: "cluster4", Typed: fake.NewSimpleClientset(node("h4", "10.42.0.0/24", "10.0.0.4"))},
		"cluster5": {Name: "cluster5", Typed: fake.NewSimpleClientset(node("byhand-1", "10.62.0.0/24", "10.0.0.5"))},
	}
	quoted := regexp.MustCompile(`'([0-9a-f.:]+)'`)
	var asked []string
	v := New(p, *p.Mesh("mesh1"))
	// h1 routes everything through 10.0.0.9, h2 has only its default
	// route, h3 cannot be reached.
	v.runOnHost = func(_ context.Context, host, command string) (string, error) {
		var addrs []string
		for _, m := range quoted.FindAllStringSubmatch(command, -1) {
			addrs = append(addrs, m[1])
		}
		asked = append(asked, fmt.Sprintf("%s: %s", host, strings.Join(addrs, " ")))
		var out strings.Builder
		for _, a := range addrs {
			switch host {
			case "h1":
				fmt.Fprintf(&out, "%s%s\n%s/32 via 10.0.0.9 dev eth0 \n", routeMarker, a, a)
			case "h2":
				fmt.Fprintf(&out, "%s%s\ndefault via 10.0.0.254 dev eth0 \n", routeMarker, a)
			default:
				return "", errors.New("ssh: connect to host h3 port 22: connection refused")
			}
		}
		return out.String(), nil
	}
	fs := v.podRoutes(context.Background(), clients)
	var got strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&got, "%s %s\n", map[bool]string{true: "OK", false: "FAIL"}[f.OK], f)
	}
	fmt.Fprintf(&got, "\nasked:\n%s\n", strings.Join(asked, "\n"))
	golden.Check(t, filepath.Join(podRoutesDir, "pairs.golden"), got.String())
	if slices.ContainsFunc(asked, func(a string) bool { return strings.HasPrefix(a, "h4") }) {
		t.Errorf("network2's host was asked: %v", asked)
	}
}
