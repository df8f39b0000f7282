package remote

import (
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestHostKeyAlgorithmsNeverSHA1: the algorithms asked of a server prefer
// ed25519 when no key is known, and an RSA host key (known or pinned) is
// accepted only with SHA-2 signatures, never ssh-rsa.
func TestHostKeyAlgorithmsNeverSHA1(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ssh.NewPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	knownHosts := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte("192.0.2.7 "+string(ssh.MarshalAuthorizedKey(pub))), 0o644); err != nil {
		t.Fatal(err)
	}
	pinned := &memTrust{}
	identity := filepath.Join(t.TempDir(), "id")
	writeKey(t, identity)
	base := Endpoint{Name: "h", Address: "192.0.2.7", Port: 22, User: "root", IdentityFile: identity}
	for _, tc := range []struct {
		name  string
		edit  func(*Endpoint)
		trust TrustStore
		first string
	}{
		{"first contact, pinning", func(ep *Endpoint) { ep.KnownHosts = KnownHostsPin }, &memTrust{}, ssh.KeyAlgoED25519},
		{"RSA key in known_hosts", func(ep *Endpoint) { ep.KnownHosts = knownHosts }, nil, ssh.KeyAlgoRSASHA512},
		{"RSA key pinned", func(ep *Endpoint) {
			ep.KnownHosts = KnownHostsPin
			_ = pinned.Trust(pinKey(*ep), string(ssh.MarshalAuthorizedKey(pub)))
		}, pinned, ssh.KeyAlgoRSASHA512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ep := base
			tc.edit(&ep)
			cfg, err := clientConfig(ep, DialOptions{Trust: tc.trust, Logf: func(string, ...any) {}})
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.HostKeyAlgorithms) == 0 || cfg.HostKeyAlgorithms[0] != tc.first {
				t.Errorf("host key algorithms %v, want %s first", cfg.HostKeyAlgorithms, tc.first)
			}
			if slices.Contains(cfg.HostKeyAlgorithms, ssh.KeyAlgoRSA) {
				t.Errorf("host key algorithms %v offer ssh-rsa (SHA-1)", cfg.HostKeyAlgorithms)
			}
		})
	}
}
