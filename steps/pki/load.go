package pki

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"os"
	"time"
)

// Root is a root CA read from files.
type Root struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM and KeyPEM are the files' contents as read.
	CertPEM []byte
	KeyPEM  []byte
}

// LoadRoot reads a root CA the user provides and checks it: certFile holds
// exactly one certificate, which is a CA valid now; keyFile holds its
// unencrypted private key. Errors name the file at fault.
func LoadRoot(certFile, keyFile string) (*Root, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("root certificate: %w", err)
	}
	cert, err := DecodeCert(certPEM)
	if err != nil {
		return nil, fmt.Errorf("root certificate %s: %w", certFile, err)
	}
	if err := CheckCA(cert); err != nil {
		return nil, fmt.Errorf("root certificate %s: %w", certFile, err)
	}
	if err := CheckValidAt(cert, time.Now()); err != nil {
		return nil, fmt.Errorf("root certificate %s: %w", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("root key: %w", err)
	}
	key, err := DecodeKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("root key %s: %w", keyFile, err)
	}
	if !KeyMatches(cert, key) {
		return nil, fmt.Errorf("root key %s: does not match the certificate in %s", keyFile, certFile)
	}
	return &Root{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}
