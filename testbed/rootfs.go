package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// RootfsVersion names the cached tree of systemd hosts. Bump it whenever
// rootfsPackages or the preparation in prepareRootfs changes, so that a
// stale tree is never used.
const RootfsVersion = "bookworm-1"

// rootfsPackages is debootstrap's --include list.
const rootfsPackages = "systemd,systemd-sysv,dbus,openssh-server,iproute2," +
	"ca-certificates,curl,procps,kmod,iptables"

// RootfsPath is where the cached tree of version RootfsVersion lives.
func RootfsPath(cacheDir string) string {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	return filepath.Join(cacheDir, "rootfs-"+RootfsVersion)
}

// EnsureRootfs returns the cached Debian bookworm tree for systemd hosts,
// making it with debootstrap when it is missing. The tree is built in a
// temporary folder beside it and renamed into place only when complete, so
// an interrupted build never leaves a half tree; a file lock serialises
// concurrent builders.
func EnsureRootfs(ctx context.Context, cacheDir, mirror string, log io.Writer) (string, error) {
	if cacheDir == "" {
		cacheDir = DefaultCacheDir
	}
	if mirror == "" {
		mirror = DefaultMirror
	}
	if log == nil {
		log = io.Discard
	}
	final := RootfsPath(cacheDir)
	if rootfsComplete(final) {
		return final, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", fmt.Errorf("testbed rootfs: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(cacheDir, ".build.lock"))
	if err != nil {
		return "", fmt.Errorf("testbed rootfs: %w", err)
	}
	defer unlock()
	if rootfsComplete(final) {
		return final, nil
	}
	removeStaleBuilds(cacheDir)
	var suffix [4]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return "", fmt.Errorf("testbed rootfs: %w", err)
	}
	tmp := final + ".tmp-" + hex.EncodeToString(suffix[:])
	fmt.Fprintf(log, "testbed: building %s with debootstrap (about 90 s, once per machine)\n", final)
	start := time.Now()
	args := []string{
		"--variant=minbase",
		"--include=" + rootfsPackages,
		"bookworm", tmp, mirror,
	}
	if _, err := command(ctx, "debootstrap", args...); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("testbed rootfs: %w", err)
	}
	if err := prepareRootfs(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("testbed rootfs: prepare %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("testbed rootfs: %w", err)
	}
	fmt.Fprintf(log, "testbed: built %s in %s\n", final, time.Since(start).Round(time.Second))
	return final, nil
}

// rootfsComplete reports whether dir is a finished tree: the marker file is
// written last by prepareRootfs.
func rootfsComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, rootfsMarker))
	return err == nil
}

const rootfsMarker = "etc/mcplan-testbed-rootfs"

// prepareRootfs makes a debootstrapped tree fit to be booted many times: no
// host keys or hostname of its own (each host gets its own), an empty
// machine-id (nspawn's --uuid gives each host one), and a marker.
func prepareRootfs(dir string) error {
	keys, err := filepath.Glob(filepath.Join(dir, "etc/ssh/ssh_host_*"))
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	for _, f := range []string{"etc/hostname", "var/lib/dbus/machine-id"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc/machine-id"), nil, 0o444); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc/ssh/sshd_config.d"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "etc/ssh/testbed"), 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "root/.ssh"), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, rootfsMarker), []byte(RootfsVersion+"\n"), 0o644)
}

// removeStaleBuilds deletes temporary trees left by interrupted builds. It
// runs under the build lock, so no build is under way.
func removeStaleBuilds(cacheDir string) {
	stale, _ := filepath.Glob(filepath.Join(cacheDir, "rootfs-*.tmp-*"))
	for _, s := range stale {
		os.RemoveAll(s)
	}
}

// lockFile takes an exclusive flock on path, waiting until ctx is done.
func lockFile(ctx context.Context, path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
