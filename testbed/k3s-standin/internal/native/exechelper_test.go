package native

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary act as the exec helper, as the k3s binary
// does when it re-executes itself.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == ExecSubcommand {
		os.Exit(ExecMain(os.Args[2:], os.Stderr))
	}
	os.Exit(m.Run())
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (mount namespaces and bind mounts)")
	}
}

// runHelper starts spec through the exec helper and returns the log text.
func runHelper(t *testing.T, spec *execSpec) (string, error) {
	t.Helper()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "spec.json")
	if err := writeSpec(specPath, spec); err != nil {
		t.Fatal(err)
	}
	log, err := openLog(filepath.Join(dir, "0.log"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := startProcess(newForker(), specPath, log)
	if err == nil {
		select {
		case <-p.exited:
		case <-time.After(30 * time.Second):
			p.stop(0)
			t.Fatal("process did not exit")
		}
	}
	log.close()
	var out strings.Builder
	if rerr := readLogs(t.Context(), filepath.Join(dir, "0.log"), LogOptions{}, func() bool { return false }, &out); rerr != nil {
		t.Fatal(rerr)
	}
	return out.String(), err
}

func TestExecHelperMountsVolumesPrivately(t *testing.T) {
	needRoot(t)
	ownNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	vol := filepath.Join(dir, "vol")
	if err := os.MkdirAll(vol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(vol, "greeting"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "mnt", "target") // missing: made by the helper
	work := filepath.Join(dir, "work")
	script := `cat ` + target + `/greeting; echo "FOO=$FOO"; pwd; readlink /proc/self/ns/mnt; ` +
		`if touch ` + target + `/x 2>/dev/null; then echo writable; else echo read-only; fi`
	out, err := runHelper(t, &execSpec{
		Path: "sh", Args: []string{"sh", "-c", script}, Env: []string{"FOO=bar", "PATH=/usr/bin:/bin"}, Dir: work,
		Binds:              []bind{{Source: vol, Target: target, ReadOnly: true}},
		HostMountNamespace: ownNS,
	})
	if err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 || lines[0] != "hello" || lines[1] != "FOO=bar" || lines[2] != work || lines[3] == ownNS || lines[4] != "read-only" {
		t.Fatalf("process saw %q (own mount namespace %s)", lines, ownNS)
	}
	// The mount point exists on the host, empty: the volume is only
	// mounted in the process's namespace.
	entries, err := os.ReadDir(target)
	if err != nil || len(entries) != 0 {
		t.Fatalf("host view of the mount point: %v %v", entries, err)
	}
}

func TestExecHelperReportsSetupFailures(t *testing.T) {
	needRoot(t)
	ownNS, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		spec execSpec
		want string
	}{
		{"missing mount source", execSpec{Path: "/bin/true", Args: []string{"true"},
			Binds: []bind{{Source: filepath.Join(dir, "nope"), Target: filepath.Join(dir, "t")}}, HostMountNamespace: ownNS}, "mount source"},
		{"unknown host namespace", execSpec{Path: "/bin/true", Args: []string{"true"},
			Binds: []bind{{Source: dir, Target: filepath.Join(dir, "t")}}}, "refusing to mount"},
		{"missing program", execSpec{Path: filepath.Join(dir, "no-such-program"), Args: []string{"x"}}, "exec "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runHelper(t, &tc.spec)
			var se *setupError
			if !errors.As(err, &se) || !strings.Contains(se.msg, tc.want) {
				t.Fatalf("err %v, want a setup error with %q", err, tc.want)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("log %q does not tell %q", out, tc.want)
			}
		})
	}
}
