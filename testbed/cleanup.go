package testbed

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// nspawnPropagateDir is where systemd-nspawn keeps a folder per machine; a
// killed nspawn leaves its folder behind.
const nspawnPropagateDir = "/run/systemd/nspawn/propagate"

// removeRun removes everything of the run with the given prefix: its
// processes (hosts, sshds, nspawn and the containers' processes), network
// namespaces, links, mounts, cgroups, nspawn leftovers and the run
// directory. It
// finds them by name and by namespace, so it needs no manifest and also
// cleans up after a run whose process crashed; pids from the manifest are
// added when it exists. It goes on after a failure and returns all of them.
func removeRun(ctx context.Context, prefix, runRoot string) error {
	if !ValidPrefix(prefix) {
		return fmt.Errorf("testbed down: %q is not a run prefix", prefix)
	}
	var errs []error
	fail := func(what string, err error) {
		errs = append(errs, fmt.Errorf("testbed down %s: %s: %w", prefix, what, err))
	}
	dir := filepath.Join(runRoot, prefix)
	var extra []int
	if m, err := readManifest(dir); err == nil {
		extra = m.PIDs
	}

	namespaces, err := netnsNames(ctx)
	if err != nil {
		fail("list network namespaces", err)
	}
	ids := map[string]bool{}
	var own []string
	for _, ns := range namespaces {
		if prefixOf(ns) == prefix {
			own = append(own, ns)
			if id := namespaceID(ns); id != "" {
				ids[id] = true
			}
		}
	}
	// Processes first, twice: killing a parent can race with it forking.
	for round := 0; round < 2; round++ {
		pids, err := runProcesses(prefix, ids, extra)
		if err != nil {
			fail("list processes", err)
			break
		}
		if len(pids) == 0 {
			break
		}
		if err := killAndWait(ctx, pids); err != nil {
			fail("kill processes", err)
		}
	}
	for _, ns := range own {
		if _, err := command(ctx, "ip", "netns", "delete", ns); err != nil {
			fail("delete network namespace "+ns, err)
		}
	}
	links, err := linkNames(ctx)
	if err != nil {
		fail("list links", err)
	}
	// Bridges last: veths first would be gone with their namespace anyway.
	sort.Slice(links, func(i, j int) bool { return strings.HasSuffix(links[j], "-br") && !strings.HasSuffix(links[i], "-br") })
	for _, l := range links {
		if prefixOf(l) == prefix {
			if _, err := command(ctx, "ip", "link", "delete", l); err != nil && linkExists(ctx, l) {
				fail("delete link "+l, err)
			}
		}
	}
	for _, mnt := range runMounts(prefix, runRoot) {
		if err := syscall.Unmount(mnt, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			fail("unmount "+mnt, err)
		}
	}
	if ents, err := os.ReadDir(nspawnPropagateDir); err == nil {
		for _, e := range ents {
			if prefixOf(e.Name()) == prefix {
				if err := os.RemoveAll(filepath.Join(nspawnPropagateDir, e.Name())); err != nil {
					fail("remove nspawn leftovers", err)
				}
			}
		}
	}
	for _, ns := range own {
		os.Remove(filepath.Join("/run/netns", ns))
	}
	if err := removeCgroups(ctx, prefix); err != nil {
		fail("remove cgroups", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		fail("remove run directory", err)
	}
	return errors.Join(errs...)
}

// netnsNames lists the named network namespaces.
func netnsNames(ctx context.Context) ([]string, error) {
	out, err := command(ctx, "ip", "-j", "netns", "list")
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	var nss []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(out), &nss); err != nil {
		return nil, fmt.Errorf("parse ip -j netns list: %w", err)
	}
	names := make([]string, 0, len(nss))
	for _, n := range nss {
		names = append(names, n.Name)
	}
	// A namespace file whose mount is gone is not listed as in use but is
	// still a leftover.
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			found := false
			for _, n := range names {
				if n == e.Name() {
					found = true
				}
			}
			if !found {
				names = append(names, e.Name())
			}
		}
	}
	return names, nil
}

