package native

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// pidFile lists the running container processes, one line each:
// "<pid> <start time> <namespace>/<pod>/<container> <pod uid>". A stand-in
// killed with SIGKILL leaves its processes to their parent-death signal;
// this file is the second line of defence: the next start kills what it
// lists (when pid and start time still match).
type pidFile struct {
	path    string
	mu      sync.Mutex
	entries map[int]pidEntry
}

type pidEntry struct {
	start uint64
	what  string
}

func newPIDFile(path string) *pidFile {
	return &pidFile{path: path, entries: map[int]pidEntry{}}
}

// killLeftovers kills the process groups a previous run recorded.
func (f *pidFile) killLeftovers(logf func(string, ...any)) error {
	b, err := os.ReadFile(f.path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", f.path, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 {
			continue
		}
		pid, err1 := strconv.Atoi(fields[0])
		start, err2 := strconv.ParseUint(fields[1], 10, 64)
		if err1 != nil || err2 != nil || pid <= 1 {
			continue
		}
		if now, err := procStartTime(pid); err != nil || now != start {
			continue
		}
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		logf("native: killed leftover process %d (%s) of a previous run", pid, fields[2])
	}
	return f.save()
}

func (f *pidFile) add(pid int, what string) {
	start, err := procStartTime(pid)
	if err != nil {
		return // already gone
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries[pid] = pidEntry{start: start, what: what}
	_ = f.saveLocked()
}

func (f *pidFile) remove(pid int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.entries, pid)
	_ = f.saveLocked()
}

func (f *pidFile) save() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.saveLocked()
}

func (f *pidFile) saveLocked() error {
	pids := make([]int, 0, len(f.entries))
	for pid := range f.entries {
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	var b strings.Builder
	for _, pid := range pids {
		e := f.entries[pid]
		fmt.Fprintf(&b, "%d %d %s\n", pid, e.start, e.what)
	}
	return pki.WriteFile(f.path, []byte(b.String()), 0o644)
}
