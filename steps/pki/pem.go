package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types.
const (
	blockCertificate = "CERTIFICATE"
	blockRSAKey      = "RSA PRIVATE KEY" // PKCS #1
	blockECKey       = "EC PRIVATE KEY"  // SEC 1
	blockPKCS8Key    = "PRIVATE KEY"     // PKCS #8
)

// EncodeCerts returns the certificates as PEM, in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		// pem.Encode to a bytes.Buffer cannot fail.
		_ = pem.Encode(&buf, &pem.Block{Type: blockCertificate, Bytes: c.Raw})
	}
	return buf.Bytes()
}

// EncodeKey returns a private key as PEM: RSA keys as PKCS #1 ("RSA
// PRIVATE KEY"), EC keys as SEC 1 ("EC PRIVATE KEY"), others as PKCS #8.
func EncodeKey(key crypto.Signer) ([]byte, error) {
	var block *pem.Block
	switch k := key.(type) {
	case *rsa.PrivateKey:
		block = &pem.Block{Type: blockRSAKey, Bytes: x509.MarshalPKCS1PrivateKey(k)}
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("encode EC key: %w", err)
		}
		block = &pem.Block{Type: blockECKey, Bytes: der}
	default:
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("encode %T key: %w", key, err)
		}
		block = &pem.Block{Type: blockPKCS8Key, Bytes: der}
	}
	return pem.EncodeToMemory(block), nil
}

// DecodeCerts returns every certificate in PEM data, in order. Blocks of
// other types and text around the blocks are skipped; data without any
// certificate is an error.
func DecodeCerts(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != blockCertificate {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found")
	}
	return certs, nil
}

// DecodeCert returns the one certificate in PEM data; no certificate or
// more than one is an error.
func DecodeCert(data []byte) (*x509.Certificate, error) {
	certs, err := DecodeCerts(data)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 {
		return nil, fmt.Errorf("found %d PEM certificates, want one", len(certs))
	}
	return certs[0], nil
}

// DecodeKey returns the first private key in PEM data: PKCS #1 RSA, SEC 1
// EC or PKCS #8 (RSA, EC, Ed25519). Encrypted keys are refused.
func DecodeKey(data []byte) (crypto.Signer, error) {
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("no PEM private key found")
		}
		if _, encrypted := block.Headers["DEK-Info"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("private key is encrypted; give an unencrypted key")
		}
		switch block.Type {
		case blockRSAKey:
			k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse RSA private key: %w", err)
			}
			return k, nil
		case blockECKey:
			k, err := x509.ParseECPrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse EC private key: %w", err)
			}
			return k, nil
		case blockPKCS8Key:
			k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("parse PKCS #8 private key: %w", err)
			}
			switch s := k.(type) {
			case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
				return s.(crypto.Signer), nil
			default:
				return nil, fmt.Errorf("unsupported private key type %T", k)
			}
		}
	}
}
