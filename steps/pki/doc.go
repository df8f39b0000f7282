// Package pki makes the certificates of an Istio mesh's certificate
// authority as Istio's tools/certs/Makefile.selfsigned.mk makes them: a
// self-signed root per mesh and an intermediate per cluster, signed by the
// root, with RSA keys and SHA-256 signatures. It also reads and checks a
// root the user provides, verifies chains and encodes PEM.
//
// The package keeps no state and writes no files.
package pki

import "time"

// Defaults of Options, as in Istio's Makefile.selfsigned.mk.
const (
	DefaultKeySize                  = 4096
	DefaultRootValidityDays         = 3650
	DefaultIntermediateValidityDays = 730
)

// Subjects and names Istio's Makefile gives its certificates.
const (
	Organization     = "Istio"
	RootCommonName   = "Root CA"
	IntermediateName = "Intermediate CA"
	// IstiodDNSName is the SAN of every intermediate.
	IstiodDNSName = "istiod.istio-system.svc"
)

// ClockSkew is how far in the past a new certificate's NotBefore is set, so
// that machines whose clock is a little behind accept it.
const ClockSkew = time.Hour
