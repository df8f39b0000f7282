package native

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// statusFD is the helper's fd 3: a close-on-exec pipe to the stand-in. It
// closes without a byte written when the exec succeeded; otherwise it
// carries the reason the container could not start.
const statusFD = 3

// ExecMain is the body of "k3s standin-native-exec <spec file>". It runs
// in a new mount namespace (the stand-in starts it with CLONE_NEWNS, which
// also makes / recursively private), enters the pod's network namespace
// (when it has one; execve keeps the calling thread's), bind-mounts the pod's volumes at their
// mount paths, changes to the working directory and execs the container's
// program. It only returns on failure.
func ExecMain(args []string, stderr io.Writer) int {
	status := os.NewFile(statusFD, "status")
	fail := func(err error) int {
		msg := err.Error()
		if status != nil {
			_, _ = status.WriteString(msg)
		}
		fmt.Fprintln(stderr, "k3s standin-native-exec:", msg)
		return 127
	}
	if status != nil {
		syscall.CloseOnExec(statusFD)
	}
	if len(args) != 1 {
		return fail(errors.New("usage: k3s " + ExecSubcommand + " <spec file>"))
	}
	spec, err := readSpec(args[0])
	if err != nil {
		return fail(err)
	}
	// Namespaces belong to threads: this goroutine stays on the thread
	// that enters the pod's network namespace and execs.
	runtime.LockOSThread()
	if err := enterNetNS(spec.NetNS); err != nil {
		return fail(err)
	}
	if err := enterContainer(spec); err != nil {
		return fail(err)
	}
	path := spec.Path
	if !strings.Contains(path, "/") {
		// Look the program up in the container's PATH.
		if err := os.Setenv("PATH", envValue(spec.Env, "PATH", defaultPath)); err != nil {
			return fail(err)
		}
		if path, err = exec.LookPath(path); err != nil {
			return fail(fmt.Errorf("look up %s: %w", spec.Path, err))
		}
	}
	err = unix.Exec(path, spec.Args, spec.Env)
	return fail(fmt.Errorf("exec %s: %w", path, err))
}

// defaultPath is the PATH container runtimes give processes without one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func envValue(env []string, key, fallback string) string {
	for _, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok && k == key {
			return v
		}
	}
	return fallback
}

// enterNetNS switches the calling (locked) thread into the network
// namespace at path; "" stays in the node's.
func enterNetNS(path string) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("pod network namespace: %w", err)
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter pod network namespace %s: %w", path, err)
	}
	return nil
}

// enterContainer makes the bind mounts and changes directory.
func enterContainer(spec *execSpec) error {
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return fmt.Errorf("read own mount namespace: %w", err)
	}
	if len(spec.Binds) > 0 && (spec.HostMountNamespace == "" || self == spec.HostMountNamespace) {
		return fmt.Errorf("not in a private mount namespace (%s); refusing to mount the pod's volumes on the host's paths", self)
	}
	binds := append([]bind(nil), spec.Binds...)
	// Parents before children, as the runtimes order mounts.
	sort.SliceStable(binds, func(i, j int) bool {
		return strings.Count(filepath.Clean(binds[i].Target), "/") < strings.Count(filepath.Clean(binds[j].Target), "/")
	})
	for _, b := range binds {
		if err := bindMount(b); err != nil {
			return err
		}
	}
	dir := spec.Dir
	if dir == "" {
		dir = "/"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}

// bindMount mounts b.Source on b.Target, creating an empty mount point
// when missing, and makes it read-only when asked (keeping the flags a
// user namespace locks, or the remount is refused).
func bindMount(b bind) error {
	fi, err := os.Stat(b.Source)
	if err != nil {
		return fmt.Errorf("mount source %s: %w", b.Source, err)
	}
	if err := mountPoint(b.Target, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(b.Source, b.Target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", b.Source, b.Target, err)
	}
	if !b.ReadOnly {
		return nil
	}
	var st unix.Statfs_t
	if err := unix.Statfs(b.Target, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", b.Target, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for _, f := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME}, {unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", b.Target, "", flags, ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", b.Target, err)
	}
	return nil
}

// mountPoint makes target exist: a directory, or an empty file when a file
// is mounted on it. Missing mount points are created on the node's file
// system (they stay empty there: what is mounted on them is only seen in
// the process's namespace).
func mountPoint(target string, dir bool) error {
	if _, err := os.Stat(target); err == nil {
		return nil
	}
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", target, err)
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return fmt.Errorf("mount point %s: %w", target, err)
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_RDONLY, 0o644)
	if err != nil {
		return fmt.Errorf("mount point %s: %w", target, err)
	}
	return f.Close()
}
