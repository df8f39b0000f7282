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
