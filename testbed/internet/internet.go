// Package internet is the test world's stand-in internet: one HTTPS server
// that answers as the sites k3s's online install uses, so that mcplan's
// online path (curl https://get.k3s.io, or the China mirror with mirror:
// cn) runs on the test hosts without anything leaving the machine.
//
// It answers, for the names in Names (all on one address, one
// certificate of a test CA made per run):
//
//   - get.k3s.io: / is the install script (the stand-in
//     testbed/k3s-install/install.sh, not upstream's);
//   - update.k3s.io: /v1-release/channels/<channel> redirects to
//     https://github.com/k3s-io/k3s/releases/tag/<version>, as upstream's
//     script expects (it takes the version from the redirect's last path
//     element);
//   - github.com: /k3s-io/k3s/releases/tag/<version> is a page;
//     /k3s-io/k3s/releases/download/<version>/<asset> redirects, as GitHub
//     does, to the asset on objects.githubusercontent.com;
//   - objects.githubusercontent.com: the assets, k3s (the release's binary)
//     and sha256sum-amd64.txt (computed from it);
//   - rancher-mirror.rancher.cn: /k3s/k3s-install.sh is the same install
//     script; /k3s/channels/<channel> answers the version in its body;
//     /k3s/<version with + as ->/k3s and .../sha256sum-amd64.txt are the
//     release's files.
//
// Every request, answered or not, is appended to an access log (JSON lines:
// time, remote address, TLS server name, host, method, path, status,
// bytes) that tests read with Requests.
package internet

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// The names the server answers as.
const (
	HostGetK3s   = "get.k3s.io"
	HostUpdate   = "update.k3s.io"
	HostGitHub   = "github.com"
	HostAssets   = "objects.githubusercontent.com"
	HostMirrorCN = "rancher-mirror.rancher.cn"
)

// Names are every name the server answers as and its certificate holds.
var Names = []string{HostGetK3s, HostUpdate, HostGitHub, HostAssets, HostMirrorCN}

// Release is one k3s release the server serves.
type Release struct {
	// Version is the k3s version, such as v1.37.2+k3s1.
	Version string
	// Binary is the local file served as the release's k3s (amd64).
	Binary string
}

// Config is what the server serves.
type Config struct {
	// InstallScript is the local file served as get.k3s.io's / and the
	// China mirror's /k3s/k3s-install.sh.
	InstallScript string
	// Releases are the k3s releases served, at least one.
	Releases []Release
	// Channels maps a channel name (stable, latest, v1.37...) to one of
	// the releases' versions.
	Channels map[string]string
}

// Validate reports what is missing or inconsistent in c.
func (c Config) Validate() error {
	if c.InstallScript == "" {
		return errors.New("internet: no install script")
	}
	if _, err := os.Stat(c.InstallScript); err != nil {
		return fmt.Errorf("internet: install script: %w", err)
	}
	if len(c.Releases) == 0 {
		return errors.New("internet: no release")
	}
	versions := map[string]bool{}
	for _, r := range c.Releases {
		if !versionRE.MatchString(r.Version) {
			return fmt.Errorf("internet: release %q is not a k3s version (v1.2.3+k3s1)", r.Version)
		}
		if versions[r.Version] {
			return fmt.Errorf("internet: release %s given twice", r.Version)
		}
		versions[r.Version] = true
		if _, err := os.Stat(r.Binary); err != nil {
			return fmt.Errorf("internet: release %s: %w", r.Version, err)
		}
	}
	for ch, v := range c.Channels {
		if !versions[v] {
			return fmt.Errorf("internet: channel %s names %s, which is not a release", ch, v)
		}
	}
	return nil
}

var versionRE = regexp.MustCompile(`^v\d+\.\d+\.\d+\+k3s\d+$`)

// Server is a running stand-in internet.
type Server struct {
	// Addr is the address it listens on, "ip:port".
	Addr string
	// CAFile is the test CA's certificate (PEM) under the run's directory;
	// hosts trust it.
	CAFile string
	// CACert is the same certificate, PEM.
	CACert []byte
	// LogFile is the access log (JSON lines, see Request).
	LogFile string
	// ErrorFile is the server's own error log (failed TLS handshakes).
	ErrorFile string

	cfg      Config
	script   []byte
	releases map[string]release
	srv      *http.Server
	ln       net.Listener
	served   chan error
	logMu    sync.Mutex
	log      *os.File
	errLog   *os.File
}

