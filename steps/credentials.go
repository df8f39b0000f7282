package steps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

// Credential states.
const (
	CredentialOK      = "ok"
	CredentialRenew   = "renew soon" // within its mesh's ca.renewBefore
	CredentialExpired = "expired"
	CredentialUnread  = "not read"
)

// Credential is one credential mcplan made or its clusters depend on,
// with its lifetime: a certificate's validity, or a token's age (tokens
// of remote secrets do not expire).
type Credential struct {
	What     string    `json:"what"`
	Where    string    `json:"where"`
	NotAfter time.Time `json:"notAfter,omitzero"`
	Issued   time.Time `json:"issued,omitzero"`
	Status   string    `json:"status"`
	Note     string    `json:"note,omitempty"`
}

// Credentials lists the credentials of a plan as of now: each mesh's root
// and each cluster's intermediate (the state's files), each cluster's
// admin client certificate and the CA it trusts (the fetched kubeconfig),
// the certificate each API serves (a TLS handshake, verified against that
// CA), and each remote-secret reader token's age (from the source
// cluster). What cannot be read is listed as not read, with why.
func Credentials(ctx context.Context, p *plans.Plan, dir string, now time.Time) []Credential {
	var out []Credential
	for _, m := range p.Meshes {
		out = append(out, rootCredential(dir, m, now))
		for _, cl := range m.Clusters {
			out = append(out, intermediateCredential(dir, m, cl, now))
		}
	}
	for _, c := range p.Clusters {
		out = append(out, clusterCredentials(ctx, dir, c, now)...)
	}
	for _, m := range p.Meshes {
		for _, source := range m.Clusters {
			out = append(out, tokenCredentials(ctx, dir, m, source, now)...)
		}
	}
	return relativeToPlan(p, out)
}

// ClusterCredentials are the credentials one cluster of a plan depends
// on as of now, read as Credentials reads them: its mesh's root and its
// intermediate, its admin client certificate and k3s CAs, the certificate
// its API serves, and the ages of the reader tokens its mesh's istiods
// hold for it.
func ClusterCredentials(ctx context.Context, p *plans.Plan, dir, cluster string, now time.Time) []Credential {
	var out []Credential
	m := p.MeshOf(cluster)
	if m != nil {
		out = append(out, rootCredential(dir, *m, now), intermediateCredential(dir, *m, cluster, now))
	}
	if c := p.Cluster(cluster); c != nil {
		out = append(out, clusterCredentials(ctx, dir, *c, now)...)
	}
	if m != nil {
		out = append(out, tokenCredentials(ctx, dir, *m, cluster, now)...)
	}
	return relativeToPlan(p, out)
}

// rootCredential is a mesh's root CA, from the state's files.
func rootCredential(dir string, m plans.Mesh, now time.Time) Credential {
	what := "root CA of mesh " + m.Name
	f := filepath.Join(statedir.CARoot(dir, m.Name), statedir.RootCertFile)
	c, err := readCert(f)
	if err != nil {
		return unread(what, f, err)
	}
	return certCredential(what, f, c, now, m.CA.RenewWindow())
}

// intermediateCredential is a cluster's intermediate CA, from the state's
// files.
func intermediateCredential(dir string, m plans.Mesh, cluster string, now time.Time) Credential {
	what := "intermediate CA of " + cluster
	f := filepath.Join(statedir.CACluster(dir, m.Name, cluster), statedir.CACertFile)
	c, err := readCert(f)
	if err != nil {
		return unread(what, f, err)
	}
	return certCredential(what, f, c, now, m.CA.RenewWindow())
}

// relativeToPlan shows the files of the state from the plan's directory.
func relativeToPlan(p *plans.Plan, creds []Credential) []Credential {
	for i := range creds {
		if rel, err := filepath.Rel(p.Dir(), creds[i].Where); err == nil && filepath.IsAbs(creds[i].Where) && !strings.HasPrefix(rel, "..") {
			creds[i].Where = rel
		}
	}
	return creds
}

// kubeRenewBefore is when a k3s certificate counts as due: k3s renews its
// leaf certificates itself when they are within 90 days of expiry, at a
// restart.
const kubeRenewBefore = 90 * 24 * time.Hour

