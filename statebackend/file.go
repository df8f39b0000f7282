package statebackend

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"mcplan.io/mcplan/internal/atomicfile"
)

// File keeps a state's encoded snapshot in one local file (0600): with
// encryption, the state directory at rest is this file, sealed. Its
// version is the digest of what was read, so a write over a file another
// process changed since is ErrConflict.
type File struct{ Path string }

func (f *File) String() string { return "the state in " + f.Path }

// Read returns the file's bytes; a missing file is no state.
func (f *File) Read(context.Context) ([]byte, Version, error) {
	data, err := os.ReadFile(f.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read the state: %w", err)
	}
	return data, Version(Digest(data)), nil
}

// Write replaces the file when it still holds what prev says.
func (f *File) Write(ctx context.Context, data []byte, prev Version) (Version, error) {
	_, now, err := f.Read(ctx)
	if err != nil {
		return "", err
	}
	if now != prev {
		return "", fmt.Errorf("write the state to %s: %w", f.Path, ErrConflict)
	}
	if err := atomicfile.Write(f.Path, data, 0o600); err != nil {
		return "", fmt.Errorf("write the state: %w", err)
	}
	return Version(Digest(data)), nil
}
