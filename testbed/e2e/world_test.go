package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"mcplan.io/mcplan/testbed"
	"mcplan.io/mcplan/testbed/internet"
)

// repoRoot is the repository's top directory.
func repoRoot(t testing.TB) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// buildMcplan builds the mcplan binary for the test.
func buildMcplan(t testing.TB) string { return testbed.BuildMcplan(t) }

// standin returns the k3s stand-in binary, building it when missing (a
// cold build takes minutes; scripts/test.sh builds it before the tests).
func standin(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "testbed", "k3s-standin", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build the k3s stand-in: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// nativeImages returns the folder of programs the stand-in runs natively
// in place of container images (istiod), building them when missing.
func nativeImages(t testing.TB) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(t), "testbed", "native-images", "build.sh"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build the native images (pilot-discovery): %v", err)
	}
	return strings.TrimSpace(string(out))
}

// world is a testbed with a plan over its hosts.
type world struct {
	t      *testing.T
	bed    *testbed.Bed
	mcplan string
	dir    string // holds plan.yaml, its state and kubeconfig
	k3s    string
	// knownHosts is the plan's known_hosts: a copy of the bed's.
	knownHosts string
}

func newWorld(t *testing.T, hosts int) *world {
	t.Helper()
	return newWorldWith(t, hosts, nil)
}

// newWorldWith is newWorld whose hosts have a stand-in internet serving
// net, when net is set.
func newWorldWith(t *testing.T, hosts int, net *internet.Config) *world {
	t.Helper()
	skipShort(t)
	w := &world{t: t, dir: t.TempDir()}
	w.bed = testbed.ForTestWith(t, testbed.Options{Hosts: hosts, Kind: testbed.KindSystemd, NativeImages: nativeImages(t), Internet: net})
	w.mcplan = buildMcplan(t)
	// The plan's own known_hosts, so a test can change what mcplan
	// trusts without affecting the test's own SSH.
	data, err := os.ReadFile(w.bed.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	w.knownHosts = filepath.Join(w.dir, "known_hosts")
	if err := os.WriteFile(w.knownHosts, data, 0o644); err != nil {
		t.Fatal(err)
	}
	w.k3s = standin(t)
	return w
}

// skipShort skips an end-to-end test with -short.
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: brings up systemd test hosts and a real kube-apiserver per cluster; skipped with -short")
	}
}

// planOptions vary the generated plan.
type planOptions struct {
	cluster2Args []string
	cluster1Args []string
	// mesh, when set, is the plan's meshes: section.
	mesh string
	// noAgent leaves h3 out of cluster2's agents (it stays a host).
	noAgent bool
	// noHost3 leaves h3 out of the plan altogether (with noAgent).
	noHost3 bool
	// h3Server makes h3 a second server of cluster2 (with noAgent).
	h3Server bool
	// oneNetwork puts cluster2 on cluster1's network, network1, the only
	// one: a single-network mesh.
	oneNetwork bool
}