// clusterCredentials are a cluster's admin client certificate and the
// client CA after it (as k3s writes k3s.yaml), its API's CA, and the
// certificate its API serves.
func clusterCredentials(ctx context.Context, dir string, c plans.Cluster, now time.Time) []Credential {
	path := statedir.Kubeconfig(dir, c.Name)
	creds, err := kube.ReadKeptKubeconfig(path)
	if err != nil {
		return []Credential{unread("admin kubeconfig of "+c.Name, path, err)}
	}
	var out []Credential
	chain, err := clientCertChain(creds)
	switch {
	case creds.Cert == nil:
		// The copy of a user's kubeconfig that logs in with a token or
		// an exec plugin: no client certificate to show.
	case err != nil || len(chain) == 0:
		out = append(out, unread("admin client certificate of "+c.Name, path, err))
	default:
		out = append(out, certCredential("admin client certificate of "+c.Name, path, chain[0], now, kubeRenewBefore))
		// k3s writes the client CA after the admin certificate.
		for _, ca := range chain[1:] {
			if ca.IsCA {
				out = append(out, certCredential("k3s client CA of "+c.Name, path, ca, now, kubeRenewBefore))
			}
		}
	}
	ca, err := pki.DecodeCert(creds.CAData)
	if err != nil {
		return append(out, unread("k3s server CA of "+c.Name, path, err))
	}
	out = append(out, certCredential("k3s server CA of "+c.Name, path, ca, now, kubeRenewBefore))
	// The API as the kept kubeconfig reaches it (api.operatorAddress, or
	// the server of the kubeconfig of a cluster mcplan did not install).
	addr := net.JoinHostPort(c.API.OperatorAddress, strconv.Itoa(c.API.Port))
	if u, err := url.Parse(creds.Server); err == nil && u.Host != "" {
		addr = u.Host
		if u.Port() == "" {
			addr = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	serving, err := servingCert(ctx, addr, ca)
	if err != nil {
		return append(out, unread("API serving certificate of "+c.Name, addr, err))
	}
	return append(out, certCredential("API serving certificate of "+c.Name, addr, serving, now, kubeRenewBefore))
}

// servingCert is the certificate an API serves, verified against ca.
func servingCert(ctx context.Context, addr string, ca *x509.Certificate) (*x509.Certificate, error) {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	host, _, _ := net.SplitHostPort(addr)
	d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("no certificate")
	}
	return certs[0], nil
}

// tokenCredentials are the ages of the reader tokens a mesh's istiods
// hold for source, read from source.
func tokenCredentials(ctx context.Context, dir string, m plans.Mesh, source string, now time.Time) []Credential {
	path := statedir.Kubeconfig(dir, source)
	c, err := kube.FromKubeconfig(source, path, nil)
	if err != nil {
		return nil // listed as not read with the cluster's kubeconfig
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	secrets, err := c.Typed.CoreV1().Secrets(istiorender.Namespace).List(cctx, metav1.ListOptions{})
	cancel()
	if err != nil {
		return []Credential{unread("remote-secret tokens in "+source, "cluster "+source, err)}
	}
	var out []Credential
	for _, s := range secrets.Items {
		reader := s.Annotations[istiorender.ReaderTokenTargetAnnotation]
		if reader == "" || !slices.Contains(m.Clusters, reader) {
			continue
		}
		age := now.Sub(s.CreationTimestamp.Time)
		out = append(out, Credential{
			What: fmt.Sprintf("token of %s's istiod in %s", reader, source), Where: "Secret " + s.Namespace + "/" + s.Name + " in " + source,
			Issued: s.CreationTimestamp.UTC(), Status: CredentialOK,
			Note: fmt.Sprintf("%d days old; does not expire", int(age.Hours()/24)),
		})
	}
	return out
}

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return pki.DecodeCert(data)
}

func unread(what, where string, err error) Credential {
	note := err.Error()
	if errors.Is(err, fs.ErrNotExist) {
		note = "missing"
	}
	return Credential{What: what, Where: where, Status: CredentialUnread, Note: note}
}

// certCredential judges a certificate's lifetime: expired, within
// renewBefore of its end, or ok.
func certCredential(what, where string, c *x509.Certificate, now time.Time, renewBefore time.Duration) Credential {
	cr := Credential{What: what, Where: where, NotAfter: c.NotAfter.UTC(), Issued: c.NotBefore.UTC(), Status: CredentialOK}
	left := c.NotAfter.Sub(now)
	days := int(left.Hours() / 24)
	switch {
	case left <= 0:
		cr.Status, cr.Note = CredentialExpired, fmt.Sprintf("expired %d days ago", -days)
	case left < renewBefore:
		cr.Status, cr.Note = CredentialRenew, fmt.Sprintf("expires in %d days, within %d days (renewBefore)", days, int(renewBefore.Hours()/24))
	default:
		cr.Note = fmt.Sprintf("%d days left", days)
	}
	return cr
}

// clientCertChain is the client certificate chain a kept kubeconfig logs
// in with (none without one).
func clientCertChain(k *kube.KeptKubeconfig) ([]*x509.Certificate, error) {
	if k.Cert == nil {
		return nil, nil
	}
	return pki.DecodeCerts(k.Cert.CertData)
}
