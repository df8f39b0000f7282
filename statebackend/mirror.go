package statebackend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// Remote is where a state directory's snapshot is kept: Secrets, or
// Secrets behind encryption.
type Remote interface {
	Read(ctx context.Context) ([]byte, Version, error)
	Write(ctx context.Context, data []byte, prev Version) (Version, error)
	String() string
}

// ErrLocalOnly is the error of a run whose backend holds no state while
// the local state directory does: it was kept locally before.
var ErrLocalOnly = errors.New("the backend holds no state, the local state directory does")

// Mirror keeps a state directory, the local cache, and its Remote in
// step: Pull makes the directory the remote's state when a run starts;
// Push writes the directory back when it changed (after every write of
// the state file, and when the run ends). It is safe for concurrent use.
type Mirror struct {
	Remote Remote
	Dir    string

	mu      sync.Mutex
	version Version
	digest  string // of the encoded snapshot last read or written
}

// Pull replaces the local directory's state files with the remote's. A
// remote without state leaves the directory alone when it holds no state
// either (a first apply), and is ErrLocalOnly when it does (run mcplan
// state migrate).
func (m *Mirror) Pull(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, version, err := m.Remote.Read(ctx)
	if err != nil {
		return err
	}
	if version == "" {
		if _, err := os.Stat(filepath.Join(m.Dir, "state.json")); err == nil {
			return fmt.Errorf("%s: %w (%s): run \"mcplan state migrate --to kubernetes\" to move it there", m.Remote, ErrLocalOnly, m.Dir)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state cache: %w", err)
		}
		return nil
	}
	snap, err := DecodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("%s: %w", m.Remote, err)
	}
	if err := snap.WriteTo(m.Dir); err != nil {
		return err
	}
	m.version, m.digest = version, Digest(data)
	return nil
}

// Push writes the local directory to the remote when it changed since
// the last Pull or Push.
func (m *Mirror) Push(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	snap, err := ReadSnapshot(m.Dir)
	if err != nil {
		return err
	}
	data, err := snap.Encode()
	if err != nil {
		return err
	}
	if d := Digest(data); d == m.digest {
		return nil
	}
	version, err := m.Remote.Write(ctx, data, m.version)
	if err != nil {
		return err
	}
	m.version, m.digest = version, Digest(data)
	return nil
}
