package kubeletapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
)

// kubelet's defaults for streaming connections.
const (
	streamIdleTimeout     = 4 * time.Hour
	streamCreationTimeout = 30 * time.Second
)

// servePortForward serves /portForward/{namespace}/{pod}[/{uid}] with the
// upstream kubelet streaming code (SPDY, and websockets with the v4
// channel protocol). The apiserver translates clients' websocket
// (SPDY-tunnelling) requests to SPDY, since this node does not declare the
// ExtendWebSocketsToKubelet feature.
func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	pod, ok := s.podFor(w, r)
	if !ok {
		return
	}
	opts, err := portforward.NewV4Options(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if !s.native(pod) {
		ports := "the forwarded port"
		if wsstream.IsWebSocketRequest(r) && len(opts.Ports) > 0 {
			ports = fmt.Sprint(opts.Ports)
		}
		http.Error(w, fmt.Sprintf("pod %s/%s is simulated by the k3s stand-in; no process listens on %s", pod.Namespace, pod.Name, ports), http.StatusBadRequest)
		return
	}
	fwd := &forwarder{s: s, namespace: pod.Namespace, pod: pod.Name, netns: s.Native.NetNS(pod.UID)}
	portforward.ServePortForward(w, r, fwd, pod.Name, string(pod.UID), opts, streamIdleTimeout, streamCreationTimeout, portforward.SupportedProtocols)
}

// forwarder connects port-forward streams to the pod's process, as the CRI
// runtimes do: they dial localhost in the pod's network namespace. A pod
// with a namespace of its own gets 127.0.0.1:<port> dialled inside it (a
// locked thread switched into it, native.DialInNetNS); a pod that shares
// the node's (hostNetwork) gets 127.0.0.1:<port>, then <node IP>:<port>
// for listeners bound to the node IP only. Servers that trust localhost
// (e.g. istiod's /debug endpoints) see a local client, as with a real
// kubelet.
type forwarder struct {
	s         *Server
	namespace string
	pod       string
	netns     string // "" for the node's network namespace
}

func (f *forwarder) PortForward(ctx context.Context, _ string, _ string, port int32, stream io.ReadWriteCloser) error {
	defer stream.Close()
	conn, err := f.dial(ctx, port)
	if err != nil {
		return err
	}
	defer conn.Close()
	done := make(chan struct{}, 2)
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(stream, conn)
		done <- struct{}{}
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return nil
}

// dial connects to port of the pod, in its network namespace.
func (f *forwarder) dial(ctx context.Context, port int32) (net.Conn, error) {
	p := strconv.Itoa(int(port))
	if f.netns != "" {
		conn, err := native.DialInNetNS(ctx, f.netns, net.JoinHostPort("127.0.0.1", p))
		if err != nil {
			return nil, fmt.Errorf("pod %s/%s: nothing listens on port %d in its network namespace: %w", f.namespace, f.pod, port, err)
		}
		return conn, nil
	}
	var d net.Dialer
	var errs []string
	for _, host := range []string{"127.0.0.1", f.s.NodeIP} {
		c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, p))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, fmt.Errorf("pod %s/%s: nothing listens on port %d: %s", f.namespace, f.pod, port, strings.Join(errs, "; "))
}
