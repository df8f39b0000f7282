package statebackend

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/argon2"
)

// sealedMagic starts every sealed state; it is also the ciphertext's
// additional data, so a changed header fails to open.
const sealedMagic = "mcplan-sealed-state-v1\n"

// Argon2id parameters (RFC 9106's second recommendation, with 64 MiB).
const (
	argonTime    = 3
	argonMemory  = 64 << 10 // KiB
	argonThreads = 4
	saltSize     = 16
)

// ErrWrongPassphrase is the error of a sealed state the passphrase does
// not open.
var ErrWrongPassphrase = errors.New("the passphrase does not open the state (wrong passphrase, or the state was sealed with another)")

// Sealed encrypts what it stores in Remote: AES-256-GCM under a key
// derived from the passphrase with Argon2id. The salt is made with the
// first sealed write and kept by the later ones (a fresh nonce each), so
// the key is derived once per run. A state read that is not sealed (one
// written before encryption was turned on) is read as it is and sealed by
// the next write; one that does not open is ErrWrongPassphrase, never a
// new state.
type Sealed struct {
	Remote     Remote
	Passphrase []byte

	mu   sync.Mutex
	salt []byte
	aead cipher.AEAD
}

func (s *Sealed) String() string { return s.Remote.String() + " (sealed)" }

// keyFor derives (once per salt) the AEAD of the passphrase.
func (s *Sealed) keyFor(salt []byte) (cipher.AEAD, error) {
	if s.aead != nil && bytes.Equal(salt, s.salt) {
		return s.aead, nil
	}
	key := argon2.IDKey(s.Passphrase, salt, argonTime, argonMemory, argonThreads, 32)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	s.salt, s.aead = bytes.Clone(salt), aead
	return aead, nil
}

// Read opens what Remote holds.
func (s *Sealed) Read(ctx context.Context) ([]byte, Version, error) {
	data, v, err := s.Remote.Read(ctx)
	if err != nil || v == "" {
		return data, v, err
	}
	if !bytes.HasPrefix(data, []byte(sealedMagic)) {
		return data, v, nil // not sealed yet: the next write seals it
	}
	rest := data[len(sealedMagic):]
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(rest) < saltSize+12 {
		return nil, "", fmt.Errorf("%s: the sealed state is truncated", s)
	}
	aead, err := s.keyFor(rest[:saltSize])
	if err != nil {
		return nil, "", err
	}
	nonce := rest[saltSize : saltSize+aead.NonceSize()]
	plain, err := aead.Open(nil, nonce, rest[saltSize+aead.NonceSize():], []byte(sealedMagic))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", s, ErrWrongPassphrase)
	}
	return plain, v, nil
}

// Write seals data and stores it over prev.
func (s *Sealed) Write(ctx context.Context, data []byte, prev Version) (Version, error) {
	s.mu.Lock()
	salt := s.salt
	if salt == nil {
		salt = make([]byte, saltSize)
		if _, err := rand.Read(salt); err != nil {
			s.mu.Unlock()
			return "", err
		}
	}
	aead, err := s.keyFor(salt)
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := append([]byte(sealedMagic), salt...)
	out = append(out, nonce...)
	out = aead.Seal(out, nonce, data, []byte(sealedMagic))
	return s.Remote.Write(ctx, out, prev)
}
