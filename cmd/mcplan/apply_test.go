package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"mcplan.io/mcplan/engine"
)

// caTargets selects the walkthrough's CA steps: they run without any host.
var caTargets = []string{"--target", "mesh/*/ca/*", "--target", "cluster/*/ca/*"}

func caFiles(dir string) []string {
	root := filepath.Join(dir, ".mcplan", "ca", "mesh1")
	files := []string{filepath.Join(root, "root-cert.pem"), filepath.Join(root, "root-key.pem")}
	for _, c := range []string{"cluster1", "cluster2"} {
		for _, f := range []string{"ca-cert.pem", "ca-key.pem", "root-cert.pem", "cert-chain.pem"} {
			files = append(files, filepath.Join(root, c, f))
		}
	}
	return files
}

func fileSums(t *testing.T, files []string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sums[f] = sha256.Sum256(data)
	}
	return sums
}

func TestApplyCATargetsThenNothingChanges(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...)
	if r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "Warning: --target is in effect") {
		t.Errorf("no --target warning in stderr: %s", r.stderr)
	}
	if !strings.Contains(r.stdout, "Apply complete: 3 created, 0 updated, 0 unchanged") {
		t.Errorf("summary: %s", r.stdout)
	}
	for _, f := range caFiles(dir) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(f, "-key.pem") {
			want = 0o600
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", f, fi.Mode().Perm(), want)
		}
	}
	state, err := os.ReadFile(filepath.Join(dir, ".mcplan", "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range [][]byte{state, []byte(r.stdout), []byte(r.stderr)} {
		if bytes.Contains(out, []byte("PRIVATE KEY")) {
			t.Errorf("a private key leaked into state or output")
		}
	}
	before := fileSums(t, caFiles(dir))

	r = mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Apply complete: 0 created, 0 updated, 3 unchanged") {
		t.Fatalf("second apply: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if after := fileSums(t, caFiles(dir)); !maps.Equal(before, after) {
		t.Error("second apply changed CA files")
	}
	r = mcplan(t, append(append([]string{"plan", "--offline", "--detailed-exitcode"}, caTargets...), plan)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "0 to create, 0 to update, 3 unchanged") {
		t.Errorf("plan after apply: exit %d\n%s", r.code, r.stdout)
	}
}

// unreachablePlan is a one-host plan whose host is a closed port on
// loopback: SSH fails there, and nothing leaves the machine.
func unreachablePlan(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "known_hosts"), nil, 0o644)
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(key, "")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "id"), pem.EncodeToMemory(block), 0o600)
	plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: unreachable}
ssh: {port: %d, identityFile: ./id, knownHosts: ./known_hosts, connectTimeout: 1s}
hosts:
  - {name: vm1, address: 127.0.0.1, privateIP: 10.255.0.1}
  - {name: vm2, address: 127.0.0.1, privateIP: 10.255.0.2}
clusters:
  - {name: cluster1, servers: [vm1]}
  - {name: cluster2, servers: [vm2]}
meshes:
  - {name: mesh1, clusters: [cluster1, cluster2], ca: {keySize: 2048}}
