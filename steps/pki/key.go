package pki

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
)

// generateKey makes an RSA key of the given size. A 4096-bit key takes
// about a second; when ctx is done first, generateKey returns ctx.Err() at
// once and the abandoned generation finishes in the background.
func generateKey(ctx context.Context, bits int) (*rsa.PrivateKey, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	type result struct {
		key *rsa.PrivateKey
		err error
	}
	done := make(chan result, 1)
	go func() {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		done <- result{key, err}
	}()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return nil, r.err
		}
		return r.key, ctx.Err()
	}
}
