// Package join is the client side of the supervisor's join endpoints, used
// by agents and by servers joining an existing server.
package join

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/token"
)

// Endpoint paths served by the server's supervisor.
const (
	PathCACerts     = "/cacerts"
	PathNodeCert    = "/v1-k3s/client-kubelet.crt"
	PathServingCert = "/v1-k3s/serving-kubelet.crt"
	PathClientCA    = "/v1-k3s/client-ca.crt"
	PathServerJoin  = "/v1-k3s/server-bootstrap"
	PathDBInfo      = "/db/info"
)

// Client talks to one server's supervisor.
type Client struct {
	URL   *url.URL
	Token token.Token
	CAPEM []byte
	http  *http.Client
}

// New fetches the server's CA from /cacerts and checks its sha256 against
// the token's K10 hash, refusing a mismatch. With a bare (non-K10) token the
// CA cannot be pinned; that is allowed, as in k3s, but reported via logf.
func New(ctx context.Context, serverURL, rawToken string, logf func(string, ...any)) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(serverURL, "/"))
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("join: server URL %q must be https://host:port", serverURL)
	}
	tok, err := token.Parse(rawToken)
	if err != nil {
		return nil, fmt.Errorf("join: %w", err)
	}
	insecure := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, // CA verified by hash below
	}}
	caPEM, err := get(ctx, insecure, u.String()+PathCACerts, nil)
	if err != nil {
		return nil, fmt.Errorf("join: fetch CA from %s: %w", u, err)
	}
	if tok.CAHash == "" {
		logf("join: token has no CA hash; trusting %s%s without verification", u, PathCACerts)
	} else if got := pki.Hash(caPEM); got != tok.CAHash {
		return nil, fmt.Errorf("join: server %s CA certificate sha256 %s does not match the token's K10 hash %s: refusing to join", u, got, tok.CAHash)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("join: %s%s returned no PEM certificate", u, PathCACerts)
	}
	c := &Client{URL: u, Token: tok, CAPEM: caPEM, http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}}
	return c, nil
}

