package pki

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"strings"
	"testing"
	"time"
)

// Extension IDs.
const (
	oidBasicConstraints       = "2.5.29.19"
	oidKeyUsage               = "2.5.29.15"
	oidSubjectKeyIdentifier   = "2.5.29.14"
	oidAuthorityKeyIdentifier = "2.5.29.35"
	oidSubjectAltName         = "2.5.29.17"
)

// criticality maps each extension of cert to whether it is critical.
func criticality(cert *x509.Certificate) map[string]bool {
	m := map[string]bool{}
	for _, e := range cert.Extensions {
		m[e.Id.String()] = e.Critical
	}
	return m
}

// newTestRoot makes a fast 2048-bit root.
func newTestRoot(t testing.TB) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	cert, key, err := NewRoot(context.Background(), Options{KeySize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// TestDefaultsMatchIstioMakefile checks every property Istio's
// Makefile.selfsigned.mk gives its root and intermediate, at the default
// 4096-bit key size.
func TestDefaultsMatchIstioMakefile(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	root, rootKey, err := NewRoot(ctx, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	inter, interKey, err := NewIntermediate(ctx, root, rootKey, "cluster1", Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name      string
		cert      *x509.Certificate
		key       *rsa.PrivateKey
		subject   string
		days      int
		pathLen   int // -1: none
		dnsNames  []string
		wantAKI   []byte
		keyUsages x509.KeyUsage
	}{
		{"root", root, rootKey, "CN=Root CA,O=Istio", 3650, -1, nil, nil,
			x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature},
		{"intermediate", inter, interKey, "CN=Intermediate CA,O=Istio,L=cluster1", 730, 0, []string{"istiod.istio-system.svc"}, root.SubjectKeyId,
			x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.cert
			if got := tt.key.N.BitLen(); got != 4096 {
				t.Errorf("key size = %d, want 4096", got)
			}
			if pub, ok := c.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != 4096 {
				t.Errorf("certificate key = %T, want RSA 4096", c.PublicKey)
			}
			if c.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("signature = %v, want SHA256-RSA", c.SignatureAlgorithm)
			}
			if got := c.Subject.String(); got != tt.subject {
				t.Errorf("subject = %q, want %q", got, tt.subject)
			}
			// Attribute order as in the Makefile: O, CN, then L.
			var rdns pkix.RDNSequence
			if _, err := asn1.Unmarshal(c.RawSubject, &rdns); err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, rdn := range rdns {
				for _, atv := range rdn {
					order = append(order, atv.Type.String())
				}
			}
			want := []string{"2.5.4.10", "2.5.4.3"} // O, CN
			if tt.name == "intermediate" {
				want = append(want, "2.5.4.7") // L
			}
			if strings.Join(order, " ") != strings.Join(want, " ") {
				t.Errorf("subject attribute types %v, want %v", order, want)
			}
			if got := c.Issuer.String(); got != root.Subject.String() {
				t.Errorf("issuer = %q, want %q", got, root.Subject.String())
			}
			if !c.NotBefore.Equal(now.Add(-ClockSkew)) {
				t.Errorf("NotBefore = %v, want %v", c.NotBefore, now.Add(-ClockSkew))
			}
			if want := now.AddDate(0, 0, tt.days); !c.NotAfter.Equal(want) {
				t.Errorf("NotAfter = %v, want %v (%d days)", c.NotAfter, want, tt.days)
			}
			if !c.BasicConstraintsValid || !c.IsCA {
				t.Error("not CA:true")
			}
			switch {
			case tt.pathLen < 0 && (c.MaxPathLen != -1 || c.MaxPathLenZero):
				t.Errorf("pathlen = %d (zero %v), want none", c.MaxPathLen, c.MaxPathLenZero)
			case tt.pathLen == 0 && (c.MaxPathLen != 0 || !c.MaxPathLenZero):
				t.Errorf("pathlen = %d (zero %v), want 0", c.MaxPathLen, c.MaxPathLenZero)
			}
			if c.KeyUsage != tt.keyUsages {
				t.Errorf("key usage = %b, want %b", c.KeyUsage, tt.keyUsages)
			}
			crit := criticality(c)
			for _, oid := range []string{oidBasicConstraints, oidKeyUsage} {
				if critical, ok := crit[oid]; !ok || !critical {
					t.Errorf("extension %v: present %v critical %v, want critical", oid, ok, critical)
				}
			}
			if _, ok := crit[oidSubjectKeyIdentifier]; !ok || len(c.SubjectKeyId) == 0 {
				t.Error("no subjectKeyIdentifier")
			}
			if tt.wantAKI != nil {
				if !bytes.Equal(c.AuthorityKeyId, tt.wantAKI) {
					t.Errorf("authorityKeyIdentifier = %x, want the root's subjectKeyIdentifier %x", c.AuthorityKeyId, tt.wantAKI)
				}
				if _, ok := crit[oidAuthorityKeyIdentifier]; !ok {
					t.Error("no authorityKeyIdentifier extension")
				}
			}
			if len(c.DNSNames) != len(tt.dnsNames) || (len(tt.dnsNames) > 0 && c.DNSNames[0] != tt.dnsNames[0]) {
				t.Errorf("DNS SANs = %v, want %v", c.DNSNames, tt.dnsNames)
			}
			if tt.dnsNames != nil {
				if critical := crit[oidSubjectAltName]; critical {
					t.Error("subjectAltName is critical, want non-critical (the subject is not empty)")
				}
			}
			if n := c.SerialNumber; n.Sign() <= 0 || n.BitLen() > 128 {
				t.Errorf("serial %v: want a positive 128-bit number", n)
			}
		})
	}
	if root.SerialNumber.Cmp(inter.SerialNumber) == 0 {
		t.Error("root and intermediate have the same serial")
	}
	if err := VerifyChainAt(inter, root, now); err != nil {
		t.Error(err)
	}
}

func TestOptionsRefused(t *testing.T) {
	root, rootKey := newTestRoot(t)
	tests := []struct {
		name string
		opts Options
	}{
		{"key too small", Options{KeySize: 1024}},
		{"key too big", Options{KeySize: 16384}},
		{"negative validity", Options{KeySize: 2048, ValidityDays: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewRoot(context.Background(), tt.opts); err == nil {
				t.Error("NewRoot: no error")
			}
			if _, _, err := NewIntermediate(context.Background(), root, rootKey, "c1", tt.opts); err == nil {
				t.Error("NewIntermediate: no error")
			}
		})
	}
}

func TestNewIntermediateRefusesBadRoot(t *testing.T) {
	root, rootKey := newTestRoot(t)
	_, otherKey := newTestRoot(t)
	inter, interKey, err := NewIntermediate(context.Background(), root, rootKey, "c1", Options{KeySize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	leaf := signLeaf(t, inter, interKey)
	tests := []struct {
		name    string
		root    *x509.Certificate
		key     *rsa.PrivateKey
		cluster string
	}{
		{"key of another root", root, otherKey, "c1"},
		{"root is not a CA", leaf, interKey, "c1"},
		{"empty cluster", root, rootKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := NewIntermediate(context.Background(), tt.root, tt.key, tt.cluster, Options{KeySize: 2048}); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := NewRoot(ctx, Options{KeySize: 2048}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewRoot: err = %v, want context.Canceled", err)
	}
	root, rootKey := newTestRoot(t)
	if _, _, err := NewIntermediate(ctx, root, rootKey, "c1", Options{KeySize: 2048}); !errors.Is(err, context.Canceled) {
		t.Errorf("NewIntermediate: err = %v, want context.Canceled", err)
	}
}
