package testbed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is what cleanup needs to know of one process.
type proc struct {
	pid     int
	netns   string // e.g. "net:[4026532301]"
	pidns   string
	cmdline string // arguments joined by spaces
}

// processes lists every process of the machine (that has not exited while
// being read).
func processes() ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		p := proc{pid: pid}
		p.netns, _ = os.Readlink(filepath.Join(dir, "ns/net"))
		p.pidns, _ = os.Readlink(filepath.Join(dir, "ns/pid"))
		if cl, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
			p.cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
		}
		out = append(out, p)
	}
	return out, nil
}

// namespaceID returns the "net:[inode]" identity of the named network
// namespace, or "" when it does not exist.
func namespaceID(ns string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		return ""
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

// runProcesses returns the pids of every process that belongs to the run
// with the given prefix: those in its network namespaces, those whose
// command line names one of its hosts (ip netns exec, systemd-nspawn),
// those in the PID namespaces of any of these (a systemd host's services may
// have network namespaces of their own), and the listed extra pids when
// their command line names the prefix. Never the calling process.
func runProcesses(prefix string, netnsIDs map[string]bool, extra []int) ([]int, error) {
	all, err := processes()
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	ownPidNS, _ := os.Readlink("/proc/self/ns/pid")
	extraSet := map[int]bool{}
	for _, p := range extra {
		extraSet[p] = true
	}
	member := map[int]bool{}
	pidNS := map[string]bool{}
	for _, p := range all {
		if p.pid == self {
			continue
		}
		named := false
		for _, pre := range prefixesIn(p.cmdline) {
			if pre == prefix {
				named = true
			}
		}
		if netnsIDs[p.netns] || named || (extraSet[p.pid] && strings.Contains(p.cmdline, prefix)) {
			member[p.pid] = true
			if p.pidns != "" && p.pidns != ownPidNS {
				pidNS[p.pidns] = true
			}
		}
	}
	for _, p := range all {
		if p.pid != self && pidNS[p.pidns] {
			member[p.pid] = true
		}
	}
	pids := make([]int, 0, len(member))
	for pid := range member {
		pids = append(pids, pid)
	}
	return pids, nil
}

// killAndWait sends SIGKILL to pids and waits until they are gone (or are
// zombies, whose parent will reap them).
func killAndWait(ctx context.Context, pids []int) error {
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		alive := 0
		for _, pid := range pids {
			if processAlive(pid) {
				alive++
			}
		}
		if alive == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d killed processes still alive after 10s", alive, len(pids))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}
