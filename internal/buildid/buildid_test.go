package buildid

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestIDOfATestBinaryNamesItsExecutable: a test binary has no VCS
// information, so its ID carries its executable's stamp, which a rebuild
// changes.
func TestIDOfATestBinaryNamesItsExecutable(t *testing.T) {
	id := ID()
	if id != ID() {
		t.Fatalf("ID not stable: %q then %q", id, ID())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(id, executableStamp()) || executableStamp() == "" {
		t.Fatalf("ID %q does not end with the executable's stamp %q", id, executableStamp())
	}
	later := time.Now().Add(time.Hour)
	fi, _ := os.Stat(exe)
	defer os.Chtimes(exe, fi.ModTime(), fi.ModTime())
	if err := os.Chtimes(exe, later, later); err != nil {
		t.Fatal(err)
	}
	if ID() == id {
		t.Errorf("ID unchanged after the executable changed: %q", id)
	}
}
