package simulate

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/kubeletapi"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
)

// pods marks pods bound to one node Running/Ready with an IP from the node's
// podCIDR, and finishes their graceful deletion, as kubelet + containerd +
// CNI would. Pods the native runtime handles are run for real instead.
type pods struct {
	node   *Node
	cidr   *net.IPNet
	native *native.Runtime // nil: every pod is simulated
	lister corev1listers.PodLister
	// Touched only by the single queue worker.
	inUse map[string]string // pod IP -> pod key (namespace/name)
	byKey map[string]string // pod key -> pod IP
}

func (p *pods) run(ctx context.Context) error {
	if err := p.waitPodCIDR(ctx); err != nil {
		return err
	}
	p.inUse = map[string]string{}
	p.byKey = map[string]string{}
	factory := informers.NewSharedInformerFactoryWithOptions(p.node.Client, 10*time.Minute,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", p.node.Name).String()
		}))
	inf := factory.Core().V1().Pods()
	p.lister = inf.Lister()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	if p.node.Native != nil {
		rt, err := p.newRuntime(ctx, func(ns, name string) { queue.Add(ns + "/" + name) })
		if err != nil {
			return err
		}
		p.native = rt
		// Runs after the worker stopped (defers run last-in first-out).
		defer rt.Shutdown()
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("simulate: pod handler: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), inf.Informer().HasSynced) {
		return fmt.Errorf("simulate: node %s: pod cache sync: %w", p.node.Name, ctx.Err())
	}
	// Seed the allocator with the IPs pods already have (after a restart).
	existing, err := inf.Lister().List(everything())
	if err != nil {
		return fmt.Errorf("simulate: list pods: %w", err)
	}
	if p.native != nil {
		p.native.RemoveStale(existing)
	}
	for _, pod := range existing {
		if ip := net.ParseIP(pod.Status.PodIP); ip != nil && !pod.Spec.HostNetwork && p.cidr.Contains(ip) && p.simulatedRange(ip) {
			key := pod.Namespace + "/" + pod.Name
			p.inUse[ip.String()] = key
			p.byKey[key] = ip.String()
		}
	}
	errc := make(chan error, 1)
	if k := p.node.KubeletAPI; k != nil {
		api := &kubeletapi.Server{NodeName: p.node.Name, NodeIP: p.node.IP, Port: k.Port,
			CertPEM: k.ServingCertPEM, KeyPEM: k.ServingKeyPEM, ClientCAPEM: k.ClientCAPEM,
			Pods: p, Logf: p.node.Logf}
		if p.native != nil {
			api.Native = p.native
		}
		go func() { errc <- api.Serve(ctx) }()
	}
	// A single worker owns the allocator maps.
	worker := make(chan struct{})
	go func() {
		defer close(worker)
		for {
			key, quit := queue.Get()
			if quit {
				return
			}
			if err := p.sync(ctx, inf.Lister().Pods, key); err != nil {
				p.node.Logf("node %s: pod %s: %v", p.node.Name, key, err)
				queue.AddRateLimited(key)
			} else {
				queue.Forget(key)
			}
			queue.Done(key)
		}
	}()
	var apiErr error
	select {
	case apiErr = <-errc:
	case <-ctx.Done():
	}
	// No pod is started after this; the deferred Shutdown stops the
	// native processes.
	queue.ShutDown()
	<-worker
	return apiErr
}

// Pod finds a pod bound to this node (for the kubelet API).
func (p *pods) Pod(namespace, name string) (*corev1.Pod, bool) {
	pod, err := p.lister.Pods(namespace).Get(name)
	return pod, err == nil
}

func (p *pods) newRuntime(ctx context.Context, changed func(namespace, name string)) (*native.Runtime, error) {
	n := p.node.Native
	var cni *native.CNI
	if n.CNIBinDir != "" {
		cni = &native.CNI{BinDir: n.CNIBinDir, Bridge: n.CNIBridge, PodCIDR: p.cidr.String(), DataDir: n.CNIDir}
	}
	rt, err := native.New(ctx, native.Config{
		Client: p.node.Client, NodeName: p.node.Name, NodeIP: p.node.IP,
		ImagesDir: n.ImagesDir, StateDir: n.StateDir, LogDir: n.LogDir, API: n.API,
		Allocatable: capacity(), CNI: cni, Logf: p.node.Logf, Changed: changed,
	})
	if err != nil {
		return nil, fmt.Errorf("simulate: node %s: %w", p.node.Name, err)
	}
	return rt, nil
}

func everything() labels.Selector { return labels.Everything() }