type release struct {
	Release
	sum string // sha256 of Binary, hex
}

// Request is one line of the access log.
type Request struct {
	Time time.Time `json:"time"`
	// Remote is the client's address, ip:port.
	Remote string `json:"remote"`
	// SNI is the TLS server name the client asked for.
	SNI    string `json:"sni"`
	Host   string `json:"host"`
	Method string `json:"method"`
	Path   string `json:"path"`
	Status int    `json:"status"`
	Bytes  int64  `json:"bytes"`
}

// URL is the request's https URL (host and path).
func (r Request) URL() string { return "https://" + r.Host + r.Path }

// Start makes a test CA and a serving certificate for Names, writes the
// CA's certificate to dir/ca.crt, and serves cfg on addr (ip:port; port 0
// picks one) with the access log at dir/access.log and the server's own
// errors (failed TLS handshakes) at dir/error.log. Close stops it.
func Start(addr, dir string, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("internet: %w", err)
	}
	s := &Server{
		Addr: addr, CAFile: filepath.Join(dir, "ca.crt"), LogFile: filepath.Join(dir, "access.log"),
		cfg: cfg, releases: map[string]release{}, served: make(chan error, 1),
	}
	var err error
	if s.script, err = os.ReadFile(cfg.InstallScript); err != nil {
		return nil, fmt.Errorf("internet: %w", err)
	}
	for _, r := range cfg.Releases {
		sum, err := fileSHA256(r.Binary)
		if err != nil {
			return nil, fmt.Errorf("internet: release %s: %w", r.Version, err)
		}
		s.releases[r.Version] = release{Release: r, sum: sum}
	}
	caPEM, cert, err := newCertificates(Names)
	if err != nil {
		return nil, fmt.Errorf("internet: %w", err)
	}
	s.CACert = caPEM
	if err := os.WriteFile(s.CAFile, caPEM, 0o644); err != nil {
		return nil, fmt.Errorf("internet: %w", err)
	}
	if s.log, err = os.OpenFile(s.LogFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return nil, fmt.Errorf("internet: %w", err)
	}
	s.ErrorFile = filepath.Join(dir, "error.log")
	if s.errLog, err = os.OpenFile(s.ErrorFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		s.log.Close()
		return nil, fmt.Errorf("internet: %w", err)
	}
	if s.ln, err = net.Listen("tcp", addr); err != nil {
		s.log.Close()
		s.errLog.Close()
		return nil, fmt.Errorf("internet: %w", err)
	}
	s.Addr = s.ln.Addr().String()
	s.srv = &http.Server{
		Handler:           s.logged(http.HandlerFunc(s.route)),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// TLS handshake failures (a host that does not trust the CA)
		// and the like, for the tests to show.
		ErrorLog: log.New(s.errLog, "", log.LstdFlags|log.LUTC),
	}
	go func() { s.served <- s.srv.ServeTLS(s.ln, "", "") }()
	return s, nil
}

// Close stops the server and closes the access log.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, s.srv.Close())
	}
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return errors.Join(err, s.log.Close(), s.errLog.Close())
}

// HostsLine is the /etc/hosts line that sends every name of Names to the
// server's address.
func (s *Server) HostsLine() string {
	host, _, _ := net.SplitHostPort(s.Addr)
	return host + "\t" + strings.Join(Names, " ")
}

// Requests reads the access log.
func (s *Server) Requests() ([]Request, error) {
	return ReadLog(s.LogFile)
}

// ReadLog reads an access log written by a Server.
func ReadLog(path string) ([]Request, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var reqs []Request
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		reqs = append(reqs, r)
	}
	return reqs, sc.Err()
}

// logged appends each request to the access log once answered.
func (s *Server) logged(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw := &recorder{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(rw, r)
		entry := Request{Time: time.Now().UTC(), Remote: r.RemoteAddr, Host: hostOnly(r.Host), Method: r.Method, Path: r.URL.RequestURI(), Status: rw.status, Bytes: rw.bytes}
		if r.TLS != nil {
			entry.SNI = r.TLS.ServerName
		}
		line, _ := json.Marshal(entry)
		s.logMu.Lock()
		defer s.logMu.Unlock()
		s.log.Write(append(line, '\n'))
	})
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(p)
	r.bytes += int64(n)
	return n, err
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// assetPrefix is where github.com's release downloads redirect to on
// objects.githubusercontent.com: <assetPrefix><version>/<asset>.
const assetPrefix = "/github-production-release-asset/k3s-io/k3s/"

