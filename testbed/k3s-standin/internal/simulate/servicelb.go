package simulate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// ServiceLB stands in for k3s's servicelb (klipper-lb): LoadBalancer
// Services without a loadBalancerClass get status.loadBalancer.ingress set to
// their spec.externalIPs plus the InternalIP (or ExternalIP) of every Ready
// node. No svclb pods run and no traffic is forwarded.
type ServiceLB struct {
	Client kubernetes.Interface
	Logf   func(format string, args ...any)
}

// Run runs the controller until ctx ends.
func (l *ServiceLB) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(l.Client, 10*time.Minute)
	svcs := factory.Core().V1().Services()
	nodes := factory.Core().V1().Nodes()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer queue.ShutDown()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			queue.Add(key)
		}
	}
	enqueueAll := func(any) {
		list, err := svcs.Lister().List(everything())
		if err != nil {
			return
		}
		for _, s := range list {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				enqueue(s)
			}
		}
	}
	if _, err := svcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) },
	}); err != nil {
		return fmt.Errorf("simulate: servicelb service handler: %w", err)
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueueAll, UpdateFunc: func(old, o any) {
			if !slices.Equal(nodeLBIPs(old.(*corev1.Node)), nodeLBIPs(o.(*corev1.Node))) {
				enqueueAll(o)
			}
		}, DeleteFunc: enqueueAll,
	}); err != nil {
		return fmt.Errorf("simulate: servicelb node handler: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcs.Informer().HasSynced, nodes.Informer().HasSynced) {
		return fmt.Errorf("simulate: servicelb cache sync: %w", ctx.Err())
	}
	go wait.UntilWithContext(ctx, func(ctx context.Context) {
		for {
			key, quit := queue.Get()
			if quit {
				return
			}
			if err := l.sync(ctx, svcs.Lister(), nodes.Lister(), key); err != nil {
				l.Logf("servicelb: %s: %v", key, err)
				queue.AddRateLimited(key)
			} else {
				queue.Forget(key)
			}
			queue.Done(key)
		}
	}, time.Second)
	<-ctx.Done()
	return nil
}

// nodeLBIPs is what servicelb would advertise for a node: its ExternalIP, or
// its InternalIP, when it is Ready.
func nodeLBIPs(n *corev1.Node) []string {
	ready := false
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
			ready = true
		}
	}
	if !ready {
		return nil
	}
	var ext, in []string
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeExternalIP:
			ext = append(ext, a.Address)
		case corev1.NodeInternalIP:
			in = append(in, a.Address)
		}
	}
	if len(ext) > 0 {
		return ext
	}
	return in
}

func (l *ServiceLB) sync(ctx context.Context, svcs corev1listers.ServiceLister, nodes corev1listers.NodeLister, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("simulate: bad key: %w", err)
	}
	svc, err := svcs.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("simulate: get service: %w", err)
	}
	if svc.Spec.LoadBalancerClass != nil {
		return nil
	}
	var ips []string
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		ips = append(ips, svc.Spec.ExternalIPs...)
		list, err := nodes.List(everything())
		if err != nil {
			return fmt.Errorf("simulate: list nodes: %w", err)
		}
		var nodeIPs []string
		for _, n := range list {
			nodeIPs = append(nodeIPs, nodeLBIPs(n)...)
		}
		sort.Strings(nodeIPs)
		for _, ip := range nodeIPs {
			if !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	var have []string
	for _, in := range svc.Status.LoadBalancer.Ingress {
		have = append(have, in.IP)
	}
	if slices.Equal(have, ips) {
		return nil
	}
	want := svc.DeepCopy()
	want.Status.LoadBalancer.Ingress = nil
	vip := corev1.LoadBalancerIPModeVIP
	for _, ip := range ips {
		want.Status.LoadBalancer.Ingress = append(want.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip, IPMode: &vip})
	}
	if _, err := l.Client.CoreV1().Services(ns).UpdateStatus(ctx, want, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("simulate: update service status: %w", err)
	}
	l.Logf("servicelb: %s ingress %v", key, ips)
	return nil
}
