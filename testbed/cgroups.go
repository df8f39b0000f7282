package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// cgroupRoots returns the cgroup hierarchies that systemd-nspawn uses: the
// unified (v2) one, and on a hybrid machine also the named v1 "systemd"
// one. Each systemd host gets a cgroup of its own, named like its network
// namespace, in each of them: nspawn run from a root cgroup would put
// every container's payload in the same /payload cgroup, where one host's
// systemd would kill another host's processes when it stops a unit.
func cgroupRoots() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{"/sys/fs/cgroup"}
	}
	var roots []string
	for _, r := range []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup/systemd"} {
		if _, err := os.Stat(filepath.Join(r, "cgroup.procs")); err == nil {
			roots = append(roots, r)
		}
	}
	return roots
}

// cgroupEnterScript is shell code that moves the shell into cgroup name
// of every hierarchy, so that the command it then execs starts there.
func cgroupEnterScript(name string) string {
	var b strings.Builder
	for _, r := range cgroupRoots() {
		dir := filepath.Join(r, name)
		fmt.Fprintf(&b, "mkdir -p %s && echo $$ > %s\n", shellQuote(dir), shellQuote(filepath.Join(dir, "cgroup.procs")))
	}
	return b.String()
}

// removeCgroups removes the cgroups of the run with the given prefix, the
// deepest first, retrying while the kernel still counts exiting
// processes in them.
func removeCgroups(ctx context.Context, prefix string) error {
	var errs []error
	for _, r := range cgroupRoots() {
		ents, err := os.ReadDir(r)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !e.IsDir() || prefixOf(e.Name()) != prefix {
				continue
			}
			if err := removeCgroupTree(ctx, filepath.Join(r, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func removeCgroupTree(ctx context.Context, top string) error {
	var dirs []string
	filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		deadline := time.Now().Add(5 * time.Second)
		for {
			err := syscall.Rmdir(d)
			if err == nil || errors.Is(err, syscall.ENOENT) {
				break
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				return fmt.Errorf("remove cgroup %s: %w", d, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// cgroupNames lists the top-level cgroups of every hierarchy.
func cgroupNames() []string {
	var names []string
	for _, r := range cgroupRoots() {
		ents, _ := os.ReadDir(r)
		for _, e := range ents {
			if e.IsDir() {
				names = append(names, e.Name())
			}
		}
	}
	return names
}
