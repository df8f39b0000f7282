package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

func TestKeyPEMRoundTrip(t *testing.T) {
	_, rsaKey := newTestRoot(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		key       crypto.Signer
		pem       []byte // nil: EncodeKey(key)
		wantBlock string
	}{
		{"RSA", rsaKey, nil, "RSA PRIVATE KEY"},
		{"EC", ecKey, nil, "EC PRIVATE KEY"},
		{"Ed25519", edKey, nil, "PRIVATE KEY"},
		{"RSA as PKCS8 with text before", rsaKey, append([]byte("a key:\n"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})...), "PRIVATE KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := tt.pem
			if data == nil {
				if data, err = EncodeKey(tt.key); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Contains(data, []byte("-----BEGIN "+tt.wantBlock+"-----")) {
				t.Errorf("PEM block is not %q:\n%s", tt.wantBlock, data)
			}
			got, err := DecodeKey(data)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(tt.key.Public()) {
				t.Error("decoded key differs")
			}
		})
	}
}

func TestDecodeKeyRefuses(t *testing.T) {
	root, _ := newTestRoot(t)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "no PEM private key"},
		{"certificate only", EncodeCerts(root), "no PEM private key"},
		{"encrypted PKCS8", pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1}}), "encrypted"},
		{"encrypted legacy", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}}), "encrypted"},
		{"garbage RSA", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}}), "parse RSA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeKey(tt.data)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestCertPEM(t *testing.T) {
	a, _ := newTestRoot(t)
	b, _ := newTestRoot(t)
	two := EncodeCerts(a, b)
	certs, err := DecodeCerts(append([]byte("text before\n"), two...))
	if err != nil {
		t.Fatal(err)
	}
	if len(certs) != 2 || !certs[0].Equal(a) || !certs[1].Equal(b) {
		t.Fatalf("decoded %d certificates, want a then b", len(certs))
	}
	if c, err := DecodeCert(EncodeCerts(a)); err != nil || !c.Equal(a) {
		t.Errorf("DecodeCert(one) = %v, %v", c, err)
	}
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"two", two, "found 2"},
		{"none", []byte("nothing"), "no PEM certificate"},
		{"garbage", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}), "certificate 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeCert(tt.data); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