func (p *pods) waitPodCIDR(ctx context.Context) error {
	err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		node, err := p.node.Client.CoreV1().Nodes().Get(ctx, p.node.Name, metav1.GetOptions{})
		if err != nil {
			p.node.Logf("node %s: waiting for podCIDR: %v", p.node.Name, err)
			return false, nil
		}
		if node.Spec.PodCIDR == "" {
			return false, nil
		}
		_, cidr, err := net.ParseCIDR(node.Spec.PodCIDR)
		if err != nil {
			return false, fmt.Errorf("simulate: node %s podCIDR %q: %w", p.node.Name, node.Spec.PodCIDR, err)
		}
		p.cidr = cidr
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("simulate: node %s: wait for podCIDR: %w", p.node.Name, err)
	}
	p.node.Logf("node %s: podCIDR %s", p.node.Name, p.cidr)
	return nil
}

func (p *pods) release(key string) {
	if ip, ok := p.byKey[key]; ok {
		delete(p.inUse, ip)
		delete(p.byKey, key)
	}
}

// allocate returns the pod's IP, taking the next free address of the lower
// half of the podCIDR from .2 on (.1 is the bridge gateway on a k3s node;
// the upper half is the native pods' CNI range, native.NativeRange).
func (p *pods) allocate(key, current string) (string, error) {
	if ip, ok := p.byKey[key]; ok {
		return ip, nil
	}
	if ip := net.ParseIP(current); ip != nil && p.cidr.Contains(ip) && p.simulatedRange(ip) {
		if _, taken := p.inUse[ip.String()]; !taken {
			p.inUse[ip.String()] = key
			p.byKey[key] = ip.String()
			return ip.String(), nil
		}
	}
	base := p.cidr.IP.To4()
	if base == nil {
		return "", fmt.Errorf("simulate: podCIDR %s is not IPv4", p.cidr)
	}
	ones, bits := p.cidr.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	start := binary.BigEndian.Uint32(base)
	for off := uint32(2); off < size/2; off++ {
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, start+off)
		if _, taken := p.inUse[ip.String()]; !taken {
			p.inUse[ip.String()] = key
			p.byKey[key] = ip.String()
			return ip.String(), nil
		}
	}
	return "", fmt.Errorf("simulate: podCIDR %s exhausted", p.cidr)
}

// simulatedRange reports whether ip is in the lower half of the podCIDR.
func (p *pods) simulatedRange(ip net.IP) bool {
	first, _, err := native.NativeRange(p.cidr)
	return err != nil || binary.BigEndian.Uint32(ip.To4()) < binary.BigEndian.Uint32(first)
}

func (p *pods) sync(ctx context.Context, lister func(namespace string) corev1listers.PodNamespaceLister, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("simulate: bad key: %w", err)
	}
	pod, err := lister(ns).Get(name)
	if apierrors.IsNotFound(err) {
		p.release(key)
		if p.native != nil {
			p.native.Gone(ns, name)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("simulate: get pod: %w", err)
	}
	if p.native != nil && p.native.Handles(pod) {
		p.release(key)
		return p.syncNative(ctx, pod)
	}
	if pod.DeletionTimestamp != nil {
		return p.finishDeletion(ctx, key, pod)
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		p.release(key)
		return nil
	}
	ip := p.node.IP
	if !pod.Spec.HostNetwork {
		if ip, err = p.allocate(key, pod.Status.PodIP); err != nil {
			return err
		}
	}
	want := pod.DeepCopy()
	runningStatus(&want.Status, pod, p.node.IP, ip)
	if statusSettled(&pod.Status, &want.Status) {
		return nil
	}
	if _, err := p.node.Client.CoreV1().Pods(ns).UpdateStatus(ctx, want, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("simulate: update pod status: %w", err)
	}
	return nil
}

// syncNative reports a native pod's status from its processes, and once a
// deleted pod's processes have stopped, finishes its deletion.
func (p *pods) syncNative(ctx context.Context, pod *corev1.Pod) error {
	p.native.Sync(pod)
	if pod.DeletionTimestamp != nil {
		if !p.native.Stopped(pod.UID) {
			return nil // the runtime enqueues the pod again when they have
		}
		final := p.native.FinalStatus(pod)
		err := p.finishDeletionWith(ctx, pod, func(st *corev1.PodStatus) {
			if final != nil {
				*st = *final
			} else {
				terminatedStatus(st, pod)
			}
		})
		if err != nil {
			return err
		}
		p.native.Forget(pod.UID)
		return nil
	}
	want := p.native.Status(pod)
	if want == nil || apiequality.Semantic.DeepEqual(&pod.Status, want) {
		return nil
	}
	update := pod.DeepCopy()
	update.Status = *want
	if _, err := p.node.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, update, metav1.UpdateOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("simulate: update native pod status: %w", err)
	}
	return nil
}

