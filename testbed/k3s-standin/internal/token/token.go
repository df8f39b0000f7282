// Package token handles k3s join tokens: K10<sha256 hex of the server CA
// bundle>::<username>:<secret>, or a bare secret.
package token

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"
)

// Token is a parsed join token.
type Token struct {
	CAHash   string // empty for a bare secret: the CA is then not pinned
	Username string // "server" or "node"
	Secret   string
}

// Parse parses a full K10 token or a bare secret.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Token{}, fmt.Errorf("token: empty")
	}
	if !strings.HasPrefix(s, "K10") {
		return Token{Username: "server", Secret: s}, nil
	}
	hash, creds, ok := strings.Cut(strings.TrimPrefix(s, "K10"), "::")
	if !ok {
		return Token{}, fmt.Errorf("token: K10 token has no '::' separator")
	}
	if _, err := hex.DecodeString(hash); err != nil || len(hash) != 64 {
		return Token{}, fmt.Errorf("token: CA hash %q is not a sha256 hex digest", hash)
	}
	user, secret, ok := strings.Cut(creds, ":")
	if !ok || user == "" || secret == "" {
		return Token{}, fmt.Errorf("token: K10 token credentials must be <user>:<secret>")
	}
	return Token{CAHash: hash, Username: user, Secret: secret}, nil
}

// String formats the token in k3s's full form.
func (t Token) String() string {
	return "K10" + t.CAHash + "::" + t.Username + ":" + t.Secret
}

// NewSecret returns a random hex secret.
func NewSecret() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: random secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Equal compares secrets in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
