package native

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// This applies only to native pods that share the node's network namespace
// (hostNetwork pods, or every pod when the node has no CNI configured):
// pods with a network namespace of their own have their own ports, and both
// pods of a surge rollout run at once, as on a real cluster.
//
// Such pods share the node's ports, so during a surge
// rollout (a Deployment with maxSurge, a DaemonSet with maxSurge) the new
// pod could never bind the ports its predecessor on the same node holds,
// and the controller, waiting for the new pod to be Ready before it removes
// the old one, would wait forever. A real cluster gives each pod its own
// network namespace. The runtime simulates a port handover instead: before
// a pod starts its containers, it stops the older pods of another revision
// of the same workload on the node that declare one of its ports (see
// takesOver), and keeps them stopped while a newer such pod exists.

const (
	// reasonHandedOver is the terminated reason of the containers of a pod
	// whose ports went to a newer pod.
	reasonHandedOver = "PortsHandedOver"
	// handoverGraceMax caps the grace period of a pod stopped for a
	// handover (its terminationGracePeriodSeconds otherwise).
	handoverGraceMax = 30 * time.Second
)

// handover records that a pod's ports went to a newer pod.
type handover struct {
	uid   types.UID // of the newer pod
	key   string    // namespace/name of the newer pod
	ports []string  // protocol/port, sorted
}

func (h *handover) message() string {
	return fmt.Sprintf("ports %s handed over to pod %s (%s), a newer revision on this node; not restarted while it exists",
		strings.Join(h.ports, ","), h.key, h.uid)
}

// workload names what a pod is a replica of and which revision of it, as
// far as a handover is concerned.
type workload struct {
	name     string // kind namespace/name
	revision string
}

// workloadOf is the workload a pod belongs to:
//   - a pod controlled by a ReplicaSet named <deployment>-<pod-template-hash>
//     (a Deployment's, the hash being the pod's pod-template-hash label)
//     belongs to that Deployment, at revision pod-template-hash;
//   - a pod controlled by a DaemonSet belongs to it, at revision
//     controller-revision-hash.
//
// Other pods (bare pods, bare ReplicaSets, StatefulSets, Jobs: their
// replicas that coexist are distinct replicas, not revisions of one)
// belong to none.
func workloadOf(pod *corev1.Pod) (workload, bool) {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || !strings.HasPrefix(ref.APIVersion, appsv1.GroupName+"/") {
		return workload{}, false
	}
	switch ref.Kind {
	case "ReplicaSet":
		hash := pod.Labels[appsv1.DefaultDeploymentUniqueLabelKey]
		deployment, ok := strings.CutSuffix(ref.Name, "-"+hash)
		if hash == "" || !ok || deployment == "" {
			return workload{}, false
		}
		return workload{name: "Deployment " + pod.Namespace + "/" + deployment, revision: hash}, true
	case "DaemonSet":
		hash := pod.Labels[appsv1.DefaultDaemonSetUniqueLabelKey]
		if hash == "" {
			return workload{}, false
		}
		return workload{name: "DaemonSet " + pod.Namespace + "/" + ref.Name, revision: hash}, true
	}
	return workload{}, false
}

// podPorts is the set of protocol/port a pod declares: every container's
// and sidecar init container's ports[].containerPort and hostPort
// (protocol TCP when unset). In the node's network namespace each of them
// is a port on the node.
func podPorts(pod *corev1.Pod) map[string]bool {
	ports := map[string]bool{}
	add := func(c *corev1.Container) {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			for _, n := range []int32{p.ContainerPort, p.HostPort} {
				if n > 0 {
					ports[string(proto)+"/"+strconv.Itoa(int(n))] = true
				}
			}
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			add(c)
		}
	}
	for i := range pod.Spec.Containers {
		add(&pod.Spec.Containers[i])
	}
	return ports
}

