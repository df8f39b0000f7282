package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestStoreRoundTripAndMode(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Update("mesh/mesh1/ca/root", func(r *StepRecord) {
		r.Kind, r.Status, r.Fingerprint, r.Outputs = "ca/root", StatusSucceeded, "sha256:ab", map[string]string{"certSHA256": "cd"}
	}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	rec, ok := openStore(t, dir).Record("mesh/mesh1/ca/root")
	if !ok || rec.Outputs["certSHA256"] != "cd" || rec.Status != StatusSucceeded {
		t.Errorf("reopened record = %+v, %v", rec, ok)
	}
}

func TestStoreConcurrentUpdatesAllReachDisk(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Update(fmt.Sprint("step", i), func(r *StepRecord) { r.Status = StatusSucceeded }); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := len(openStore(t, dir).IDs()); n != 50 {
		t.Errorf("state on disk holds %d steps, want 50", n)
	}
}

func TestStoreRejectsOtherVersions(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"future", `{"version": 99, "steps": {}}`, "version 99 was written by a newer mcplan; this one reads version 1"},
		{"garbage", `{not json`, "read state"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := OpenStore(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenStore = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestLockRefusesSecondHolderAndUnlocks(t *testing.T) {
	dir := t.TempDir()
	l, err := AcquireLock(dir, "mcplan apply")
	if err != nil {
		t.Fatal(err)
	}
	_, err = AcquireLock(dir, "mcplan apply")
	var locked *LockedError
	if !errors.As(err, &locked) {
		t.Fatalf("second AcquireLock = %v, want *LockedError", err)
	}
	if locked.Holder.PID != os.Getpid() || locked.Stale {
		t.Errorf("holder = %+v stale=%v", locked.Holder, locked.Stale)
	}
	for _, frag := range []string{`"mcplan apply"`, fmt.Sprintf("pid %d", os.Getpid()), "mcplan state unlock"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error %q lacks %q", err, frag)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := AcquireLock(dir, "mcplan apply")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if _, err := ForceUnlock(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ForceUnlock(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ForceUnlock without lock = %v, want ErrNotExist", err)
	}
	_ = l2
}

func TestLockHeldByDeadProcessIsReportedStale(t *testing.T) {
	dir := t.TempDir()
	host, _ := os.Hostname()
	// PIDs above the kernel's pid_max cannot be alive.
	content := fmt.Sprintf(`{"pid": 2147483647, "host": %q, "command": "mcplan apply", "since": "2026-01-01T00:00:00Z"}`, host)
	if err := os.WriteFile(filepath.Join(dir, LockFile), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := AcquireLock(dir, "mcplan apply")
	var locked *LockedError
	if !errors.As(err, &locked) || !locked.Stale || !strings.Contains(err.Error(), "stale") {
		t.Fatalf("AcquireLock = %v, want a stale *LockedError", err)
	}
}

func TestTrustedValuesPersist(t *testing.T) {
	dir := t.TempDir()
	if err := openStore(t, dir).Trust("ssh-host-key/vm1@192.0.2.1:22", "ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	v, ok := openStore(t, dir).Trusted("ssh-host-key/vm1@192.0.2.1:22")
	if !ok || v != "ssh-ed25519 AAAA" {
		t.Errorf("Trusted = %q, %v", v, ok)
	}
}
