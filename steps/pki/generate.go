package pki

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
)

// NewRoot makes a self-signed root CA: subject O=Istio, CN=Root CA,
// basicConstraints critical CA:true, keyUsage critical keyCertSign,
// cRLSign, digitalSignature, a subjectKeyIdentifier and a random 128-bit
// serial.
func NewRoot(ctx context.Context, opts Options) (*x509.Certificate, *rsa.PrivateKey, error) {
	bits, err := opts.keySize()
	if err != nil {
		return nil, nil, fmt.Errorf("new root CA: %w", err)
	}
	notBefore, notAfter, err := opts.validity(DefaultRootValidityDays)
	if err != nil {
		return nil, nil, fmt.Errorf("new root CA: %w", err)
	}
	key, err := generateKey(ctx, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("new root CA: generate key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("new root CA: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{Organization}, CommonName: RootCommonName},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		SignatureAlgorithm:    x509.SHA256WithRSA,
	}
	cert, err := sign(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("new root CA: %w", err)
	}
	return cert, key, nil
}

// NewIntermediate makes the intermediate CA of a cluster, signed by root:
// subject O=Istio, CN=Intermediate CA, L=<cluster>, SAN DNS
// istiod.istio-system.svc, basicConstraints critical CA:true pathlen:0,
// keyUsage critical keyCertSign, cRLSign, digitalSignature, subject and
// authority key identifiers and a random 128-bit serial.
func NewIntermediate(ctx context.Context, root *x509.Certificate, rootKey crypto.Signer, cluster string, opts Options) (*x509.Certificate, *rsa.PrivateKey, error) {
	if cluster == "" {
		return nil, nil, errors.New("new intermediate CA: empty cluster name")
	}
	if err := CheckCA(root); err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: root: %w", cluster, err)
	}
	if !KeyMatches(root, rootKey) {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: root key does not match the root certificate", cluster)
	}
	bits, err := opts.keySize()
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: %w", cluster, err)
	}
	notBefore, notAfter, err := opts.validity(DefaultIntermediateValidityDays)
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: %w", cluster, err)
	}
	key, err := generateKey(ctx, bits)
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: generate key: %w", cluster, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: %w", cluster, err)
	}
	subject, err := intermediateSubject(cluster)
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: %w", cluster, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		RawSubject:            subject,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		DNSNames:              []string{IstiodDNSName},
		SignatureAlgorithm:    signatureAlgorithm(rootKey),
	}
	cert, err := sign(tmpl, root, key.Public(), rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("new intermediate CA for %s: %w", cluster, err)
	}
	return cert, key, nil
}

// intermediateSubject is O=Istio, CN=Intermediate CA, L=<cluster> in the
// order of Istio's Makefile (crypto/x509 would put L first).
func intermediateSubject(cluster string) ([]byte, error) {
	attr := func(oid asn1.ObjectIdentifier, v string) pkix.RelativeDistinguishedNameSET {
		return pkix.RelativeDistinguishedNameSET{{Type: oid, Value: v}}
	}
	der, err := asn1.Marshal(pkix.RDNSequence{
		attr(asn1.ObjectIdentifier{2, 5, 4, 10}, Organization),    // O
		attr(asn1.ObjectIdentifier{2, 5, 4, 3}, IntermediateName), // CN
		attr(asn1.ObjectIdentifier{2, 5, 4, 7}, cluster),          // L
	})
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	return der, nil
}

// signatureAlgorithm is SHA-256 with the signer's key type (a provided
// root may have an EC key).
func signatureAlgorithm(key crypto.Signer) x509.SignatureAlgorithm {
	switch key.Public().(type) {
	case *rsa.PublicKey:
		return x509.SHA256WithRSA
	default:
		return x509.UnknownSignatureAlgorithm // let crypto/x509 choose (ECDSA: SHA-256 for P-256)
	}
}

// sign creates the certificate and parses it back.
func sign(tmpl, parent *x509.Certificate, pub crypto.PublicKey, signer crypto.Signer) (*x509.Certificate, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("sign certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse signed certificate: %w", err)
	}
	return cert, nil
}

// newSerial returns a random positive 128-bit serial number.
func newSerial() (*big.Int, error) {
	b := make([]byte, 16)
	for {
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("serial number: %w", err)
		}
		if n := new(big.Int).SetBytes(b); n.Sign() > 0 {
			return n, nil
		}
	}
}