// finishDeletion does what kubelet does once a deleted pod's containers have
// stopped: report a terminal phase, then delete the pod with grace period 0
// so the apiserver removes it (finalizers of others still hold it).
func (p *pods) finishDeletion(ctx context.Context, key string, pod *corev1.Pod) error {
	p.release(key)
	return p.finishDeletionWith(ctx, pod, func(st *corev1.PodStatus) { terminatedStatus(st, pod) })
}

func (p *pods) finishDeletionWith(ctx context.Context, pod *corev1.Pod, terminal func(*corev1.PodStatus)) error {
	pods := p.node.Client.CoreV1().Pods(pod.Namespace)
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		want := pod.DeepCopy()
		terminal(&want.Status)
		if _, err := pods.UpdateStatus(ctx, want, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("simulate: terminal status: %w", err)
		}
	}
	zero := int64(0)
	uid := pod.UID
	err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("simulate: delete pod: %w", err)
	}
	return nil
}

func fakeID(prefix, seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return prefix + hex.EncodeToString(sum[:])
}

func runningStatus(st *corev1.PodStatus, pod *corev1.Pod, hostIP, podIP string) {
	now := metav1.Now()
	st.Phase = corev1.PodRunning
	st.HostIP = hostIP
	st.HostIPs = []corev1.HostIP{{IP: hostIP}}
	st.PodIP = podIP
	st.PodIPs = []corev1.PodIP{{IP: podIP}}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		setCondition(st, t, now)
	}
	var inits []corev1.ContainerStatus
	for _, c := range pod.Spec.InitContainers {
		cs := containerStatus(pod, c, now, st.InitContainerStatuses)
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", StartedAt: now, FinishedAt: now, ContainerID: cs.ContainerID}}
			started := false
			cs.Started = &started
		}
		inits = append(inits, cs)
	}
	st.InitContainerStatuses = inits
	var cs []corev1.ContainerStatus
	for _, c := range pod.Spec.Containers {
		cs = append(cs, containerStatus(pod, c, now, st.ContainerStatuses))
	}
	st.ContainerStatuses = cs
}

func containerStatus(pod *corev1.Pod, c corev1.Container, now metav1.Time, old []corev1.ContainerStatus) corev1.ContainerStatus {
	for _, o := range old {
		if o.Name == c.Name && o.Ready && o.State.Running != nil {
			return o
		}
	}
	started := true
	id := fakeID("containerd://", string(pod.UID)+"/"+c.Name)[:len("containerd://")+64]
	return corev1.ContainerStatus{
		Name:        c.Name,
		Image:       c.Image,
		ImageID:     fakeID("sha256:", c.Image),
		ContainerID: id,
		Ready:       true,
		Started:     &started,
		State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
	}
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			if st.Conditions[i].Status != corev1.ConditionTrue {
				st.Conditions[i].Status = corev1.ConditionTrue
				st.Conditions[i].LastTransitionTime = now
				st.Conditions[i].Reason = ""
				st.Conditions[i].Message = ""
			}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
}

func terminatedStatus(st *corev1.PodStatus, pod *corev1.Pod) {
	now := metav1.Now()
	st.Phase = corev1.PodSucceeded
	for i := range st.Conditions {
		switch st.Conditions[i].Type {
		case corev1.PodReady, corev1.ContainersReady, corev1.PodReadyToStartContainers:
			st.Conditions[i].Status = corev1.ConditionFalse
			st.Conditions[i].Reason = "PodCompleted"
			st.Conditions[i].LastTransitionTime = now
		}
	}
	for i := range st.ContainerStatuses {
		c := &st.ContainerStatuses[i]
		c.Ready = false
		started := false
		c.Started = &started
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: now, ContainerID: c.ContainerID}}
	}
}

// statusSettled reports whether the pod already shows what we would write.
func statusSettled(have, want *corev1.PodStatus) bool {
	if have.Phase != want.Phase || have.PodIP != want.PodIP || have.HostIP != want.HostIP {
		return false
	}
	if len(have.ContainerStatuses) != len(want.ContainerStatuses) || len(have.InitContainerStatuses) != len(want.InitContainerStatuses) {
		return false
	}
	for _, c := range have.ContainerStatuses {
		if !c.Ready || c.State.Running == nil {
			return false
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		ok := false
		for _, c := range have.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
