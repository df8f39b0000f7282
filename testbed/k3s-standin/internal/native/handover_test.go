package native

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// testPod is a pod of a Deployment's ReplicaSet (owner kind and name,
// pod-template-hash) created at second sec, with TCP container ports.
type testPod struct {
	name, ns  string
	sec       int64
	kind      string // controller kind; "" for a bare pod
	owner     string // controller name
	hash      string // pod-template-hash / controller-revision-hash
	ports     []corev1.ContainerPort
	initPorts []corev1.ContainerPort // of a sidecar init container
}

func (tp testPod) pod() *corev1.Pod {
	ns := tp.ns
	if ns == "" {
		ns = "istio-system"
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Name: tp.name, Namespace: ns, UID: types.UID("uid-" + tp.name),
		CreationTimestamp: metav1.NewTime(time.Unix(1_700_000_000+tp.sec, 0)),
		Labels:            map[string]string{},
	}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "discovery", Ports: tp.ports}}}}
	if tp.initPorts != nil {
		always := corev1.ContainerRestartPolicyAlways
		pod.Spec.InitContainers = []corev1.Container{{Name: "sidecar", RestartPolicy: &always, Ports: tp.initPorts}}
	}
	if tp.kind != "" {
		yes := true
		pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: tp.kind, Name: tp.owner, UID: types.UID("uid-" + tp.owner), Controller: &yes}}
		switch tp.kind {
		case "ReplicaSet":
			pod.Labels["pod-template-hash"] = tp.hash
		default:
			pod.Labels["controller-revision-hash"] = tp.hash
		}
	}
	return pod
}

func tcp(ports ...int32) []corev1.ContainerPort {
	var out []corev1.ContainerPort
	for _, p := range ports {
		out = append(out, corev1.ContainerPort{ContainerPort: p})
	}
	return out
}

