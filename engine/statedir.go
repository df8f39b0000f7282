package engine

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// The state directory holds the mesh's root CA key and admin credentials
// for every cluster. mcplan refuses to use one that another user could
// write to (they could plant a kubeconfig or a CA key, or swap the
// state), and keeps it out of git by accident.

// stateGitignore is written into the state directory so that `git add .`
// beside the plan does not commit keys.
// Only the pinned host keys (public) may be committed.
const stateGitignore = "# Written by mcplan: this directory holds keys and credentials; never commit it.\n" +
	"*\n# known_hosts holds the host keys pinned on first use (public keys): commit it.\n!.gitignore\n!known_hosts\n"

// PrepareStateDir makes the state directory (0700) when missing, refuses
// one that is not owned by this user or is writable by group or others,
// and writes its .gitignore when missing.
func PrepareStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	if err := checkStateDirOwner(dir, fi); err != nil {
		return err
	}
	path := filepath.Join(dir, ".gitignore")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("state directory: %w", err)
	}
	_, err = f.WriteString(stateGitignore)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	return nil
}

// checkStateDirOwner refuses a state directory of another user, or one
// group or others may write to.
func checkStateDirOwner(dir string, fi fs.FileInfo) error {
	if !fi.IsDir() {
		return fmt.Errorf("state directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("state directory %s is writable by group or others (mode %04o): it holds CA keys and cluster credentials; run chmod go-w %s", dir, perm, dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("state directory %s belongs to uid %d, not to this user (uid %d): it holds CA keys and cluster credentials; use your own state.dir", dir, st.Uid, os.Geteuid())
	}
	return nil
}