// route answers a request by its host and path.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	host := hostOnly(r.Host)
	if r.TLS != nil && r.TLS.ServerName != "" && !strings.EqualFold(r.TLS.ServerName, host) {
		http.Error(w, "TLS server name and Host differ", http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch strings.ToLower(host) {
	case HostGetK3s:
		if p == "/" {
			s.serveScript(w, r)
			return
		}
	case HostUpdate:
		if ch, ok := strings.CutPrefix(p, "/v1-release/channels/"); ok {
			if v, ok := s.cfg.Channels[ch]; ok {
				http.Redirect(w, r, "https://"+HostGitHub+"/k3s-io/k3s/releases/tag/"+v, http.StatusFound)
				return
			}
		}
	case HostGitHub:
		if v, ok := strings.CutPrefix(p, "/k3s-io/k3s/releases/tag/"); ok {
			if _, ok := s.releases[v]; ok {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, "<!DOCTYPE html><title>Release %s · k3s-io/k3s</title><h1>%s</h1><p>mcplan testbed stand-in</p>\n", v, v)
				return
			}
		}
		if rest, ok := strings.CutPrefix(p, "/k3s-io/k3s/releases/download/"); ok {
			if v, asset, ok := strings.Cut(rest, "/"); ok && s.hasAsset(v, asset) {
				http.Redirect(w, r, "https://"+HostAssets+assetPrefix+v+"/"+asset, http.StatusFound)
				return
			}
		}
	case HostAssets:
		if rest, ok := strings.CutPrefix(p, assetPrefix); ok {
			if v, asset, ok := strings.Cut(rest, "/"); ok && s.hasAsset(v, asset) {
				s.serveAsset(w, r, v, asset)
				return
			}
		}
	case HostMirrorCN:
		switch {
		case p == "/k3s/k3s-install.sh":
			s.serveScript(w, r)
			return
		case strings.HasPrefix(p, "/k3s/channels/"):
			if v, ok := s.cfg.Channels[strings.TrimPrefix(p, "/k3s/channels/")]; ok {
				w.Header().Set("Content-Type", "text/plain; charset=utf-8")
				io.WriteString(w, v)
				return
			}
		default:
			// /k3s/<version, + written as ->/<asset>
			rest, _ := strings.CutPrefix(p, "/k3s/")
			if dashed, asset, ok := strings.Cut(rest, "/"); ok {
				if v := s.undash(dashed); v != "" && s.hasAsset(v, asset) {
					s.serveAsset(w, r, v, asset)
					return
				}
			}
		}
	default:
		http.Error(w, "the stand-in internet does not answer as "+host, http.StatusMisdirectedRequest)
		return
	}
	http.NotFound(w, r)
}

func (s *Server) serveScript(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	http.ServeContent(w, r, "install.sh", time.Time{}, bytes.NewReader(s.script))
}

// hasAsset reports whether release v has the asset named asset.
func (s *Server) hasAsset(v, asset string) bool {
	_, ok := s.releases[v]
	return ok && (asset == "k3s" || asset == "sha256sum-amd64.txt")
}

// undash is the release whose version, + written as -, is dashed; or "".
func (s *Server) undash(dashed string) string {
	for v := range s.releases {
		if strings.ReplaceAll(v, "+", "-") == dashed {
			return v
		}
	}
	return ""
}

func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request, v, asset string) {
	rel := s.releases[v]
	switch asset {
	case "sha256sum-amd64.txt":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "%s  k3s\n", rel.sum)
	case "k3s":
		f, err := os.Open(rel.Binary)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		http.ServeContent(w, r, "k3s", time.Time{}, f)
	}
}

// Sum is the sha256 (hex) of the k3s binary served for version v, or "".
func (s *Server) Sum(v string) string { return s.releases[v].sum }

// Versions are the served releases' versions, sorted.
func (s *Server) Versions() []string {
	var vs []string
	for v := range s.releases {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// newCertificates makes a CA (returned as PEM) and a serving certificate
// for names signed by it. The CA's key is not kept: nothing else can be
// signed by it.
func newCertificates(names []string) ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "mcplan testbed stand-in internet CA", Organization: []string{"mcplan testbed"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0], Organization: []string{"mcplan testbed"}},
		DNSNames:     names,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}
