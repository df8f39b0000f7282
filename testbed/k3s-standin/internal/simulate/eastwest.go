package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// passthroughPorts are the ports of Istio's east-west gateway that pass
// TLS through to istiod (Gateway/VirtualService "expose-istiod"): xDS/CA
// and webhooks.
var passthroughPorts = []int32{15012, 15017}

// eastWestResync is how often the listeners are compared with the
// Services even without a change.
const eastWestResync = 30 * time.Second

// EastWestPassthrough is SIMULATION of Istio's east-west gateway passing
// istiod's ports through, behind k3s's servicelb: the gateway pods are
// simulated (no envoy runs), so for every LoadBalancer Service with a port
// 15012 or 15017 whose status.loadBalancer.ingress holds this node's IP,
// the node listens on <node IP>:<port> and proxies each TCP connection
// (the TLS stays end to end) to a ready endpoint of istiod at the same
// port, as servicelb (node port -> gateway pod) plus the gateway's
// expose-istiod route (-> istiod) would. Which istiod: the Service named
// istiod in the Service's namespace (what expose-istiod routes to: the
// default revision's; during a canary both istiod and istiod-<rev>
// exist; a Service istiod without a ready endpoint gets the connection
// closed), and only where there is none, the first istiod-<rev> Service
// (by name) with a ready endpoint. The endpoint port is the one numbered like the gateway port
// (istiod's targetPorts are 15012 and 15017). Other ports are not
// forwarded. A Service whose Endpoints include this node's IP is skipped:
// a hostNetwork pod serves it on the node itself.
type EastWestPassthrough struct {
	Client kubernetes.Interface
	NodeIP string
	Logf   func(format string, args ...any)
}

// passthroughListener is one <node IP>:<port> listener of a Service.
type passthroughListener struct {
	ln     net.Listener
	cancel context.CancelFunc
}

// Run keeps the listeners until ctx ends.
func (e *EastWestPassthrough) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(e.Client, 10*time.Minute)
	svcs := factory.Core().V1().Services()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := svcs.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	}); err != nil {
		return fmt.Errorf("simulate: east-west passthrough service handler: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), svcs.Informer().HasSynced) {
		return fmt.Errorf("simulate: east-west passthrough cache sync: %w", ctx.Err())
	}
	listeners := map[string]*passthroughListener{} // "<ns>/<svc>/<port>"
	defer func() {
		for _, l := range listeners {
			l.cancel()
			l.ln.Close()
		}
	}()
	t := time.NewTicker(eastWestResync)
	defer t.Stop()
	failed := map[string]string{}
	for {
		list, err := svcs.Lister().List(everything())
		if err != nil {
			return fmt.Errorf("simulate: east-west passthrough list services: %w", err)
		}
		want := map[string]*corev1.Service{}
		for _, s := range list {
			for _, port := range e.ports(ctx, s) {
				want[s.Namespace+"/"+s.Name+"/"+strconv.Itoa(int(port))] = s
			}
		}
		for key, l := range listeners {
			if want[key] == nil {
				l.cancel()
				l.ln.Close()
				delete(listeners, key)
				e.Logf("east-west passthrough (simulated): %s closed", key)
			}
		}
		for key, s := range want {
			if listeners[key] != nil {
				continue
			}
			port, _ := strconv.Atoi(key[strings.LastIndexByte(key, '/')+1:])
			l, err := e.listen(ctx, s.Namespace, int32(port))
			if err != nil {
				if failed[key] != err.Error() {
					e.Logf("east-west passthrough (simulated): %s: %v", key, err)
					failed[key] = err.Error()
				}
				continue
			}
			delete(failed, key)
			listeners[key] = l
			e.Logf("east-west passthrough (simulated): %s: %s -> istiod in %s", key, l.ln.Addr(), s.Namespace)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

// ports are the passthrough ports of s this node serves.
func (e *EastWestPassthrough) ports(ctx context.Context, s *corev1.Service) []int32 {
	if s.Spec.Type != corev1.ServiceTypeLoadBalancer || s.Spec.LoadBalancerClass != nil {
		return nil
	}
	if !slices.ContainsFunc(s.Status.LoadBalancer.Ingress, func(in corev1.LoadBalancerIngress) bool { return in.IP == e.NodeIP }) {
		return nil
	}
	var out []int32
	for _, p := range s.Spec.Ports {
		if (p.Protocol == "" || p.Protocol == corev1.ProtocolTCP) && slices.Contains(passthroughPorts, p.Port) {
			out = append(out, p.Port)
		}
	}
	if len(out) == 0 {
		return nil
	}
	// A hostNetwork pod behind the Service listens on the node itself.
	if ep, err := e.Client.CoreV1().Endpoints(s.Namespace).Get(ctx, s.Name, metav1.GetOptions{}); err == nil {
		for _, sub := range ep.Subsets {
			for _, a := range append(sub.Addresses, sub.NotReadyAddresses...) {
				if a.IP == e.NodeIP {
					return nil
				}
			}
		}
	}
	return out
}

func (e *EastWestPassthrough) listen(ctx context.Context, namespace string, port int32) (*passthroughListener, error) {
	addr := net.JoinHostPort(e.NodeIP, strconv.Itoa(int(port)))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	lctx, cancel := context.WithCancel(ctx)
	go e.serve(lctx, ln, namespace, port)
	return &passthroughListener{ln: ln, cancel: cancel}, nil
}

func (e *EastWestPassthrough) serve(ctx context.Context, ln net.Listener, namespace string, port int32) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		wg.Go(func() { e.proxy(ctx, conn, namespace, port) })
	}
}

func (e *EastWestPassthrough) proxy(ctx context.Context, conn net.Conn, namespace string, port int32) {
	defer conn.Close()
	target, err := e.target(ctx, namespace, port)
	if err != nil {
		e.Logf("east-west passthrough (simulated): %s:%d from %s: %v", e.NodeIP, port, conn.RemoteAddr(), err)
		return
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := (&net.Dialer{}).DialContext(dctx, "tcp", target)
	cancel()
	if err != nil {
		e.Logf("east-west passthrough (simulated): %s:%d -> %s: %v", e.NodeIP, port, target, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, conn)
	go pipe(conn, up)
	for range 2 {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// target is a ready istiod endpoint for port (see EastWestPassthrough).
func (e *EastWestPassthrough) target(ctx context.Context, namespace string, port int32) (string, error) {
	names := []string{"istiod"}
	svcs, err := e.Client.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list services: %w", err)
	}
	var revs []string
	for _, s := range svcs.Items {
		if strings.HasPrefix(s.Name, "istiod-") {
			revs = append(revs, s.Name)
		}
	}
	sort.Strings(revs)
	names = append(names, revs...)
	for _, name := range names {
		ep, err := e.Client.CoreV1().Endpoints(namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("endpoints %s/%s: %w", namespace, name, err)
		}
		for _, sub := range ep.Subsets {
			if !slices.ContainsFunc(sub.Ports, func(p corev1.EndpointPort) bool { return p.Port == port }) || len(sub.Addresses) == 0 {
				continue
			}
			return net.JoinHostPort(sub.Addresses[0].IP, strconv.Itoa(int(port))), nil
		}
		if name == "istiod" {
			// The default revision's Service exists but has no ready
			// endpoint: as the gateway, nothing to route to.
			return "", errors.New("service istiod has no ready endpoint at port " + strconv.Itoa(int(port)))
		}
	}
	return "", fmt.Errorf("no istiod Service with a ready endpoint at port %d in %s", port, namespace)
}
