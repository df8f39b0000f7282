package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStateDirWritableByOthersRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".mcplan")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLock(dir, "test")
	if err == nil || !strings.Contains(err.Error(), "writable by group or others") {
		t.Fatalf("lock of a 0777 state directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, LockFile)); err == nil {
		t.Error("a lock was taken in a refused state directory")
	}
}

func TestStateDirGetsGitignore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".mcplan")
	l, err := AcquireLock(dir, "test")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	b, err := os.ReadFile(filepath.Join(dir, ".gitignore"))
	if err != nil || !strings.Contains(string(b), "\n*\n") {
		t.Errorf(".gitignore: %q %v", b, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode: %v %v", fi.Mode(), err)
	}
}

// TestReleaseKeepsAnotherProcessLock: after a forced unlock and another
// process's lock, the first process's Release leaves that lock alone.
func TestReleaseKeepsAnotherProcessLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".mcplan")
	first, err := AcquireLock(dir, "first")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ForceUnlock(dir); err != nil {
		t.Fatal(err)
	}
	second, err := AcquireLock(dir, "second")
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Release(); err != nil {
		t.Fatal(err)
	}
	h, err := ReadLock(dir)
	if err != nil || h.Command != "second" {
		t.Fatalf("after the first's Release the lock is %+v (%v), want the second's", h, err)
	}
	if err := second.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLock(dir); err == nil {
		t.Error("the second's Release left its lock")
	}
}
