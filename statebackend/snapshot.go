// Package statebackend keeps a state directory (.mcplan/: state.json, the
// CA material, inventories, fetched kubeconfigs, pinned host keys) in a
// shared backend: the local directory is then a cache, rebuilt from the
// backend when a run starts and written back to it as the run goes.
package statebackend

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/steps/kube"
)

// Files of a state directory that are not state: the local lock (a
// backend locks itself), the temporary files of writes under way, a
// sealed state (the remote of its opened copy) and the opened copies
// (OpenDirPrefix).
const (
	localLockFile = "state.lock"
	// SealedFile is a sealed local state, in the state directory.
	SealedFile = "state.sealed"
	// OpenDirPrefix starts the name of a run's opened copy of a sealed
	// state, inside the state directory: .open-<pid>.
	OpenDirPrefix = ".open-"
)

// Snapshot is the content of a state directory: file path (slash
// separated, relative to the directory) to bytes.
type Snapshot map[string][]byte

// ignored reports whether a path of a state directory is left out of its
// snapshot.
func ignored(rel string) bool {
	base := filepath.Base(rel)
	return rel == localLockFile || rel == SealedFile || strings.HasPrefix(rel, OpenDirPrefix) ||
		(strings.HasPrefix(base, ".") && strings.Contains(base, ".tmp-"))
}

// localOnly reports whether a file of a state directory stays on the
// machine that wrote it, never read from nor written to a backend:
// mcplan's copy of a user's own kubeconfig (kube.IsUserKubeconfigCopy),
// which may hold an exec plugin that mcplan runs or a tokenFile it
// reads. Only the import step, from the file the plan names, writes one;
// what a backend's Secrets hold must not make mcplan run code or read a
// file. Another machine's run imports the user's file again.
func localOnly(rel string, data []byte) bool {
	return strings.HasPrefix(rel, "kubeconfig/") && kube.IsUserKubeconfigCopy(data)
}

// ReadSnapshot reads the files of a state directory, leaving out what
// stays local (localOnly); a missing directory is an empty snapshot.
func ReadSnapshot(dir string) (Snapshot, error) {
	s := Snapshot{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && path == dir {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), OpenDirPrefix) && filepath.Dir(path) == dir {
			return fs.SkipDir
		}
		if !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(rel) {
			return nil
		}
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return err
		}
		if !localOnly(rel, data) {
			s[rel] = data
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read state directory %s: %w", dir, err)
	}
	return s, nil
}

// paths are the snapshot's paths, sorted.
func (s Snapshot) paths() []string {
	paths := make([]string, 0, len(s))
	for p := range s {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	return paths
}

// WriteTo makes dir hold the snapshot: its files written (0600, folders
// 0700) where they differ, and the files of dir the snapshot lacks
// removed (dir is a cache of the backend). What stays local (localOnly)
// is neither written from the snapshot nor removed.
func (s Snapshot) WriteTo(dir string) error {
	local, err := ReadSnapshot(dir)
	if err != nil {
		return err
	}
	for _, p := range s.paths() {
		if old, ok := local[p]; ok && bytes.Equal(old, s[p]) || localOnly(p, s[p]) {
			continue
		}
		if err := atomicfile.Write(filepath.Join(dir, filepath.FromSlash(p)), s[p], 0o600); err != nil {
			return fmt.Errorf("state cache: %w", err)
		}
	}
	for p := range local {
		if _, ok := s[p]; !ok {
			if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("state cache: %w", err)
			}
		}
	}
	return nil
}

// Encode is the snapshot as a gzipped tar, the same bytes for the same
// files (sorted, no times or owners).
func (s Snapshot) Encode() ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	tw := tar.NewWriter(zw)
	for _, p := range s.paths() {
		if err := tw.WriteHeader(&tar.Header{Name: p, Mode: 0o600, Size: int64(len(s[p])), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return nil, fmt.Errorf("encode state: %w", err)
		}
		if _, err := tw.Write(s[p]); err != nil {
			return nil, fmt.Errorf("encode state: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	return buf.Bytes(), nil
}

// DecodeSnapshot reads what Encode wrote. Paths that would leave the
// state directory are refused: what a backend holds must not make mcplan
// write elsewhere.
func DecodeSnapshot(data []byte) (Snapshot, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("decode state: %w", err)
	}
	tr := tar.NewReader(zr)
	s := Snapshot{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		if h.Typeflag != tar.TypeReg || !fs.ValidPath(h.Name) || ignored(h.Name) {
			return nil, fmt.Errorf("decode state: entry %q is not a file of a state directory", h.Name)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("decode state: %w", err)
		}
		s[h.Name] = data
	}
	return s, nil
}

// Digest is the sha256 of encoded bytes, in hex.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// RemoveFrom removes the snapshot's files from dir (the plain files of a
// state once it is sealed), and the folders they leave empty, keeping
// its .gitignore.
func (s Snapshot) RemoveFrom(dir string) error {
	for _, p := range s.paths() {
		if p == ".gitignore" {
			continue
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(p))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: %w", err)
		}
		for parent := path.Dir(p); parent != "."; parent = path.Dir(parent) {
			if os.Remove(filepath.Join(dir, filepath.FromSlash(parent))) != nil {
				break // not empty
			}
		}
	}
	return nil
}

// RemoveOpenDirs removes the opened copies of a sealed state left in dir
// by runs that are gone (a SIGKILL leaves one behind).
func RemoveOpenDirs(dir string, logf func(string, ...any)) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("state: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), OpenDirPrefix))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), OpenDirPrefix) || err != nil || engine.ProcessAlive(pid) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		if logf != nil {
			logf("state: removed %s, the opened state left by a run that is gone", e.Name())
		}
	}
	return nil
}