func TestTakesOver(t *testing.T) {
	old := testPod{name: "istiod-aaa-x", sec: 0, kind: "ReplicaSet", owner: "istiod-aaa", hash: "aaa", ports: tcp(8080, 15010, 15012)}
	with := func(f func(*testPod)) testPod {
		tp := old
		tp.name, tp.sec, tp.owner, tp.hash = "istiod-bbb-y", 60, "istiod-bbb", "bbb"
		f(&tp)
		return tp
	}
	same := func(*testPod) {}
	for _, tc := range []struct {
		name         string
		newer, older testPod
		want         []string
	}{
		{"rollout: another revision of the Deployment", with(same), old, []string{"TCP/15010", "TCP/15012", "TCP/8080"}},
		{"only the shared ports", with(func(tp *testPod) { tp.ports = tcp(15010, 9999) }), old, []string{"TCP/15010"}},
		{"no shared port", with(func(tp *testPod) { tp.ports = tcp(9999) }), old, nil},
		{"no ports declared", with(func(tp *testPod) { tp.ports = nil }), old, nil},
		{"same port, other protocol", with(func(tp *testPod) {
			tp.ports = []corev1.ContainerPort{{ContainerPort: 15010, Protocol: corev1.ProtocolUDP}}
		}), old, nil},
		{"explicit TCP equals the default", with(func(tp *testPod) {
			tp.ports = []corev1.ContainerPort{{ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}
		}), old, []string{"TCP/8080"}},
		{"hostPort counts", with(func(tp *testPod) { tp.ports = []corev1.ContainerPort{{ContainerPort: 18080, HostPort: 15012}} }), old, []string{"TCP/15012"}},
		{"a sidecar init container's port counts", with(func(tp *testPod) { tp.ports, tp.initPorts = nil, tcp(15010) }), old, []string{"TCP/15010"}},
		{"scale-up: same ReplicaSet, same revision", with(func(tp *testPod) { tp.owner, tp.hash = old.owner, old.hash }), old, nil},
		{"the older never takes from the newer", old, with(same), nil},
		{"same second: the name decides (older)", with(func(tp *testPod) { tp.sec = 0 }), old, []string{"TCP/15010", "TCP/15012", "TCP/8080"}},
		{"same second: the name decides (newer)", old, with(func(tp *testPod) { tp.sec = 0 }), nil},
		{"another Deployment", with(func(tp *testPod) { tp.owner = "other-bbb" }), old, nil},
		{"same Deployment name, another namespace", with(func(tp *testPod) { tp.ns = "istio-2" }), old, nil},
		{"bare pods", with(func(tp *testPod) { tp.kind = "" }), testPod{name: "bare", ports: old.ports}, nil},
		{"a bare newer pod", with(func(tp *testPod) { tp.kind = "" }), old, nil},
		{"a ReplicaSet not named <deployment>-<hash>", with(func(tp *testPod) { tp.owner = "manual" }), old, nil},
		{"DaemonSet revisions", testPod{name: "ds-2", sec: 9, kind: "DaemonSet", owner: "ds", hash: "r2", ports: tcp(53)},
			testPod{name: "ds-1", kind: "DaemonSet", owner: "ds", hash: "r1", ports: tcp(53)}, []string{"TCP/53"}},
		{"DaemonSet, same revision", testPod{name: "ds-2", sec: 9, kind: "DaemonSet", owner: "ds", hash: "r1", ports: tcp(53)},
			testPod{name: "ds-1", kind: "DaemonSet", owner: "ds", hash: "r1", ports: tcp(53)}, nil},
		{"StatefulSet replicas are not revisions", testPod{name: "web-1", sec: 9, kind: "StatefulSet", owner: "web", hash: "r2", ports: tcp(80)},
			testPod{name: "web-0", kind: "StatefulSet", owner: "web", hash: "r1", ports: tcp(80)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := takesOver(tc.newer.pod(), tc.older.pod())
			if !slices.Equal(got, tc.want) {
				t.Fatalf("takesOver = %v, want %v", got, tc.want)
			}
		})
	}
}

// fakeRun is a podRun without processes: stopping it ends it at once.
func fakeRun(rt *Runtime, pod *corev1.Pod) *podRun {
	p := &podRun{rt: rt, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, key: pod.Namespace + "/" + pod.Name,
		pod: pod, done: make(chan struct{})}
	p.cancel = func() { close(p.done) }
	p.apps = []*container{{pod: p, spec: pod.Spec.Containers[0], phase: phaseRunning}}
	return p
}

func TestClaimPorts(t *testing.T) {
	var logs []string
	rt := &Runtime{cfg: Config{Changed: func(string, string) {}, Logf: func(f string, a ...any) { logs = append(logs, f) }},
		pods: map[types.UID]*podRun{}}
	add := func(tp testPod) *podRun {
		p := fakeRun(rt, tp.pod())
		rt.pods[p.uid] = p
		return p
	}
	grace := int64(120)
	oldPod := testPod{name: "istiod-aaa-1", kind: "ReplicaSet", owner: "istiod-aaa", hash: "aaa", ports: tcp(15010)}.pod()
	oldPod.Spec.TerminationGracePeriodSeconds = &grace
	old := fakeRun(rt, oldPod)
	rt.pods[old.uid] = old
	sibling := add(testPod{name: "istiod-bbb-1", sec: 5, kind: "ReplicaSet", owner: "istiod-bbb", hash: "bbb", ports: tcp(15010)})
	other := add(testPod{name: "other-aaa-1", kind: "ReplicaSet", owner: "other-aaa", hash: "aaa", ports: tcp(15010)})
	newer := add(testPod{name: "istiod-bbb-2", sec: 10, kind: "ReplicaSet", owner: "istiod-bbb", hash: "bbb", ports: tcp(15010)})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !rt.claimPorts(ctx, newer) {
		t.Fatal("the newest pod did not start")
	}
	h := old.handedOver()
	if h == nil || h.uid != newer.uid || !old.stopped() || old.gracePeriod() != handoverGraceMax {
		t.Fatalf("older revision: handover %+v, stopped %v, grace %s; want handed over to %s, stopped, grace %s",
			h, old.stopped(), old.gracePeriod(), newer.uid, handoverGraceMax)
	}
	if !strings.Contains(h.message(), "istio-system/istiod-bbb-2") || !strings.Contains(h.message(), "TCP/15010") {
		t.Fatalf("message %q does not name the new pod and the port", h.message())
	}
	for _, p := range []*podRun{sibling, other} {
		if p.handedOver() != nil || p.stopped() {
			t.Fatalf("%s was stopped: a replica of the same revision / another Deployment keeps its ports", p.key)
		}
	}
	if len(logs) != 1 || !strings.Contains(logs[0], "hands its ports") {
		t.Fatalf("want one lifecycle line, got %q", logs)
	}

	// The stopped pod does not resume while the newer one exists; a
	// handed-over pod that comes up again (stand-in restarted) does not
	// start either.
	if rt.resumableLocked(old, old.latest()) {
		t.Fatal("resumable while the newer pod exists")
	}
	again := fakeRun(rt, oldPod)
	rt.pods[old.uid] = again
	if rt.claimPorts(ctx, again) || again.handedOver() == nil {
		t.Fatal("the older pod started next to the newer one")
	}
	again.finishHandover()
	if cs := again.apps[0].status(); cs.State.Terminated != nil {
		t.Fatalf("a running container was marked: %+v", cs.State)
	}
	again.apps[0].phase = phaseWaiting
	again.finishHandover()
	if cs := again.apps[0].status(); cs.State.Terminated == nil || cs.State.Terminated.Reason != reasonHandedOver || cs.Ready {
		t.Fatalf("container of a pod that did not start: %+v", cs)
	}
	close(again.done)
	rt.pods[old.uid] = old

	// Once the newer pods of another revision are gone, it may start again.
	delete(rt.pods, newer.uid)
	if rt.resumableLocked(old, old.latest()) {
		t.Fatal("resumable while another newer pod of the new revision exists")
	}
	delete(rt.pods, sibling.uid)
	if !rt.resumableLocked(old, old.latest()) {
		t.Fatal("not resumable once the newer pods are gone")
	}
	deleting := old.latest().DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if rt.resumableLocked(old, deleting) {
		t.Fatal("a pod being deleted resumes")
	}
}

func TestHandedOverStatus(t *testing.T) {
	rt := &Runtime{cfg: Config{Changed: func(string, string) {}}}
	pod := testPod{name: "istiod-aaa-1", kind: "ReplicaSet", owner: "istiod-aaa", hash: "aaa"}.pod()
	h := &handover{uid: "uid-new", key: "istio-system/istiod-bbb-1", ports: []string{"TCP/15010"}}
	p := &podRun{rt: rt, pod: pod, volumesOK: true, initsDone: true, handover: h}
	c := &container{pod: p, spec: corev1.Container{Name: "discovery"}, phase: phaseTerminated, reason: reasonHandedOver, message: h.message()}
	c.recordTermination()
	p.apps = []*container{c}
	old := &corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	st := p.status(old, "192.0.2.7")
	if st.Phase != corev1.PodRunning {
		t.Fatalf("phase %s, want Running (restartPolicy Always, not replaced by its ReplicaSet)", st.Phase)
	}
	for _, ct := range []corev1.PodConditionType{corev1.PodReady, corev1.ContainersReady} {
		if conditionTrue(st, ct) {
			t.Fatalf("%s True: %+v", ct, st.Conditions)
		}
	}
	cs := st.ContainerStatuses[0]
	if term := cs.State.Terminated; term == nil || term.Reason != reasonHandedOver || !strings.Contains(term.Message, "istiod-bbb-1") || cs.Ready {
		t.Fatalf("container status %+v", cs)
	}
}
