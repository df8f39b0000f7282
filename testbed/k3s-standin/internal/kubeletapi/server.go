// Package kubeletapi serves the part of the kubelet API that clients reach
// through the apiserver (pods/portforward, pods/log) on <node-ip>:10250,
// backed by the native pods of internal/native. Simulated pods have no
// process: their port-forwards and logs are refused with a clear error.
package kubeletapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
)

// Pods finds the pods bound to this node.
type Pods interface {
	Pod(namespace, name string) (*corev1.Pod, bool)
}

// Native is what the kubelet API needs of the native runtime.
type Native interface {
	IsNative(uid types.UID) bool
	// NetNS is the pod's own network namespace, "" when it shares the
	// node's.
	NetNS(uid types.UID) string
	ReadLogs(ctx context.Context, uid types.UID, container string, previous bool, opts native.LogOptions, w io.Writer) error
}

// Server is the kubelet API of one node.
type Server struct {
	NodeName string
	NodeIP   string
	Port     int
	// CertPEM/KeyPEM is the serving certificate (node name and IP, signed
	// by the cluster's server CA, which the apiserver verifies with
	// --kubelet-certificate-authority).
	CertPEM, KeyPEM []byte
	// ClientCAPEM verifies client certificates (the apiserver's kubelet
	// client certificate is signed by the client CA).
	ClientCAPEM []byte
	Pods        Pods
	Native      Native // nil when no pod runs natively
	Logf        func(format string, args ...any)
}

// Serve listens on NodeIP:Port until ctx ends.
func (s *Server) Serve(ctx context.Context) error {
	cert, err := tls.X509KeyPair(s.CertPEM, s.KeyPEM)
	if err != nil {
		return fmt.Errorf("kubeletapi: serving certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.ClientCAPEM) {
		return errors.New("kubeletapi: no client CA certificate")
	}
	addr := net.JoinHostPort(s.NodeIP, strconv.Itoa(s.Port))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("kubeletapi: listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.authenticated(s.routes()),
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    pool,
			MinVersion:   tls.VersionTLS12,
			// Streaming upgrades (SPDY, websockets) need HTTP/1.1.
			NextProtos: []string{"http/1.1"},
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
		_ = srv.Close() // hijacked streaming connections
	}()
	s.Logf("kubelet API listening on %s", addr)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kubeletapi: serve: %w", err)
	}
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	for _, prefix := range []string{"/portForward", "/portforward"} {
		mux.HandleFunc(prefix+"/{namespace}/{pod}", s.servePortForward)
		mux.HandleFunc(prefix+"/{namespace}/{pod}/{uid}", s.servePortForward)
	}
	mux.HandleFunc("GET /containerLogs/{namespace}/{pod}/{container}", s.serveContainerLogs)
	return mux
}

// podFor finds the pod of a request (and checks the uid when the path has
// one); it writes the error response itself.
func (s *Server) podFor(w http.ResponseWriter, r *http.Request) (*corev1.Pod, bool) {
	ns, name := r.PathValue("namespace"), r.PathValue("pod")
	pod, ok := s.Pods.Pod(ns, name)
	if !ok {
		http.Error(w, fmt.Sprintf("pod %s/%s does not exist on node %s", ns, name, s.NodeName), http.StatusNotFound)
		return nil, false
	}
	if uid := r.PathValue("uid"); uid != "" && types.UID(uid) != pod.UID {
		http.Error(w, fmt.Sprintf("pod %s/%s with uid %s not found", ns, name, uid), http.StatusNotFound)
		return nil, false
	}
	return pod, true
}

func (s *Server) native(pod *corev1.Pod) bool {
	return s.Native != nil && s.Native.IsNative(pod.UID)
}
