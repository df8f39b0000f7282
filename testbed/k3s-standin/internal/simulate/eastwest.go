package simulate

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
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
// (the TLS stays end to end) as servicelb (node port -> gateway pod) plus
// the gateway's TLS passthrough routes would: it reads the server name of
// the connection's ClientHello (SNI) and follows the tls routes of the
// VirtualServices bound to a gateway in the Service's namespace
// (mcplan's istiod-vs and its per-revision routes, Istio's
// expose-istiod.yaml): a match at the port whose sniHosts name the server
// name wins over a wildcard ("*"), as envoy's filter chain match does.
// The route's destination Service's port gives the endpoint port (its
// targetPort: istiod's 443 is 15017), and the connection goes to a ready
// endpoint of it. No route, no endpoint: the connection is closed, as the
// gateway would reset it. Other ports are not forwarded. A Service whose
// Endpoints include this node's IP is skipped: a hostNetwork pod serves
// it on the node itself.
type EastWestPassthrough struct {
	Client kubernetes.Interface
	// Routes reads the VirtualServices (an admin client: a node's own
	// identity may not).
	Routes dynamic.Interface
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
			e.Logf("east-west passthrough (simulated): %s: %s -> the tls routes of the VirtualServices in %s", key, l.ln.Addr(), s.Namespace)
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
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	serverName, hello, err := peekServerName(conn)
	_ = conn.SetReadDeadline(time.Time{})
	if err != nil {
		e.Logf("east-west passthrough (simulated): %s:%d from %s: no TLS ClientHello: %v", e.NodeIP, port, conn.RemoteAddr(), err)
		return
	}
	target, err := e.target(ctx, namespace, port, serverName)
	if err != nil {
		e.Logf("east-west passthrough (simulated): %s:%d from %s (server name %q): %v", e.NodeIP, port, conn.RemoteAddr(), serverName, err)
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
	if _, err := up.Write(hello); err != nil {
		e.Logf("east-west passthrough (simulated): %s:%d -> %s: %v", e.NodeIP, port, target, err)
		return
	}
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

// target is a ready endpoint of the destination the gateway's routes
// give a connection at port asking for serverName (see
// EastWestPassthrough).
func (e *EastWestPassthrough) target(ctx context.Context, namespace string, port int32, serverName string) (string, error) {
	if e.Routes == nil {
		return "", errors.New("no VirtualService reader on this node")
	}
	list, err := e.Routes.Resource(virtualServices).Namespace(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("list VirtualServices in %s: %w", namespace, err)
	}
	dest, ok := routeFor(list.Items, port, serverName)
	if !ok {
		return "", fmt.Errorf("no tls route of a gateway's VirtualService in %s matches port %d", namespace, port)
	}
	svcName, svcNamespace, _ := strings.Cut(dest.host, ".")
	svcNamespace, _, _ = strings.Cut(svcNamespace, ".")
	if svcNamespace == "" {
		svcNamespace = namespace
	}
	svc, err := e.Client.CoreV1().Services(svcNamespace).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("route to %s: %w", dest.host, err)
	}
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int64(p.Port) == dest.port })
	if i < 0 {
		return "", fmt.Errorf("route to %s: Service %s/%s has no port %d", dest.host, svcNamespace, svcName, dest.port)
	}
	sp := svc.Spec.Ports[i]
	ep, err := e.Client.CoreV1().Endpoints(svcNamespace).Get(ctx, svcName, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("route to %s: %w", dest.host, err)
	}
	for _, sub := range ep.Subsets {
		j := slices.IndexFunc(sub.Ports, func(p corev1.EndpointPort) bool { return p.Name == sp.Name })
		if j < 0 || len(sub.Addresses) == 0 {
			continue
		}
		return net.JoinHostPort(sub.Addresses[0].IP, strconv.Itoa(int(sub.Ports[j].Port))), nil
	}
	return "", fmt.Errorf("route to %s: no ready endpoint at port %s", dest.host, sp.Name)
}

var virtualServices = schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}

// destination is a tls route's destination.
type destination struct {
	host string
	port int64
}

// routeFor is the destination the tls routes of the VirtualServices bound
// to a gateway give a connection at port asking for serverName: an exact
// sniHosts match, else a wildcard one ("*" or "*.suffix").
func routeFor(vss []unstructured.Unstructured, port int32, serverName string) (destination, bool) {
	var wildcard *destination
	for _, vs := range vss {
		if gws, _, _ := unstructured.NestedStringSlice(vs.Object, "spec", "gateways"); len(gws) == 0 {
			continue
		}
		routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "tls")
		for _, r := range routes {
			route, _ := r.(map[string]any)
			dest, ok := firstDestination(route)
			if !ok {
				continue
			}
			matches, _, _ := unstructured.NestedSlice(route, "match")
			for _, m := range matches {
				match, _ := m.(map[string]any)
				if p, found, _ := unstructured.NestedInt64(match, "port"); found && p != int64(port) {
					continue
				}
				hosts, _, _ := unstructured.NestedStringSlice(match, "sniHosts")
				for _, h := range hosts {
					switch {
					case serverName != "" && h == serverName:
						return dest, true
					case wildcard == nil && (h == "*" || (strings.HasPrefix(h, "*.") && strings.HasSuffix(serverName, h[1:]))):
						d := dest
						wildcard = &d
					}
				}
			}
		}
	}
	if wildcard != nil {
		return *wildcard, true
	}
	return destination{}, false
}

// firstDestination is the destination of a tls route's first route.
func firstDestination(route map[string]any) (destination, bool) {
	rs, _, _ := unstructured.NestedSlice(route, "route")
	if len(rs) == 0 {
		return destination{}, false
	}
	r, _ := rs[0].(map[string]any)
	host, _, _ := unstructured.NestedString(r, "destination", "host")
	port, _, _ := unstructured.NestedInt64(r, "destination", "port", "number")
	return destination{host: host, port: port}, host != "" && port != 0
}

// peekServerName reads a TLS ClientHello from conn and returns the
// server name it asks for ("" without SNI) and the bytes read, which the
// upstream must be sent first.
func peekServerName(conn net.Conn) (string, []byte, error) {
	var read bytes.Buffer
	var serverName string
	errPeeked := errors.New("ClientHello read")
	err := tls.Server(helloReader{io.TeeReader(conn, &read)}, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			serverName = h.ServerName
			return nil, errPeeked
		},
	}).Handshake()
	if !errors.Is(err, errPeeked) {
		return "", nil, err
	}
	return serverName, read.Bytes(), nil
}

// helloReader is a net.Conn that only reads (the peek answers nothing).
type helloReader struct{ r io.Reader }

func (h helloReader) Read(b []byte) (int, error)     { return h.r.Read(b) }
func (helloReader) Write(b []byte) (int, error)      { return len(b), nil }
func (helloReader) Close() error                     { return nil }
func (helloReader) LocalAddr() net.Addr              { return nil }
func (helloReader) RemoteAddr() net.Addr             { return nil }
func (helloReader) SetDeadline(time.Time) error      { return nil }
func (helloReader) SetReadDeadline(time.Time) error  { return nil }
func (helloReader) SetWriteDeadline(time.Time) error { return nil }
