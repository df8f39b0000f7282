package native

import (
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// wholeSecond is t as the API stores it (RFC 3339, whole seconds), so a
// status built twice from the same events compares equal to what was
// written.
func wholeSecond(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

// containerStatus is c as the API shows it; c.mu is taken.
func (c *container) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	started := c.started && c.phase == phaseRunning
	cs := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      imageID(c.exe),
		ContainerID:  c.id,
		RestartCount: c.restarts,
		Ready:        c.ready && c.phase == phaseRunning,
		Started:      &started,
	}
	switch c.phase {
	case phaseWaiting:
		cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.reason, Message: c.message}
		if c.lastTerm != nil {
			cs.LastTerminationState.Terminated = c.lastTerm.DeepCopy()
		}
	case phaseRunning:
		cs.State.Running = &corev1.ContainerStateRunning{StartedAt: wholeSecond(c.startedAt)}
		if c.lastTerm != nil {
			cs.LastTerminationState.Terminated = c.lastTerm.DeepCopy()
		}
	case phaseTerminated:
		if c.lastTerm != nil {
			cs.State.Terminated = c.lastTerm.DeepCopy()
		} else {
			// A skipped init container.
			cs.State.Terminated = &corev1.ContainerStateTerminated{Reason: c.reason, Message: c.message,
				StartedAt: wholeSecond(c.startedAt), FinishedAt: wholeSecond(c.endedAt)}
		}
		if c.prevTerm != nil {
			cs.LastTerminationState.Terminated = c.prevTerm.DeepCopy()
		}
	}
	return cs
}

// imageID stands for the image digest: the executable's path (there is no
// registry digest for a native image).
func imageID(exe string) string {
	if exe == "" {
		return ""
	}
	return "native://" + exe
}

// status is the pod status to report, based on old (what the API has).
func (p *podRun) status(old *corev1.PodStatus, nodeIP string) *corev1.PodStatus {
	st := old.DeepCopy()
	p.mu.Lock()
	created, volumesOK, volumesErr, initsDone, failed := p.created, p.volumesOK, p.volumesErr, p.initsDone, p.failed
	pod := p.pod
	podIP, sandboxErr := p.podIP, p.sandboxErr
	sandboxReady := p.podIP != "" && sandboxErr == ""
	p.mu.Unlock()
	if volumesErr == "" {
		volumesErr = sandboxErr
	}

	st.HostIP = nodeIP
	st.HostIPs = []corev1.HostIP{{IP: nodeIP}}
	if pod.Spec.HostNetwork {
		podIP = nodeIP
	}
	if podIP != "" {
		// Until the pod's network is set up again (after a restart of
		// the stand-in), the IP it showed stays: it is asked for again.
		st.PodIP = podIP
		st.PodIPs = []corev1.PodIP{{IP: podIP}}
	}
	if st.StartTime == nil {
		t := wholeSecond(created)
		st.StartTime = &t
	}
	st.InitContainerStatuses = nil
	for _, c := range p.inits {
		cs := c.status()
		if cs.State.Waiting != nil && cs.State.Waiting.Reason == reasonContainerCreating && volumesErr != "" {
			cs.State.Waiting.Message = volumesErr
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	anyRunning, allDone, allSucceeded := false, true, true
	var unready []string
	for _, c := range p.apps {
		cs := c.status()
		if !initsDone {
			reason := "PodInitializing"
			if cs.State.Waiting == nil || cs.State.Waiting.Reason == reasonContainerCreating {
				if !volumesOK {
					reason = reasonContainerCreating
				}
				cs.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: volumesErr}}
			}
		}
		switch {
		case cs.State.Running != nil:
			anyRunning, allDone = true, false
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				allSucceeded = false
			}
		default:
			allDone = false
			if cs.LastTerminationState.Terminated != nil {
				anyRunning = true // restarting
			}
		}
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	st.Phase = corev1.PodPending
	switch {
	case failed:
		st.Phase = corev1.PodFailed
	case initsDone && len(p.apps) > 0 && allDone && allSucceeded:
		st.Phase = corev1.PodSucceeded
	case initsDone && len(p.apps) > 0 && allDone:
		st.Phase = corev1.PodFailed
	case anyRunning:
		st.Phase = corev1.PodRunning
	}
	now := wholeSecond(time.Now())
	setCondition(st, corev1.PodReadyToStartContainers, volumesOK && sandboxReady, "", "", now)
	initMsg := ""
	if !initsDone {
		initMsg = "containers with incomplete status: " + bracket(pendingInits(p.inits))
	}
	setCondition(st, corev1.PodInitialized, initsDone, reasonIf(!initsDone, "ContainersNotInitialized"), initMsg, now)
	ready := len(unready) == 0 && initsDone && st.Phase == corev1.PodRunning
	readyMsg := ""
	if len(unready) > 0 {
		readyMsg = "containers with unready status: " + bracket(unready)
	}
	setCondition(st, corev1.ContainersReady, ready, reasonIf(!ready, "ContainersNotReady"), readyMsg, now)
	podReady, gateMsg := ready, ""
	if ready {
		var missing []string
		for _, g := range pod.Spec.ReadinessGates {
			if !conditionTrue(st, g.ConditionType) {
				missing = append(missing, string(g.ConditionType))
			}
		}
		if len(missing) > 0 {
			podReady, gateMsg = false, "corresponding condition of pod readiness gate "+fmt.Sprintf("%q", missing)+" does not exist or is not True"
		}
	}
	reason := ""
	switch {
	case !ready:
		reason, gateMsg = "ContainersNotReady", readyMsg
	case !podReady:
		reason = "ReadinessGatesNotReady"
	}
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		reason = "PodCompleted"
	}
	setCondition(st, corev1.PodReady, podReady, reason, gateMsg, now)
	return st
}

func reasonIf(b bool, reason string) string {
	if b {
		return reason
	}
	return ""
}

func bracket(names []string) string {
	sort.Strings(names)
	return "[" + strings.Join(names, " ") + "]"
}

func pendingInits(inits []*container) []string {
	var out []string
	for _, c := range inits {
		c.mu.Lock()
		done := c.phase == phaseTerminated && (c.lastTerm == nil || c.lastTerm.ExitCode == 0) || c.sidecar() && c.phase == phaseRunning
		c.mu.Unlock()
		if !done {
			out = append(out, c.spec.Name)
		}
	}
	return out
}

func conditionTrue(st *corev1.PodStatus, t corev1.PodConditionType) bool {
	for _, c := range st.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setCondition sets a condition, keeping its transition time while its
// status stays.
func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason, msg string, now metav1.Time) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, Message: msg, LastTransitionTime: now})
}
