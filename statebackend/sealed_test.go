package statebackend

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestSealedFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.sealed")
	secret := []byte("-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n")
	s := &Sealed{Remote: &File{Path: path}, Passphrase: []byte("correct horse")}
	v, err := s.Write(ctx, secret, "")
	if err != nil {
		t.Fatal(err)
	}
	onDisk, _ := os.ReadFile(path)
	if bytes.Contains(onDisk, []byte("PRIVATE KEY")) || bytes.Contains(onDisk, []byte("MIIEow")) {
		t.Fatal("the sealed file holds the key in clear")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode())
	}
	// Another run with the passphrase opens it; a second write keeps the
	// salt (one key derivation per run) but not the nonce.
	again := &Sealed{Remote: &File{Path: path}, Passphrase: []byte("correct horse")}
	got, gotV, err := again.Read(ctx)
	if err != nil || !bytes.Equal(got, secret) || gotV != v {
		t.Fatalf("read back %q at %q (%v)", got, gotV, err)
	}
	if _, err := again.Write(ctx, secret, gotV); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(path)
	if bytes.Equal(second, onDisk) || !bytes.Equal(second[:len(sealedMagic)+saltSize], onDisk[:len(sealedMagic)+saltSize]) {
		t.Error("the second write reused the nonce or changed the salt")
	}
	// A wrong passphrase, or a changed byte, is refused, never read as
	// an empty or new state.
	wrong := &Sealed{Remote: &File{Path: path}, Passphrase: []byte("wrong")}
	if _, _, err := wrong.Read(ctx); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	second[len(second)-1] ^= 1
	if err := os.WriteFile(path, second, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := (&Sealed{Remote: &File{Path: path}, Passphrase: []byte("correct horse")}).Read(ctx); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("tampered state: %v", err)
	}
	// A state written before encryption was turned on is read as it is.
	plain := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(plain, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := (&Sealed{Remote: &File{Path: plain}, Passphrase: []byte("p")}).Read(ctx); err != nil || string(got) != "old" {
		t.Errorf("unsealed state: %q %v", got, err)
	}
}

// TestFileConflict: a write over a file another process changed since
// it was read fails.
func TestFileConflict(t *testing.T) {
	ctx := context.Background()
	f := &File{Path: filepath.Join(t.TempDir(), "s")}
	v, err := f.Write(ctx, []byte("a"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(ctx, []byte("b"), v); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(ctx, []byte("c"), v); !errors.Is(err, ErrConflict) {
		t.Errorf("stale write: %v, want ErrConflict", err)
	}
}
