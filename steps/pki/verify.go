package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"time"
)

// KeyMatches reports whether key is the private key of cert.
func KeyMatches(cert *x509.Certificate, key crypto.Signer) bool {
	if cert == nil || key == nil {
		return false
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// CheckCA returns an error unless cert may sign certificates: basic
// constraints CA:true and, when key usage is set, keyCertSign.
func CheckCA(cert *x509.Certificate) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return errors.New("certificate is not a CA (basicConstraints CA:true missing)")
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return errors.New("CA certificate may not sign certificates (keyUsage keyCertSign missing)")
	}
	return nil
}

// CheckValidAt returns an error unless cert is valid at t.
func CheckValidAt(cert *x509.Certificate, t time.Time) error {
	if t.Before(cert.NotBefore) {
		return fmt.Errorf("certificate is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if t.After(cert.NotAfter) {
		return fmt.Errorf("certificate expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// VerifyChain checks with crypto/x509 that intermediate is a CA signed by
// root and that both are valid now.
func VerifyChain(intermediate, root *x509.Certificate) error {
	return VerifyChainAt(intermediate, root, time.Now())
}

// VerifyChainAt is VerifyChain at time t.
func VerifyChainAt(intermediate, root *x509.Certificate, t time.Time) error {
	if err := CheckCA(intermediate); err != nil {
		return fmt.Errorf("verify chain: intermediate: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(root)
	_, err := intermediate.Verify(x509.VerifyOptions{
		Roots:       roots,
		CurrentTime: t,
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return fmt.Errorf("verify chain: %w", err)
	}
	return nil
}