// linkNames lists the links of the root namespace.
func linkNames(ctx context.Context) ([]string, error) {
	out, err := command(ctx, "ip", "-j", "link")
	if err != nil {
		return nil, err
	}
	var links []struct {
		Name string `json:"ifname"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("parse ip -j link: %w", err)
	}
	names := make([]string, 0, len(links))
	for _, l := range links {
		names = append(names, l.Name)
	}
	return names, nil
}

func linkExists(ctx context.Context, name string) bool {
	_, err := command(ctx, "ip", "link", "show", name)
	return err == nil
}

// runMounts lists the mount points in the root mount namespace that belong
// to the run, deepest first.
func runMounts(prefix, runRoot string) []string {
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		mnt := strings.ReplaceAll(fields[1], `\040`, " ")
		mine := strings.HasPrefix(mnt, filepath.Join(runRoot, prefix)+"/") || mnt == filepath.Join(runRoot, prefix)
		for _, p := range prefixesIn(mnt + "-") {
			if p == prefix {
				mine = true
			}
		}
		if mine {
			out = append(out, mnt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// FindRuns returns the prefix of every run that has anything left on the
// machine: a run directory under runRoot (empty means DefaultRunRoot), a
// network namespace, a link, a mount, a process or nspawn leftovers.
func FindRuns(ctx context.Context, runRoot string) ([]string, error) {
	if runRoot == "" {
		runRoot = DefaultRunRoot
	}
	set := map[string]bool{}
	add := func(name string) {
		if p := prefixOf(name); p != "" {
			set[p] = true
		}
	}
	var errs []error
	if ents, err := os.ReadDir(runRoot); err == nil {
		for _, e := range ents {
			add(e.Name())
		}
	}
	if nss, err := netnsNames(ctx); err == nil {
		for _, n := range nss {
			add(n)
		}
	} else {
		errs = append(errs, err)
	}
	if links, err := linkNames(ctx); err == nil {
		for _, l := range links {
			add(l)
		}
	} else {
		errs = append(errs, err)
	}
	if ents, err := os.ReadDir(nspawnPropagateDir); err == nil {
		for _, e := range ents {
			add(e.Name())
		}
	}
	for _, c := range cgroupNames() {
		add(c)
	}
	if data, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, p := range prefixesIn(string(data)) {
			set[p] = true
		}
	}
	if procs, err := processes(); err == nil {
		self := os.Getpid()
		for _, p := range procs {
			if p.pid == self {
				continue
			}
			for _, pre := range prefixesIn(p.cmdline) {
				set[pre] = true
			}
		}
	} else {
		errs = append(errs, err)
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	if len(errs) > 0 {
		return out, fmt.Errorf("testbed: find runs: %w", errors.Join(errs...))
	}
	return out, nil
}

// runHeld reports whether a live process holds the run: its owner keeps an
// flock on the run's lock file for as long as its Bed is up (tests do; the
// CLI's up exits and so leaves its run unheld). A run directory made in the
// last few seconds without a lock file yet counts as held.
func runHeld(runRoot, prefix string) bool {
	dir := filepath.Join(runRoot, prefix)
	f, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_RDWR, 0)
	if err != nil {
		if st, serr := os.Stat(dir); serr == nil && time.Since(st.ModTime()) < 5*time.Second {
			return true
		}
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	return false
}

// DownAll removes the leftovers of every run on the machine that no live
// process holds: runs brought up by the CLI and runs whose process
// crashed or was killed. Runs held by a live process (a test's Bed) are left
// alone and returned as skipped. runRoot empty means DefaultRunRoot.
func DownAll(ctx context.Context, runRoot string) (removed, skipped []string, err error) {
	if runRoot == "" {
		runRoot = DefaultRunRoot
	}
	runs, findErr := FindRuns(ctx, runRoot)
	var errs []error
	if findErr != nil {
		errs = append(errs, findErr)
	}
	for _, p := range runs {
		if runHeld(runRoot, p) {
			skipped = append(skipped, p)
			continue
		}
		if err := removeRun(ctx, p, runRoot); err != nil {
			errs = append(errs, err)
		}
		removed = append(removed, p)
	}
	return removed, skipped, errors.Join(errs...)
}

// DownRun removes the run with the given prefix, whether or not a process
// holds it. runRoot empty means DefaultRunRoot.
func DownRun(ctx context.Context, prefix, runRoot string) error {
	if runRoot == "" {
		runRoot = DefaultRunRoot
	}
	return removeRun(ctx, prefix, runRoot)
}
