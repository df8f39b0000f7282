package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
)

// handoverWait bounds each step of the port handover checks.
const handoverWait = 90 * time.Second

// checkRollout changes istiod's pod template and checks that the rollout
// completes on the one node: the new pod takes the old pod's ports (the
// old one is stopped and reported PortsHandedOver, not Ready, still
// Running), becomes Ready, and the Deployment controller removes the old
// pod.
func checkRollout(t *testing.T, ctx context.Context, cs kubernetes.Interface, srv *proc, dataDir, images string, old *corev1.Pod, oldPID int) {
	t.Helper()
	pods := cs.CoreV1().Pods("istio-system")
	w, err := pods.Watch(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	handedOver := make(chan *corev1.Pod, 1)
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if ev.Type != watch.Modified || !ok || p.UID != old.UID {
				continue
			}
			for _, c := range p.Status.ContainerStatuses {
				if term := c.State.Terminated; term != nil && term.Reason == "PortsHandedOver" {
					select {
					case handedOver <- p:
					default:
					}
				}
			}
		}
	}()

	start := time.Now()
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"standin.e2e/rollout":%q}}}}}`, start.Format(time.RFC3339Nano))
	if _, err := cs.AppsV1().Deployments("istio-system").Patch(ctx, "istiod", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var now *corev1.Pod
	poll(t, ctx, "rollout of a new istiod pod template complete", handoverWait, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if s := d.Status; s.ObservedGeneration < d.Generation || s.Replicas != 1 || s.UpdatedReplicas != 1 || s.ReadyReplicas != 1 {
			return false, fmt.Errorf("deployment status %+v", s)
		}
		list, err := pods.List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		if err != nil {
			return false, err
		}
		if len(list.Items) != 1 {
			return false, fmt.Errorf("%d istiod pods: %v", len(list.Items), podNames(list.Items))
		}
		p := &list.Items[0]
		if p.UID == old.UID || p.Labels["pod-template-hash"] == old.Labels["pod-template-hash"] || p.DeletionTimestamp != nil || !podReady(p) {
			return false, fmt.Errorf("pod %s (hash %s) %s ready %v", p.Name, p.Labels["pod-template-hash"], p.Status.Phase, podReady(p))
		}
		now = p
		return true, nil
	})
	t.Logf("rollout of a new istiod pod template complete after %s: %s replaced %s",
		time.Since(start).Round(100*time.Millisecond), now.Name, old.Name)
	pid := nativePID(t, dataDir, now.Name)
	checkNativeProcess(t, pid, images, true)
	if processAlive(oldPID) {
		t.Fatalf("the old istiod (pid %d) still runs", oldPID)
	}

	select {
	case p := <-handedOver:
		checkHandedOver(t, p, now.Name)
	case <-time.After(5 * time.Second):
		t.Fatalf("the old pod %s was never reported PortsHandedOver", old.Name)
	}
	var lines []string
	for _, l := range strings.Split(srv.output(), "\n") {
		if strings.Contains(l, "native: pod istio-system/"+old.Name+" ("+string(old.UID)+") hands its ports") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("%d handover lines for %s in the stand-in's log, want 1: %q", len(lines), old.Name, lines)
	}
	t.Logf("stand-in: %s", lines[0])
}

// checkHandedOver checks how a pod whose ports went to newer is reported.
func checkHandedOver(t *testing.T, p *corev1.Pod, newer string) {
	t.Helper()
	if p.Status.Phase != corev1.PodRunning || podReady(p) || conditionTrue(p, corev1.ContainersReady) {
		t.Fatalf("handed-over pod %s: phase %s, Ready %v, ContainersReady %v; want Running, not ready", p.Name, p.Status.Phase, podReady(p), conditionTrue(p, corev1.ContainersReady))
	}
	for _, c := range p.Status.ContainerStatuses {
		if term := c.State.Terminated; term == nil || term.Reason != "PortsHandedOver" || !strings.Contains(term.Message, newer) || c.Ready {
			t.Fatalf("handed-over pod %s, container %s: %+v, want terminated PortsHandedOver naming %s", p.Name, c.Name, c, newer)
		}
	}
}

// checkResume runs two ReplicaSets of one workload (named
// resume-<pod-template-hash>) with istiod's pod template, scaled down to 0
// first: the newer pod takes the older one's ports, and once it is deleted
// the older pod starts again. It returns the resumed pod's pid.
func checkResume(t *testing.T, ctx context.Context, cs kubernetes.Interface, srv *proc, dataDir, images string) int {
	t.Helper()
	scaleIstiod(t, ctx, cs, 0)
	poll(t, ctx, "istiod scaled down to 0", handoverWait, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		return err == nil && len(list.Items) == 0, err
	})
	d, err := cs.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rss := cs.AppsV1().ReplicaSets("istio-system")
	create := func(hash string) {
		labels := map[string]string{"app": "istiod-resume", "pod-template-hash": hash}
		tmpl := *d.Spec.Template.DeepCopy()
		tmpl.Labels = labels
		one := int32(1)
		_, err := rss.Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: "resume-" + hash, Labels: map[string]string{"app": "istiod-resume"}},
			Spec:       appsv1.ReplicaSetSpec{Replicas: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	pod := func(ctx context.Context, hash string) (*corev1.Pod, error) {
		list, err := cs.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod-resume,pod-template-hash=" + hash})
		if err != nil || len(list.Items) != 1 {
			return nil, fmt.Errorf("pods of resume-%s: %d, %v", hash, len(list.Items), err)
		}
		return &list.Items[0], nil
	}

	create("h1")
	var first *corev1.Pod
	poll(t, ctx, "pod of resume-h1 Ready", handoverWait, func(ctx context.Context) (bool, error) {
		first, err = pod(ctx, "h1")
		return first != nil && podReady(first), err
	})
	firstPID := nativePID(t, dataDir, first.Name)

	create("h2")
	var second *corev1.Pod
	poll(t, ctx, "pod of resume-h2 Ready, resume-h1's handed over", handoverWait, func(ctx context.Context) (bool, error) {
		second, err = pod(ctx, "h2")
		if second == nil || !podReady(second) {
			return false, err
		}
		first, err = pod(ctx, "h1")
		if first == nil {
			return false, err
		}
		for _, c := range first.Status.ContainerStatuses {
			if c.State.Terminated == nil || c.State.Terminated.Reason != "PortsHandedOver" {
				return false, fmt.Errorf("%s: %+v", first.Name, c.State)
			}
		}
		return true, nil
	})
	checkHandedOver(t, first, second.Name)
	secondPID := nativePID(t, dataDir, second.Name)
	checkNativeProcess(t, secondPID, images, true)
	if processAlive(firstPID) {
		t.Fatalf("the handed-over pod's process (pid %d) still runs", firstPID)
	}

	start := time.Now()
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := rss.GetScale(ctx, "resume-h2", metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = 0
		_, err = rss.UpdateScale(ctx, "resume-h2", sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scale resume-h2 to 0: %v", err)
	}
	var resumed *corev1.Pod
	poll(t, ctx, "resume-h1's pod Ready again once resume-h2's is gone", handoverWait, func(ctx context.Context) (bool, error) {
		if _, err := cs.CoreV1().Pods("istio-system").Get(ctx, second.Name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("%s still there (%v)", second.Name, err)
		}
		resumed, err = pod(ctx, "h1")
		return resumed != nil && podReady(resumed), err
	})
	if resumed.UID != first.UID || resumed.Status.ContainerStatuses[0].RestartCount < 1 {
		t.Fatalf("resumed pod %s (%s), restarts %d; want %s restarted", resumed.Name, resumed.UID, resumed.Status.ContainerStatuses[0].RestartCount, first.UID)
	}
	pid := nativePID(t, dataDir, resumed.Name)
	checkNativeProcess(t, pid, images, true)
	if processAlive(secondPID) {
		t.Fatalf("the deleted pod's process (pid %d) still runs", secondPID)
	}
	if !strings.Contains(srv.output(), "native: pod istio-system/"+first.Name+" ("+string(first.UID)+") starts again") {
		t.Fatalf("no line on %s starting again in the stand-in's log", first.Name)
	}
	t.Logf("%s handed its ports to %s and started again %s after that one's ReplicaSet was scaled to 0",
		first.Name, second.Name, time.Since(start).Round(100*time.Millisecond))
	return pid
}

func podReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && conditionTrue(p, corev1.PodReady)
}

func conditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}
