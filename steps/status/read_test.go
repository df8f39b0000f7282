package status

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
)

// TestReadCluster reads nodes, istiods and the east-west gateway from a
// fake API (no istiod pod is Ready, so no port-forward is opened), and
// marks them against the walkthrough plan. An istiod without a Ready pod
// is not asked, so it has no remote-cluster rows.
func TestReadCluster(t *testing.T) {
	p, err := plans.LoadAndValidate("../../examples/walkthrough.yaml")
	if err != nil {
		t.Fatal(err)
	}
	node := func(name string, ready corev1.ConditionStatus) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready, Reason: "KubeletNotReady"}},
			NodeInfo:   corev1.NodeSystemInfo{KubeletVersion: "v1.31.4+k3s1"},
		}}
	}
	istiod := func(name, rev string, phase corev1.PodPhase) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "istio-system", Labels: map[string]string{"app": "istiod", "istio.io/rev": rev}},
			Status: corev1.PodStatus{Phase: phase, Reason: "Unschedulable"}}
	}
	gateway := func(lb string, external ...string) *corev1.Service {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway", Namespace: "istio-system"}, Spec: corev1.ServiceSpec{ExternalIPs: external}}
		if lb != "" {
			svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: lb}}
		}
		return svc
	}
	for _, tc := range []struct {
		name     string
		objects  []runtime.Object
		nodes    []Node
		istiods  []Istiod
		eastWest *EastWest
	}{
		{"healthy-looking", []runtime.Object{node("vm1", corev1.ConditionTrue), gateway("10.0.0.1", "10.0.0.1", "10.0.0.7")},
			[]Node{{Name: "vm1", Ready: true, KubeletVersion: "v1.31.4+k3s1", InPlan: true}},
			// No pod: the plan's istiod (no revision) is missing.
			[]Istiod{{Revision: "default", Expected: true, Missing: true, RemoteClusters: []RemoteCluster{}}},
			&EastWest{Addresses: []string{"10.0.0.1", "10.0.0.7"}}},
		{"broken", []runtime.Object{node("vm9", corev1.ConditionFalse), istiod("istiod-r2-a", "r2", corev1.PodPending), istiod("istiod-b", "default", corev1.PodFailed)},
			[]Node{{Name: "vm9", Condition: "Ready=False KubeletNotReady", KubeletVersion: "v1.31.4+k3s1"}, {Name: "vm1", InPlan: true, Missing: true}},
			[]Istiod{
				{Revision: "default", Expected: true, State: "istiod-b: Failed (Unschedulable)", RemoteClusters: []RemoteCluster{}},
				{Revision: "r2", State: "istiod-r2-a: Pending (Unschedulable)", RemoteClusters: []RemoteCluster{}},
			},
			&EastWest{Addresses: []string{}, Missing: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := &kube.Client{Name: "cluster1", Typed: fake.NewClientset(tc.objects...)}
			nodes, err := readNodes(ctx, c, p.Cluster("cluster1").Hosts())
			if err != nil {
				t.Fatal(err)
			}
			istiods, err := readIstiods(ctx, c, p, "mesh1", t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			ew, err := readEastWest(ctx, c, p.Cluster("cluster1"))
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tc.nodes, nodes); d != "" {
				t.Errorf("nodes (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.istiods, istiods); d != "" {
				t.Errorf("istiods (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.eastWest, ew); d != "" {
				t.Errorf("east-west (-want +got):\n%s", d)
			}
		})
	}
}