// createdBefore orders pods by creationTimestamp, then name.
func createdBefore(a, b *corev1.Pod) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// takesOver returns the ports newer takes from older on their node, or nil
// when it takes none. It takes the ports they share when both belong to
// the same workload (workloadOf) at different revisions and older was
// created before newer. Two replicas of one revision (a scale-up) never
// hand over: the second one fails to bind, as two hostNetwork pods would.
func takesOver(newer, older *corev1.Pod) []string {
	if newer.UID == older.UID || !createdBefore(older, newer) {
		return nil
	}
	wn, ok := workloadOf(newer)
	if !ok {
		return nil
	}
	wo, ok := workloadOf(older)
	if !ok || wn.name != wo.name || wn.revision == wo.revision {
		return nil
	}
	theirs := podPorts(older)
	var shared []string
	for p := range podPorts(newer) {
		if theirs[p] {
			shared = append(shared, p)
		}
	}
	slices.Sort(shared)
	return shared
}

// claimPorts is called when p is about to start its containers. If a newer
// pod on the node takes p's ports, p is handed over to it and does not
// start (false). Otherwise the older pods whose ports p takes are stopped
// (SIGTERM, SIGKILL after their grace period, at most handoverGraceMax) and
// kept stopped, and claimPorts returns true once their processes are gone
// (false if ctx ends first).
func (r *Runtime) claimPorts(ctx context.Context, p *podRun) bool {
	if p.ownNetwork() {
		return true
	}
	pod := p.latest()
	r.mu.Lock()
	for _, o := range r.pods {
		if o == p || o.ownNetwork() {
			continue
		}
		if ports := takesOver(o.latest(), pod); ports != nil {
			r.mu.Unlock()
			h := &handover{uid: o.uid, key: o.key, ports: ports}
			p.handOver(h)
			r.logf("native: pod %s (%s) not started: %s", p.key, p.uid, h.message())
			return false
		}
	}
	var older []*podRun
	for _, o := range r.pods {
		if o == p || o.stopped() || o.ownNetwork() {
			continue
		}
		ports := takesOver(pod, o.latest())
		if ports == nil {
			continue
		}
		older = append(older, o)
		h := &handover{uid: p.uid, key: p.key, ports: ports}
		if grace := min(podGrace(o.latest()), handoverGraceMax); o.handOver(h) {
			r.logf("native: pod %s (%s) hands its ports %s over to pod %s (%s), a newer revision: stopping it (grace %s), not restarted while that pod exists",
				o.key, o.uid, strings.Join(ports, ","), p.key, p.uid, grace)
			o.stop(grace)
		}
	}
	r.mu.Unlock()
	for _, o := range older {
		select {
		case <-o.done:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// resumableLocked reports whether p, handed over and stopped, may start
// again: no pod on the node takes its ports any more (r.mu held).
func (r *Runtime) resumableLocked(p *podRun, pod *corev1.Pod) bool {
	if p.handedOver() == nil || !p.stopped() || pod.DeletionTimestamp != nil {
		return false
	}
	for _, o := range r.pods {
		if o != p && !o.ownNetwork() && takesOver(o.latest(), pod) != nil {
			return false
		}
	}
	return true
}

// handedOverPodsLocked are the pods whose ports went to another pod (r.mu
// held): when a pod is forgotten, they may resume.
func (r *Runtime) handedOverPodsLocked() []*podRun {
	var out []*podRun
	for _, p := range r.pods {
		if p.handedOver() != nil {
			out = append(out, p)
		}
	}
	return out
}

// handOver records that p's ports go to a newer pod, unless p is already
// stopping (being deleted, or handed over before); it reports whether it
// recorded it.
func (p *podRun) handOver(h *handover) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping || p.handover != nil {
		return false
	}
	p.handover = h
	return true
}

// handedOver is the handover of p's ports, or nil.
func (p *podRun) handedOver() *handover {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handover
}

// finishHandover reports the containers of a handed-over pod that were
// not running when it stopped (waiting to start or to restart) as
// terminated for the handover; those that ran ended with it already.
func (p *podRun) finishHandover() {
	h := p.handedOver()
	if h == nil {
		return
	}
	for _, c := range append(append([]*container(nil), p.inits...), p.apps...) {
		c.update(func() {
			if c.phase != phaseWaiting {
				return
			}
			now := time.Now()
			c.phase, c.reason, c.message, c.ready, c.started = phaseTerminated, reasonHandedOver, h.message(), false, false
			c.exitCode, c.startedAt, c.endedAt = 0, now, now
			c.recordTermination()
		})
	}
}