`, port)
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestApplyFailureStopsOnlyDependents(t *testing.T) {
	plan := unreachablePlan(t)
	dir := filepath.Dir(plan)
	r := mcplan(t, "apply", "-o", "json", plan)
	if r.code != exitError {
		t.Fatalf("exit %d, want %d", r.code, exitError)
	}
	var outcome = map[string]string{}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	for dec.More() {
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		if steps, ok := v["steps"].([]any); ok {
			for _, s := range steps {
				m := s.(map[string]any)
				outcome[m["id"].(string)] = m["outcome"].(string)
			}
		}
	}
	want := map[string]string{
		"host/vm1/facts":                      "failed",
		"host/vm2/facts":                      "failed",
		"host/vm1/k3s/server":                 "blocked",
		"mesh/mesh1/ca/root":                  "succeeded",
		"cluster/cluster1/ca/intermediate":    "succeeded",
		"cluster/cluster1/istio/controlplane": "blocked",
	}
	for id, o := range want {
		if outcome[id] != o {
			t.Errorf("%s: outcome %q, want %q", id, outcome[id], o)
		}
	}
	for _, frag := range []string{"host vm1 (127.0.0.1:", "host vm2 (127.0.0.1:", "no connection after 5 attempts"} {
		if !strings.Contains(r.stdout, frag) {
			t.Errorf("report lacks %q", frag)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".mcplan", "ca", "mesh1", "cluster2", "cert-chain.pem")); err != nil {
		t.Errorf("CA steps did not run beside the failing host steps: %v", err)
	}
}

func TestSecondApplyIsRefusedWhileLocked(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Join(filepath.Dir(plan), ".mcplan")
	lock, err := engine.AcquireLock(dir, "mcplan apply (another)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...)
	if r.code != exitError || !strings.Contains(r.stderr, `state is locked by "mcplan apply (another)"`) {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	if r := mcplan(t, "state", "unlock", plan); r.code != 0 || !strings.Contains(r.stdout, "Removed the lock held by") {
		t.Fatalf("unlock: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := mcplan(t, "state", "unlock", plan); !strings.Contains(r.stdout, "not locked") {
		t.Errorf("second unlock: %s", r.stdout)
	}
}

// TestSIGKILLBetweenCAStepsResumes kills a real mcplan process right after
// the root CA is recorded, then applies again: the run completes and the
// root is the one made before the kill.
func TestSIGKILLBetweenCAStepsResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mcplan and makes RSA-4096 keys; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "mcplan")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	args := append(append([]string{"apply", "--parallelism", "1"}, caTargets...), plan)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		if strings.Contains(scanner.Text(), "mesh/mesh1/ca/root  done") {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatal("never saw the root CA step finish")
	}
	store, err := engine.OpenStore(filepath.Join(dir, ".mcplan"))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := store.Record("mesh/mesh1/ca/root")
	if root.Status != engine.StatusSucceeded {
		t.Fatalf("root record after kill: %+v", root)
	}
	rootCert := filepath.Join(dir, ".mcplan", "ca", "mesh1", "root-cert.pem")
	before := fileSums(t, []string{rootCert})

	// The killed process left its lock; a second apply names it, and the
	// holder is found to be dead.
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "stale") {
		t.Fatalf("apply over a dead holder's lock: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "state", "unlock", plan).CombinedOutput(); err != nil {
		t.Fatalf("unlock: %v\n%s", err, out)
	}
	start := time.Now()
	out, err = exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	t.Logf("resume took %s:\n%s", time.Since(start), out)
	if !strings.Contains(string(out), "mesh/mesh1/ca/root  unchanged") {
		t.Errorf("resume did not keep the root:\n%s", out)
	}
	if after := fileSums(t, []string{rootCert}); !maps.Equal(before, after) {
		t.Error("resume replaced the root CA")
	}
	fileSums(t, caFiles(dir)) // every file exists now
}

// TestCtrlCLetsRunningStepsFinishAndResumes sends SIGINT to a real mcplan
// while the root CA is being made: the root finishes and is recorded, no
// intermediate starts, the exit code is 130, and the next apply resumes.
func TestCtrlCLetsRunningStepsFinishAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mcplan and makes RSA-4096 keys; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "mcplan")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plan := copyExample(t, "walkthrough")
	args := append(append([]string{"apply", "--parallelism", "1"}, caTargets...), plan)
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	scanner := bufio.NewScanner(stdout)
	for scanner.Scan() {
		lines = append(lines, scanner.Text())
		if strings.Contains(scanner.Text(), "mesh/mesh1/ca/root  creating") {
			cmd.Process.Signal(syscall.SIGINT) // while RSA-4096 key generation runs
		}
	}
	err = cmd.Wait()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != exitInterrupted {
		t.Fatalf("exit %v, want %d\n%s\n%s", err, exitInterrupted, strings.Join(lines, "\n"), stderr.String())
	}
	out := strings.Join(lines, "\n")
	if !strings.Contains(out, "mesh/mesh1/ca/root  done") || strings.Contains(out, "intermediate  creating") {
		t.Errorf("the running root step must finish and nothing new start:\n%s", out)
	}
	if !strings.Contains(stderr.String(), "Stopping: no new steps start") || !strings.Contains(stderr.String(), "Apply interrupted; state saved") {
		t.Errorf("stderr: %s", stderr.String())
	}
	resumed, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, resumed)
	}
	if !strings.Contains(string(resumed), "mesh/mesh1/ca/root  unchanged") || !strings.Contains(string(resumed), "2 created") {
		t.Errorf("resume:\n%s", resumed)
	}
}

// TestReplaceReissuesAnIntermediate: --replace makes a valid intermediate
// anew from the same root (plan shows it, the root stays), runs nothing
// else that does not depend on it, and is refused for a root, for a step
// the plan does not have, and for one outside --target.
func TestReplaceReissuesAnIntermediate(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	before := fileSums(t, caFiles(dir))
	replace := []string{"--replace", "cluster/cluster1/ca/intermediate"}
	r := mcplan(t, append(append(append([]string{"plan", "--offline", "--detailed-exitcode"}, caTargets...), replace...), plan)...)
	if r.code != exitChanges || !strings.Contains(r.stdout, "cluster/cluster1/ca/intermediate") || !strings.Contains(r.stdout, "replaced on request (--replace)") {
		t.Errorf("plan --replace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = mcplan(t, append(append(append([]string{"apply"}, caTargets...), replace...), plan)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Apply complete: 0 created, 1 updated, 2 unchanged") {
		t.Fatalf("apply --replace: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	after := fileSums(t, caFiles(dir))
	root := filepath.Join(dir, ".mcplan", "ca", "mesh1")
	for _, f := range caFiles(dir) {
		changed := before[f] != after[f]
		want := strings.HasPrefix(f, filepath.Join(root, "cluster1")) && !strings.HasSuffix(f, "root-cert.pem")
		if changed != want {
			t.Errorf("%s changed = %v, want %v", f, changed, want)
		}
	}
	for _, tt := range []struct{ id, want string }{
		{"mesh/mesh1/ca/root", "a mesh's root CA is never replaced"},
		{"cluster/cluster9/ca/intermediate", "the plan has no such step"},
		{"host/vm1/facts", "not among the targeted steps"},
	} {
		r := mcplan(t, append(append(append([]string{"apply"}, caTargets...), "--replace", tt.id), plan)...)
		if r.code != exitError || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("--replace %s: exit %d, want %q\n%s", tt.id, r.code, tt.want, r.stderr)
		}
	}
}
