package pki

import (
	"crypto/x509"

	"mcplan.io/mcplan/internal/digest"
)

// Fingerprint is the SHA-256 of the certificate's DER, in lower-case hex
// without separators.
func Fingerprint(cert *x509.Certificate) string {
	return digest.SHA256Hex(cert.Raw)
}
