package native

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodStatus(t *testing.T) {
	started := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	running := func(c *container) {
		c.phase, c.startedAt, c.started, c.ready, c.id = phaseRunning, started, true, true, "containerd://1"
	}
	unready := func(c *container) { running(c); c.ready = false }
	crashLooping := func(c *container) {
		c.phase, c.reason, c.restarts = phaseWaiting, reasonCrashLoop, 2
		c.lastTerm = &corev1.ContainerStateTerminated{ExitCode: 1, Reason: reasonError}
	}
	exited := func(code int32) func(c *container) {
		return func(c *container) {
			c.phase = phaseTerminated
			c.lastTerm = &corev1.ContainerStateTerminated{ExitCode: code}
		}
	}
	for _, tc := range []struct {
		name       string
		volumesOK  bool
		initsDone  bool
		containers []func(*container)
		gates      []corev1.PodReadinessGate
		phase      corev1.PodPhase
		ready      bool
		waiting    string
	}{
		{"volumes pending", false, false, []func(*container){func(*container) {}}, nil, corev1.PodPending, false, reasonContainerCreating},
		{"running and ready", true, true, []func(*container){running}, nil, corev1.PodRunning, true, ""},
		{"readiness probe failing", true, true, []func(*container){unready}, nil, corev1.PodRunning, false, ""},
		{"one of two crash-looping", true, true, []func(*container){running, crashLooping}, nil, corev1.PodRunning, false, ""},
		{"readiness gate not met", true, true, []func(*container){running}, []corev1.PodReadinessGate{{ConditionType: "example.com/gate"}}, corev1.PodRunning, false, ""},
		{"all exited 0", true, true, []func(*container){exited(0), exited(0)}, nil, corev1.PodSucceeded, false, ""},
		{"one exited 1", true, true, []func(*container){exited(0), exited(1)}, nil, corev1.PodFailed, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := &Runtime{cfg: Config{Changed: func(string, string) {}}}
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "n"}, Spec: corev1.PodSpec{ReadinessGates: tc.gates}}
			p := &podRun{rt: rt, pod: pod, created: started, volumesOK: tc.volumesOK, initsDone: tc.initsDone, podIP: "192.0.2.7"}
			for i, set := range tc.containers {
				c := &container{pod: p, spec: corev1.Container{Name: string(rune('a' + i))}, phase: phaseWaiting, reason: reasonContainerCreating}
				set(c)
				p.apps = append(p.apps, c)
			}
			st := p.status(&corev1.PodStatus{}, "192.0.2.7")
			if st.Phase != tc.phase || st.PodIP != "192.0.2.7" || st.HostIP != "192.0.2.7" {
				t.Fatalf("phase %s podIP %s hostIP %s, want %s on 192.0.2.7", st.Phase, st.PodIP, st.HostIP, tc.phase)
			}
			if got := conditionTrue(st, corev1.PodReady); got != tc.ready {
				t.Fatalf("Ready %v, want %v: %+v", got, tc.ready, st.Conditions)
			}
			if tc.waiting != "" && (st.ContainerStatuses[0].State.Waiting == nil || st.ContainerStatuses[0].State.Waiting.Reason != tc.waiting) {
				t.Fatalf("first container state %+v, want waiting %s", st.ContainerStatuses[0].State, tc.waiting)
			}
			// Built again from the same state, it compares equal (no
			// needless status writes), times being whole seconds.
			again := p.status(st, "192.0.2.7")
			if again.StartTime.Time != st.StartTime.Time || len(again.Conditions) != len(st.Conditions) {
				t.Fatalf("status not stable: %+v vs %+v", again, st)
			}
			for i := range st.Conditions {
				if again.Conditions[i] != st.Conditions[i] {
					t.Fatalf("condition %d changed: %+v -> %+v", i, st.Conditions[i], again.Conditions[i])
				}
			}
		})
	}
}