// writePlan writes plan.yaml: cluster1 = server h1; cluster2 = server h2
// and agent h3; k3s installed through the airgap path with the stand-in.
func (w *world) writePlan(o planOptions) string {
	w.t.Helper()
	h := w.bed.Hosts
	quoteList := func(args []string) string {
		var q []string
		for _, a := range args {
			q = append(q, fmt.Sprintf("%q", a))
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	host3 := ""
	if !o.noHost3 {
		host3 = "  - {name: h3, address: " + h[2].Address + "}\n"
	}
	networks, network2 := "[{name: network1}, {name: network2}]", "network2"
	if o.oneNetwork {
		networks, network2 = "[{name: network1}]", "network1"
	}
	plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: e2e}
ssh: {user: root, identityFile: %q, knownHosts: %q, connectTimeout: 3s}
hosts:
  - {name: h1, address: %s}
  - {name: h2, address: %s}
%snetworks: %s
clusters:
  - name: cluster1
    network: network1
    servers: [h1]
    k3s:
      args: %s
      airgap: {binary: %q, installScript: %q}
  - name: cluster2
    network: %s
    servers: %s
    agents: %s
    k3s:
      channel: stable
      args: %s
      airgap: {binary: %q, installScript: %q}
kubeconfig: {path: ./kubeconfig}
%s`, w.bed.ClientKeyPath, w.knownHosts, h[0].Address, h[1].Address,
		host3, networks,
		quoteList(append([]string{"--cluster-cidr=10.42.0.0/16", "--service-cidr=10.43.0.0/16"}, o.cluster1Args...)), w.k3s, w.installScript(), network2,
		map[bool]string{false: "[h2]", true: "[h2, h3]"}[o.h3Server],
		map[bool]string{false: "[h3]", true: "[]"}[o.noAgent],
		quoteList(append([]string{"--cluster-cidr=10.52.0.0/16", "--service-cidr=10.53.0.0/16"}, o.cluster2Args...)), w.k3s, w.installScript(),
		o.mesh)
	path := filepath.Join(w.dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return path
}

func (w *world) installScript() string {
	return filepath.Join(repoRoot(w.t), "testbed", "k3s-install", "install.sh")
}

// applyResult is one mcplan apply: its exit code, the steps' outcomes
// and actions from the JSON report, and the event lines.
type applyResult struct {
	code     int
	outcomes map[string]string
	actions  map[string]string
	errors   map[string]string
	reasons  map[string]string
	output   string
}

// apply runs mcplan apply -o json and decodes the report.
func (w *world) apply(ctx context.Context, args ...string) applyResult {
	w.t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, append([]string{"apply", "-o", "json"}, append(args, filepath.Join(w.dir, "plan.yaml"))...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := applyResult{outcomes: map[string]string{}, actions: map[string]string{}, errors: map[string]string{}, reasons: map[string]string{}, output: stdout.String() + stderr.String()}
	if exit, ok := err.(*exec.ExitError); ok {
		r.code = exit.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var v struct {
			Steps []struct{ ID, Outcome, Action, Error, Reason string } `json:"steps"`
		}
		if err := dec.Decode(&v); err != nil {
			w.t.Fatalf("decode apply output: %v\n%s", err, r.output)
		}
		for _, s := range v.Steps {
			r.outcomes[s.ID], r.actions[s.ID], r.errors[s.ID], r.reasons[s.ID] = s.Outcome, s.Action, s.Error, s.Reason
		}
	}
	return r
}

// mustApply runs apply, logs how long it took as what, and fails t
// (the calling test or subtest) with the whole output when apply fails.
func (w *world) mustApply(t *testing.T, ctx context.Context, what string) applyResult {
	t.Helper()
	start := time.Now()
	r := w.apply(ctx)
	t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
	if r.code != 0 {
		t.Fatalf("%s: exit %d\n%s", what, r.code, r.output)
	}
	return r
}

// ran lists the steps an apply ran (succeeded or failed), sorted.
func (r applyResult) ran() []string {
	var ids []string
	for id, o := range r.outcomes {
		if o == "succeeded" || o == "failed" {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// ssh runs a command on a test host, its key checked against the bed's
// known_hosts.
func (w *world) ssh(h testbed.Host, command string) string {
	w.t.Helper()
	return w.sshIn(h, command, nil)
}

// sshIn runs a command on a test host with stdin.
func (w *world) sshIn(h testbed.Host, command string, stdin io.Reader) string {
	w.t.Helper()
	key, err := os.ReadFile(w.bed.ClientKeyPath)
	if err != nil {
		w.t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(key)
	if err != nil {
		w.t.Fatal(err)
	}
	check, err := knownhosts.New(w.bed.KnownHostsPath)
	if err != nil {
		w.t.Fatal(err)
	}
	c, err := ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.PublicKeys(signer)}, HostKeyCallback: check, Timeout: 10 * time.Second})
	if err != nil {
		w.t.Fatalf("ssh %s: %v", h.Name, err)
	}
	defer c.Close()
	s, err := c.NewSession()
	if err != nil {
		w.t.Fatal(err)
	}
	defer s.Close()
	s.Stdin = stdin
	out, err := s.CombinedOutput(command)
	if err != nil {
		w.t.Fatalf("ssh %s %q: %v\n%s", h.Name, command, err, out)
	}
	return string(out)
}

// commandLogs reads every host's command log of the install stand-in.
func (w *world) commandLogs() map[string]string {
	logs := map[string]string{}
	for _, h := range w.bed.Hosts {
		logs[h.Name] = w.ssh(h, "cat /var/log/mcplan-testbed/commands.log 2>/dev/null || true")
	}
	return logs
}
