package pki

import (
	"context"
	"crypto"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadRoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	root, rootKey := newTestRoot(t)
	_, otherKey := newTestRoot(t)
	inter, interKey, err := NewIntermediate(ctx, root, rootKey, "c1", Options{KeySize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	leaf := signLeaf(t, inter, interKey)
	expired, expiredKey, err := NewRoot(ctx, Options{KeySize: 2048, ValidityDays: 1, Now: time.Now().AddDate(0, 0, -3)})
	if err != nil {
		t.Fatal(err)
	}
	rootCert := write("root-cert.pem", EncodeCerts(root))
	rootKeyFile := write("root-key.pem", mustEncodeKey(t, rootKey))
	otherKeyFile := write("other-key.pem", mustEncodeKey(t, otherKey))
	leafCert := write("leaf.pem", EncodeCerts(leaf))
	interKeyFile := write("inter-key.pem", mustEncodeKey(t, interKey))
	expiredCert := write("expired-cert.pem", EncodeCerts(expired))
	expiredKeyFile := write("expired-key.pem", mustEncodeKey(t, expiredKey))
	bundle := write("bundle.pem", EncodeCerts(root, inter))

	tests := []struct {
		name      string
		cert, key string
		wantErr   string
		wantInErr string // the file the error must name
	}{
		{"ok", rootCert, rootKeyFile, "", ""},
		{"key of another root", rootCert, otherKeyFile, "does not match", otherKeyFile},
		{"not a CA", leafCert, interKeyFile, "not a CA", leafCert},
		{"expired", expiredCert, expiredKeyFile, "expired", expiredCert},
		{"two certificates", bundle, rootKeyFile, "found 2", bundle},
		{"missing cert", filepath.Join(dir, "nope.pem"), rootKeyFile, "no such file", filepath.Join(dir, "nope.pem")},
		{"missing key", rootCert, filepath.Join(dir, "nokey.pem"), "no such file", filepath.Join(dir, "nokey.pem")},
		{"key file holds a certificate", rootCert, rootCert, "no PEM private key", rootCert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := LoadRoot(tt.cert, tt.key)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !r.Cert.Equal(root) || !KeyMatches(r.Cert, r.Key) || len(r.CertPEM) == 0 || len(r.KeyPEM) == 0 {
					t.Error("loaded root differs")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.wantInErr) {
				t.Errorf("err = %v, want one containing %q and naming %s", err, tt.wantErr, tt.wantInErr)
			}
		})
	}
}

func mustEncodeKey(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	data, err := EncodeKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
