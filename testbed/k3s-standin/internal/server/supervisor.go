package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/join"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/token"
)

const (
	pathPing          = "/ping"
	nodeCertMaxBody   = 16 << 10
	nodeCommonNamePfx = "system:node:"
)

// supervisor is the :6443 listener: it terminates TLS with a certificate for
// every node IP and tls-san, serves the k3s join endpoints, and
// reverse-proxies everything else to the apiserver on 127.0.0.1. A client
// certificate verified here is passed on as front-proxy (request-header)
// identity; other requests (bearer tokens) go through unchanged on a
// connection without a client certificate, so the apiserver authenticates
// them itself.
type supervisor struct {
	s          *Server
	certProxy  *httputil.ReverseProxy
	plainProxy *httputil.ReverseProxy
}

func (s *Server) newSupervisor() (*supervisor, error) {
	backend := &url.URL{Scheme: "https", Host: "127.0.0.1:" + strconv.Itoa(s.apiPort())}
	roots := x509.NewCertPool()
	roots.AddCert(s.certs.serverCA.Cert)
	proxyCert, err := tls.LoadX509KeyPair(s.certs.path("client-auth-proxy.crt"), s.certs.path("client-auth-proxy.key"))
	if err != nil {
		return nil, fmt.Errorf("server: load auth-proxy cert: %w", err)
	}
	mk := func(certs []tls.Certificate) *httputil.ReverseProxy {
		tr := &http.Transport{
			TLSClientConfig:     &tls.Config{RootCAs: roots, Certificates: certs, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
		}
		return &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) {
				pr.SetURL(backend)
				pr.Out.Host = pr.In.Host
			},
			Transport:     tr,
			FlushInterval: -1,
			ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, "k3s-standin: apiserver not available: "+err.Error(), http.StatusServiceUnavailable)
			},
		}
	}
	return &supervisor{s: s, certProxy: mk([]tls.Certificate{proxyCert}), plainProxy: mk(nil)}, nil
}

func (sv *supervisor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case join.PathCACerts:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(sv.s.certs.serverCA.CertPEM)
		return
	case pathPing:
		_, _ = io.WriteString(w, "pong")
		return
	case join.PathNodeCert:
		sv.serveNodeCert(w, r)
		return
	case join.PathServingCert:
		sv.serveServingCert(w, r)
		return
	case join.PathClientCA:
		sv.serveClientCA(w, r)
		return
	case join.PathServerJoin:
		sv.serveServerBootstrap(w, r)
		return
	case join.PathDBInfo:
		sv.serveDBInfo(w, r)
		return
	}
	for k := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-remote-") {
			r.Header.Del(k)
		}
	}
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		leaf := r.TLS.VerifiedChains[0][0]
		r.Header.Del("Authorization")
		r.Header.Set("X-Remote-User", leaf.Subject.CommonName)
		for _, o := range leaf.Subject.Organization {
			r.Header.Add("X-Remote-Group", o)
		}
		sv.certProxy.ServeHTTP(w, r)
		return
	}
	sv.plainProxy.ServeHTTP(w, r)
}

// authenticate checks HTTP basic auth against the join token; the username
// is the token's role ("server" or "node"). The agent token, when set,
// authenticates only where role "node" may.
func (sv *supervisor) authenticate(r *http.Request, roles ...string) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	agent := sv.s.agentToken.Secret != "" && token.Equal(pass, sv.s.agentToken.Secret)
	if agent {
		return slices.Contains(roles, "node")
	}
	if !token.Equal(pass, sv.s.token.Secret) {
		return false
	}
	for _, role := range roles {
		if user == role {
			return true
		}
	}
	return false
}

