package statebackend

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"state.json": "{}", "ca/m/root-key.pem": "key", "inventory/c1/tags.json": "[]",
		"state.lock":                 "a local lock is not state",
		"ca/m/.root-key.pem.tmp-123": "a write under way",
	} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ReadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 3 || s["state.lock"] != nil || s["ca/m/.root-key.pem.tmp-123"] != nil {
		t.Fatalf("snapshot holds %v", s.paths())
	}
	a, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := s.Encode()
	if !bytes.Equal(a, b) {
		t.Error("two encodings of one snapshot differ")
	}
	back, err := DecodeSnapshot(a)
	if err != nil {
		t.Fatal(err)
	}
	for p, data := range s {
		if !bytes.Equal(back[p], data) {
			t.Errorf("%s: %q after the round trip, want %q", p, back[p], data)
		}
	}
	if missing, err := ReadSnapshot(filepath.Join(dir, "none")); err != nil || len(missing) != 0 {
		t.Errorf("missing directory: %v %v", missing, err)
	}
}

// TestDecodeRefusesPathsOutside: what a backend holds cannot make mcplan
// write outside the state directory.
func TestDecodeRefusesPathsOutside(t *testing.T) {
	for _, name := range []string{"../outside", "/etc/passwd", "a/../../b", "state.lock"} {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: 1, Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte("x"))
		tw.Close()
		zw.Close()
		if _, err := DecodeSnapshot(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "not a file of a state directory") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