// NodeCert makes a key and has the server sign system:node:<name>. It
// returns the certificate and key PEM.
func (c *Client) NodeCert(ctx context.Context, nodeName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("join: generate node key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("join: node CSR: %w", err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	certPEM, err = c.do(ctx, http.MethodPost, PathNodeCert, csr)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = pki.EncodeKeyPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// ServingCert makes a key and has the server sign a kubelet serving
// certificate for the node's name and IPs (under the server CA, which the
// apiserver verifies kubelets with). It returns the certificate and key PEM.
func (c *Client) ServingCert(ctx context.Context, nodeName string, ips []net.IP) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("join: generate serving key: %w", err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:     pkix.Name{CommonName: "system:node:" + nodeName, Organization: []string{"system:nodes"}},
		DNSNames:    []string{nodeName, "localhost"},
		IPAddresses: ips,
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("join: serving CSR: %w", err)
	}
	csr := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	certPEM, err = c.do(ctx, http.MethodPost, PathServingCert, csr)
	if err != nil {
		return nil, nil, err
	}
	if keyPEM, err = pki.EncodeKeyPEM(key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// ClientCA fetches the cluster's client CA certificate, which the kubelet
// API verifies the apiserver's client certificate with.
func (c *Client) ClientCA(ctx context.Context) ([]byte, error) {
	return c.do(ctx, http.MethodGet, PathClientCA, nil)
}

// KubeletAPI gets a kubelet serving certificate and the client CA, and
// writes them as k3s does (<agentDir>/serving-kubelet.crt/.key,
// client-ca.crt).
func (c *Client) KubeletAPI(ctx context.Context, agentDir, nodeName, nodeIP string) (certPEM, keyPEM, clientCAPEM []byte, err error) {
	if certPEM, keyPEM, err = c.ServingCert(ctx, nodeName, []net.IP{net.ParseIP(nodeIP)}); err != nil {
		return nil, nil, nil, err
	}
	if clientCAPEM, err = c.ClientCA(ctx); err != nil {
		return nil, nil, nil, err
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{"serving-kubelet.crt", certPEM, 0o644}, {"serving-kubelet.key", keyPEM, 0o600}, {"client-ca.crt", clientCAPEM, 0o644}} {
		if err := pki.WriteFile(filepath.Join(agentDir, f.name), f.data, f.mode); err != nil {
			return nil, nil, nil, err
		}
	}
	return certPEM, keyPEM, clientCAPEM, nil
}

// APIEndpoint is the supervisor's host and port, which serves the API with
// a certificate valid for that address.
func (c *Client) APIEndpoint() (host string, port int, err error) {
	p := c.URL.Port()
	if p == "" {
		p = "443"
	}
	port, err = strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("join: server URL %s port: %w", c.URL, err)
	}
	return c.URL.Hostname(), port, nil
}

// ServerBootstrap is what a joining server receives (k3s's bootstrap
// data): the cluster's CA certificates and keys and the service-account
// key, by path relative to <data-dir>/server/tls.
type ServerBootstrap struct {
	Files map[string]string `json:"files"`
}

// ServerBootstrap fetches the bootstrap data (needs a server token).
func (c *Client) ServerBootstrap(ctx context.Context) (*ServerBootstrap, error) {
	b, err := c.do(ctx, http.MethodGet, PathServerJoin, nil)
	if err != nil {
		return nil, err
	}
	var sb ServerBootstrap
	if err := json.Unmarshal(b, &sb); err != nil {
		return nil, fmt.Errorf("join: decode server bootstrap: %w", err)
	}
	return &sb, nil
}

// Member is an etcd member as /db/info lists it (the JSON of etcd's
// MemberListResponse members).
type Member struct {
	ID         uint64   `json:"ID"`
	Name       string   `json:"name"`
	PeerURLs   []string `json:"peerURLs"`
	ClientURLs []string `json:"clientURLs"`
	IsLearner  bool     `json:"isLearner,omitempty"`
}

// DBInfo is the answer of /db/info: the cluster's etcd members.
type DBInfo struct {
	Members []Member `json:"members"`
}

// DBInfo lists the etcd members of the server's cluster (needs a server
// token), as a joining server does before it adds itself.
func (c *Client) DBInfo(ctx context.Context) (*DBInfo, error) {
	b, err := c.do(ctx, http.MethodGet, PathDBInfo, nil)
	if err != nil {
		return nil, err
	}
	var info DBInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return nil, fmt.Errorf("join: decode %s: %w", PathDBInfo, err)
	}
	return &info, nil
}

func (c *Client) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	return sendRetrying(ctx, c.http, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, method, c.URL.String()+path, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("join: request %s: %w", path, err)
		}
		req.SetBasicAuth(c.Token.Username, c.Token.Secret)
		return req, nil
	})
}

func get(ctx context.Context, hc *http.Client, u string, _ []byte) ([]byte, error) {
	return sendRetrying(ctx, hc, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, fmt.Errorf("join: request %s: %w", u, err)
		}
		return req, nil
	})
}

// retryPause is the wait between attempts to reach a server that does not
// answer (k3s agents wait the same 5 s: "Waiting to retrieve agent
// configuration; server is not ready").
const retryPause = 5 * time.Second

// sendRetrying sends a request made by newReq until the server answers
// (any HTTP status) or ctx ends: a server that is down or unreachable is
// waited for, as k3s waits for it, instead of failing the start.
func sendRetrying(ctx context.Context, hc *http.Client, newReq func() (*http.Request, error)) ([]byte, error) {
	for {
		req, err := newReq()
		if err != nil {
			return nil, err
		}
		b, err := send(hc, req)
		var unreachable *transportError
		if err == nil || !errors.As(err, &unreachable) {
			return b, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(retryPause):
		}
	}
}

// transportError is a request that got no answer.
type transportError struct{ err error }

func (e *transportError) Error() string { return e.err.Error() }
func (e *transportError) Unwrap() error { return e.err }

func send(hc *http.Client, req *http.Request) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, &transportError{fmt.Errorf("join: %s %s: %w", req.Method, req.URL.Path, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("join: read %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("join: %s %s: server refused the token (401 %s)", req.Method, req.URL.Path, strings.TrimSpace(string(b)))
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("join: %s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}