// serveNodeCert signs an agent's CSR for system:node:<name> in
// system:nodes, so the agent then talks to the apiserver as a kubelet does
// (Node authorizer + NodeRestriction apply). The private key never leaves the
// agent.
func (sv *supervisor) serveNodeCert(w http.ResponseWriter, r *http.Request) {
	csr, name, ok := sv.nodeCSR(w, r)
	if !ok {
		return
	}
	certPEM, err := sv.s.certs.clientCA.Issue(nodeLeaf(name), csr.PublicKey)
	if err != nil {
		http.Error(w, "sign: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sv.s.logf("issued node client certificate for %s to %s", name, r.RemoteAddr)
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(certPEM)
}

// nodeCSR authenticates a node certificate request (token) and reads its
// CSR for system:node:<name>; on failure it has written the response.
func (sv *supervisor) nodeCSR(w http.ResponseWriter, r *http.Request) (*x509.CertificateRequest, string, bool) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil, "", false
	}
	if !sv.authenticate(r, "server", "node") {
		w.Header().Set("WWW-Authenticate", `Basic realm="k3s"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return nil, "", false
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, nodeCertMaxBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
		return nil, "", false
	}
	block, _ := pem.Decode(body)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		http.Error(w, "body must be a PEM CERTIFICATE REQUEST", http.StatusBadRequest)
		return nil, "", false
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err == nil {
		err = csr.CheckSignature()
	}
	if err != nil {
		http.Error(w, "bad CSR: "+err.Error(), http.StatusBadRequest)
		return nil, "", false
	}
	name, ok := strings.CutPrefix(csr.Subject.CommonName, nodeCommonNamePfx)
	if !ok || len(validation.IsDNS1123Subdomain(name)) > 0 {
		http.Error(w, "CSR common name must be system:node:<valid node name>", http.StatusBadRequest)
		return nil, "", false
	}
	return csr, name, true
}

// serveServingCert signs a node's kubelet serving certificate (k3s's
// /v1-k3s/serving-kubelet.crt) under the server CA, for the node name and
// the IPs in the CSR, so the apiserver can verify the kubelet API.
func (sv *supervisor) serveServingCert(w http.ResponseWriter, r *http.Request) {
	csr, name, ok := sv.nodeCSR(w, r)
	if !ok {
		return
	}
	certPEM, err := sv.s.certs.serverCA.Issue(kubeletServingLeaf(name, csr.IPAddresses), csr.PublicKey)
	if err != nil {
		http.Error(w, "sign: "+err.Error(), http.StatusInternalServerError)
		return
	}
	sv.s.logf("issued kubelet serving certificate for %s %v to %s", name, csr.IPAddresses, r.RemoteAddr)
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(certPEM)
}

// serveClientCA gives a token holder the client CA certificate (k3s's
// /v1-k3s/client-ca.crt).
func (sv *supervisor) serveClientCA(w http.ResponseWriter, r *http.Request) {
	if !sv.authenticate(r, "server", "node") {
		w.Header().Set("WWW-Authenticate", `Basic realm="k3s"`)
		http.Error(w, "invalid token", http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(sv.s.certs.clientCA.CertPEM)
}

// kubeletServingLeaf is a kubelet serving certificate for a node.
func kubeletServingLeaf(name string, ips []net.IP) pki.Leaf {
	return pki.Leaf{CommonName: nodeCommonNamePfx + name, Organization: []string{"system:nodes"},
		DNSNames: []string{name, "localhost"}, IPs: ips, Server: true}
}

func nodeLeaf(name string) pki.Leaf {
	return pki.Leaf{CommonName: nodeCommonNamePfx + name, Organization: []string{"system:nodes"}, Client: true}
}

// serveServerBootstrap gives a joining server (token role "server") the
// cluster's bootstrap data: every CA certificate and key and the
// service-account key, as k3s's server token grants full control of the
// cluster.
func (sv *supervisor) serveServerBootstrap(w http.ResponseWriter, r *http.Request) {
	if !sv.authenticate(r, "server") {
		w.Header().Set("WWW-Authenticate", `Basic realm="k3s"`)
		http.Error(w, "invalid server token", http.StatusUnauthorized)
		return
	}
	b := join.ServerBootstrap{Files: map[string]string{}}
	for _, name := range caFiles {
		data, err := os.ReadFile(sv.s.certs.path(name))
		if err != nil {
			http.Error(w, "bootstrap data: "+err.Error(), http.StatusInternalServerError)
			return
		}
		b.Files[name] = string(data)
	}
	sv.s.logf("gave the bootstrap data to %s", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(b)
}

// serveDBInfo lists the etcd members (k3s's /db/info), for a joining
// server (server token).
func (sv *supervisor) serveDBInfo(w http.ResponseWriter, r *http.Request) {
	if !sv.authenticate(r, "server") {
		w.Header().Set("WWW-Authenticate", `Basic realm="k3s"`)
		http.Error(w, "invalid server token", http.StatusUnauthorized)
		return
	}
	if !sv.s.etcdCluster {
		http.Error(w, "this server's etcd is not a cluster member (start it with cluster-init)", http.StatusServiceUnavailable)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	l, err := sv.s.etcdClient.MemberList(ctx)
	if err != nil {
		http.Error(w, "etcd member list: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	var info join.DBInfo
	for _, m := range l.Members {
		info.Members = append(info.Members, join.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// serve runs the supervisor on 0.0.0.0:<https-listen-port> until ctx ends.
func (sv *supervisor) serve(ctx context.Context) error {
	cert, err := tls.LoadX509KeyPair(sv.s.certs.path("serving-kube-apiserver.crt"), sv.s.certs.path("serving-kube-apiserver.key"))
	if err != nil {
		return fmt.Errorf("server: load serving cert: %w", err)
	}
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(sv.s.certs.clientCA.Cert)
	addr := net.JoinHostPort("0.0.0.0", strconv.Itoa(sv.s.cfg.HTTPSListenPort))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           sv,
		ReadHeaderTimeout: 30 * time.Second,
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.VerifyClientCertIfGiven,
			ClientCAs:    clientCAs,
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"h2", "http/1.1"},
		},
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	sv.s.logf("supervisor listening on %s", addr)
	if err := srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: supervisor: %w", err)
	}
	return nil
}
