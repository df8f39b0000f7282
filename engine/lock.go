package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockFile is the name of the lock file inside the state directory.
const LockFile = "state.lock"

// LockHolder says who holds the state lock.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// Lock is a held state lock.
type Lock struct {
	path   string
	holder LockHolder
}

// LockedError is returned when another process holds the lock.
type LockedError struct {
	Path   string
	Holder LockHolder
	// Stale is true when the holder ran on this host and its process is gone.
	Stale bool
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("state is locked by %q (pid %d on %s since %s)",
		e.Holder.Command, e.Holder.PID, e.Holder.Host, e.Holder.Since.Format(time.RFC3339))
	if e.Stale {
		msg += fmt.Sprintf("; process %d is no longer running on this host, so the lock is stale", e.Holder.PID)
	}
	return msg + fmt.Sprintf(`; if no mcplan is running on this state, run "mcplan state unlock" (lock file %s)`, e.Path)
}

// AcquireLock takes the lock of a state directory for command, or returns a
// *LockedError naming the holder.
func AcquireLock(dir, command string) (*Lock, error) {
	if err := PrepareStateDir(dir); err != nil {
		return nil, err // it names the state directory
	}
	host, _ := os.Hostname()
	l := &Lock{path: filepath.Join(dir, LockFile), holder: LockHolder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC()}}
	data, err := json.Marshal(l.holder)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		holder, rerr := ReadLock(dir)
		if rerr != nil {
			return nil, fmt.Errorf("lock state: %s exists but cannot be read (%v); remove it if no mcplan is running", l.path, rerr)
		}
		return nil, &LockedError{Path: l.path, Holder: holder, Stale: holder.Host == host && !ProcessAlive(holder.PID)}
	}
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(l.path)
		return nil, fmt.Errorf("lock state: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(l.path)
		return nil, fmt.Errorf("lock state: %w", err)
	}
	return l, nil
}

// Release gives the lock back: it removes the lock file only while it
// still holds this process's lock (after a forced unlock another process
// may hold it now).
func (l *Lock) Release() error {
	holder, err := ReadLock(filepath.Dir(l.path))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("unlock state: %w", err)
	case holder.PID != l.holder.PID || holder.Host != l.holder.Host || !holder.Since.Equal(l.holder.Since):
		return nil // not ours any more
	}
	if err := os.Remove(l.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("unlock state: %w", err)
	}
	return nil
}

// ReadLock returns the holder of a state directory's lock.
func ReadLock(dir string) (LockHolder, error) {
	var h LockHolder
	data, err := os.ReadFile(filepath.Join(dir, LockFile))
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("parse %s: %w", filepath.Join(dir, LockFile), err)
	}
	return h, nil
}

// ForceUnlock removes a state directory's lock whoever holds it, and
// returns who held it. It reports fs.ErrNotExist when there is no lock.
func ForceUnlock(dir string) (LockHolder, error) {
	h, err := ReadLock(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return h, err
	}
	if rmErr := os.Remove(filepath.Join(dir, LockFile)); rmErr != nil {
		return h, fmt.Errorf("unlock state: %w", rmErr)
	}
	return h, nil
}

// ProcessAlive reports whether a process of this host is running.
func ProcessAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
