package digest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSumsAgree(t *testing.T) {
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if got := SHA256Hex(nil); got != empty {
		t.Errorf("SHA256Hex(nil) = %s", got)
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, []byte("mcplan\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := FileSHA256(path)
	if err != nil || got != SHA256Hex([]byte("mcplan\n")) || got == empty {
		t.Errorf("FileSHA256 = %s, %v", got, err)
	}
	if _, err := FileSHA256(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing file has a sum")
	}
}
