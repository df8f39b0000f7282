package pki

import (
	"fmt"
	"time"
)

// Options says how to make a certificate. The zero value gives Istio's
// defaults.
type Options struct {
	// KeySize is the RSA key size in bits. 0 means DefaultKeySize.
	KeySize int
	// ValidityDays is how long the certificate is valid. 0 means
	// DefaultRootValidityDays for a root, DefaultIntermediateValidityDays
	// for an intermediate.
	ValidityDays int
	// Now is the issue time. The zero value means time.Now().
	Now time.Time
}

// keySize returns the key size to use, or an error for an unusable one.
func (o Options) keySize() (int, error) {
	switch {
	case o.KeySize == 0:
		return DefaultKeySize, nil
	case o.KeySize < 2048 || o.KeySize > 8192:
		return 0, fmt.Errorf("key size %d: want 2048 to 8192 bits", o.KeySize)
	}
	return o.KeySize, nil
}

// validity returns NotBefore and NotAfter for a certificate valid for
// ValidityDays (or def) from Now, with NotBefore ClockSkew in the past.
func (o Options) validity(def int) (notBefore, notAfter time.Time, err error) {
	days := o.ValidityDays
	if days == 0 {
		days = def
	}
	if days < 0 {
		return time.Time{}, time.Time{}, fmt.Errorf("validity %d days: want a positive number", days)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC().Truncate(time.Second)
	return now.Add(-ClockSkew), now.AddDate(0, 0, days), nil
}
