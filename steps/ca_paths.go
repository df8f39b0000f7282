package steps

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/steps/statedir"
)

// checkPathName refuses a mesh or cluster name that would not stay one
// directory level below its parent.
func checkPathName(kind, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) || strings.ContainsRune(name, 0) {
		return fmt.Errorf("%s name %q cannot be a directory name", kind, name)
	}
	return nil
}

// makeCADir creates dir and its parents and makes dir itself mode 0700,
// even if it existed with a looser mode.
func makeCADir(dir string) error {
	if err := os.MkdirAll(dir, statedir.DirMode); err != nil {
		return err
	}
	return os.Chmod(dir, statedir.DirMode)
}

// writeCAFile writes one file of dir atomically; errors name the file.
func writeCAFile(dir, name string, data []byte, mode os.FileMode) error {
	if err := atomicfile.Write(filepath.Join(dir, name), data, mode); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}

// readCAFile reads one file of dir and returns its content and
// permission bits. A missing file gives an error matching fs.ErrNotExist.
func readCAFile(dir, name string) (data []byte, mode os.FileMode, err error) {
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, 0, err
	}
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	return data, fi.Mode().Perm(), nil
}

// shortSHA abbreviates a fingerprint for messages.
func shortSHA(sha string) string {
	if len(sha) <= 16 {
		return sha
	}
	return sha[:16] + "…"
}
