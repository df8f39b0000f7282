package testbed

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leftovers lists what the machine still has of the run with the given
// prefix: network namespaces, links, mounts, processes, nspawn folders,
// cgroups and the run directory.
func leftovers(t *testing.T, prefix string) []string {
	t.Helper()
	var found []string
	check := func(what, text string) {
		for _, line := range strings.Split(text, "\n") {
			if strings.Contains(line, prefix) {
				found = append(found, what+": "+strings.TrimSpace(line))
			}
		}
	}
	out := func(name string, args ...string) string {
		b, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v: %s", name, args, err, b)
		}
		return string(b)
	}
	check("ip netns", out("ip", "netns", "list"))
	check("ip link", out("ip", "link"))
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	check("mount", string(mounts))
	check("process", out("ps", "-eo", "pid,stat,args"))
	if ents, err := os.ReadDir(nspawnPropagateDir); err == nil {
		for _, e := range ents {
			check("nspawn", e.Name())
		}
	}
	if _, err := exec.LookPath("machinectl"); err == nil {
		if b, err := exec.Command("machinectl", "list", "--no-legend").CombinedOutput(); err == nil {
			check("machinectl", string(b))
		}
	}
	for _, c := range cgroupNames() {
		check("cgroup", c)
	}
	if _, err := os.Stat(filepath.Join(DefaultRunRoot, prefix)); err == nil {
		found = append(found, "run directory "+filepath.Join(DefaultRunRoot, prefix))
	}
	return found
}

func requireRoot(t *testing.T, k Kind) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("testbed: test hosts need root; run the tests as root")
	}
	if missing := MissingTools(k); len(missing) > 0 {
		t.Skipf("testbed: %s hosts need %s, not installed (run testbed/install-deps.sh)", k, strings.Join(missing, ", "))
	}
}

// TestDownLeavesNothing brings hosts up and down twice in a row, for each
// kind, and checks that nothing of the run is left.
func TestDownLeavesNothing(t *testing.T) {
	for _, k := range []Kind{KindLight, KindSystemd} {
		t.Run(string(k), func(t *testing.T) {
			requireRoot(t, k)
			for round := 1; round <= 2; round++ {
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
				b, err := Up(ctx, Options{Hosts: 2, Kind: k})
				if err != nil {
					cancel()
					t.Fatal(err)
				}
				if len(leftovers(t, b.Prefix)) == 0 {
					t.Errorf("round %d: leftovers finds nothing of a live run %s", round, b.Prefix)
				}
				start := time.Now()
				err = b.Down(ctx)
				cancel()
				if err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
				t.Logf("round %d: run %s down in %s", round, b.Prefix, time.Since(start).Round(time.Millisecond))
				if left := leftovers(t, b.Prefix); len(left) > 0 {
					t.Errorf("round %d: after Down, run %s left:\n%s", round, b.Prefix, strings.Join(left, "\n"))
				}
			}
		})
	}
}

// TestDownAllAfterCrash runs Up in a child process, kills it with SIGKILL
// once the hosts are up, and checks that DownAll removes everything; twice,
// for each kind.
func TestDownAllAfterCrash(t *testing.T) {
	if os.Getenv("MCPLAN_TESTBED_CRASH_CHILD") != "" {
		return
	}
	for _, k := range []Kind{KindLight, KindSystemd} {
		t.Run(string(k), func(t *testing.T) {
			requireRoot(t, k)
			for round := 1; round <= 2; round++ {
				prefix := upAndCrash(t, k)
				found, err := FindRuns(t.Context(), "")
				if err != nil {
					t.Fatal(err)
				}
				if !contains(found, prefix) {
					t.Fatalf("round %d: FindRuns %v misses crashed run %s", round, found, prefix)
				}
				removed, skipped, err := DownAll(t.Context(), "")
				if err != nil {
					t.Fatalf("round %d: DownAll: %v", round, err)
				}
				if !contains(removed, prefix) {
					t.Errorf("round %d: DownAll removed %v, skipped %v, not the crashed run %s", round, removed, skipped, prefix)
				}
				if left := leftovers(t, prefix); len(left) > 0 {
					t.Errorf("round %d: after DownAll, crashed run %s left:\n%s", round, prefix, strings.Join(left, "\n"))
				}
			}
		})
	}
}

// upAndCrash starts this test binary as a child that brings up 2 hosts of
// kind k and prints the prefix, then kills the child with SIGKILL while its
// hosts run, and returns the prefix.
func upAndCrash(t *testing.T, k Kind) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), "MCPLAN_TESTBED_CRASH_CHILD="+string(k))
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	prefix := ""
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "CRASH-CHILD-UP "); ok {
			prefix = p
			break
		}
	}
	if prefix == "" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal("crash child did not bring hosts up")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	go func() { // drain until the pipe closes
		for sc.Scan() {
		}
	}()
	cmd.Wait()
	return prefix
}

// TestCrashChild is the child of upAndCrash; it does nothing unless started
// by it.
func TestCrashChild(t *testing.T) {
	k := Kind(os.Getenv("MCPLAN_TESTBED_CRASH_CHILD"))
	if k == "" {
		t.Skip("only runs as the child of TestDownAllAfterCrash")
	}
	b, err := Up(t.Context(), Options{Hosts: 2, Kind: k})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("CRASH-CHILD-UP " + b.Prefix + "\n")
	time.Sleep(10 * time.Minute) // killed long before
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
