package pki

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"strings"
	"testing"
	"time"
)

// signLeaf signs a workload-like leaf certificate with a CA.
func signLeaf(t testing.TB, ca *x509.Certificate, caKey *rsa.PrivateKey) *x509.Certificate {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "leaf"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifyChain(t *testing.T) {
	ctx := context.Background()
	root, rootKey := newTestRoot(t)
	other, _ := newTestRoot(t)
	inter, interKey, err := NewIntermediate(ctx, root, rootKey, "c1", Options{KeySize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	leaf := signLeaf(t, inter, interKey)
	tests := []struct {
		name    string
		cert    *x509.Certificate
		root    *x509.Certificate
		at      time.Time
		wantErr string
	}{
		{"intermediate of root", inter, root, time.Now(), ""},
		{"another root", inter, other, time.Now(), "verify chain"},
		{"leaf is not a CA", leaf, inter, time.Now(), "not a CA"},
		{"expired", inter, root, time.Now().AddDate(3, 0, 0), "verify chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyChainAt(tt.cert, tt.root, tt.at)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	if err := VerifyChain(inter, root); err != nil {
		t.Errorf("VerifyChain: %v", err)
	}
	// The intermediate signs leaves that verify up to the root.
	roots, inters := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inters.AddCert(inter)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("leaf: %v", err)
	}
}

func TestKeyMatches(t *testing.T) {
	root, rootKey := newTestRoot(t)
	_, otherKey := newTestRoot(t)
	if !KeyMatches(root, rootKey) {
		t.Error("own key does not match")
	}
	if KeyMatches(root, otherKey) {
		t.Error("other key matches")
	}
	if KeyMatches(root, nil) || KeyMatches(nil, rootKey) {
		t.Error("nil matches")
	}
}

func TestFingerprint(t *testing.T) {
	root, _ := newTestRoot(t)
	other, _ := newTestRoot(t)
	fp := Fingerprint(root)
	if len(fp) != 64 || strings.ToLower(fp) != fp {
		t.Errorf("fingerprint %q: want 64 lower-case hex digits", fp)
	}
	if fp != Fingerprint(root) || fp == Fingerprint(other) {
		t.Error("fingerprint not a function of the certificate")
	}
}
