package simulate

import (
	"maps"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestWantedRoutes(t *testing.T) {
	node := func(name, cidr, ip string, deleting bool) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeHostName, Address: name}, {Type: corev1.NodeInternalIP, Address: ip}}}}
		if deleting {
			now := metav1.Now()
			n.DeletionTimestamp = &now
		}
		return n
	}
	nodes := []*corev1.Node{
		node("self", "10.42.0.0/24", "192.0.2.1", false),
		node("b", "10.42.1.0/24", "192.0.2.2", false),
		node("no-cidr", "", "192.0.2.3", false),
		node("shares-my-netns", "10.42.3.0/24", "192.0.2.9", false),
		node("going", "10.42.4.0/24", "192.0.2.4", true),
	}
	got := wantedRoutes("self", nodes, func(ip string) bool { return ip == "192.0.2.9" || ip == "192.0.2.1" })
	want := map[string]string{"10.42.1.0/24": "192.0.2.2"}
	if !maps.Equal(got, want) {
		t.Fatalf("routes %v, want %v", got, want)
	}
}
