package e2e

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/testbed"
)

// A fault is injected into one test host while mcplan apply runs.
type fault struct {
	name string
	// targets are destroyed before the apply, so that it has this work
	// to do while the fault is on.
	targets []string
	// moment is a line of apply's text output at which the fault starts;
	// "" starts it before apply does.
	moment string
	// inject starts the fault and returns once it is over (a link down
	// for 20 s) or returns how to end it (iptables rules, ended after
	// the apply).
	inject func(t *testing.T) (end func())
	// begun, when set, holds the apply (SIGSTOP) from the moment until
	// it returns (the fault has begun: k3s's API refuses connections),
	// then lets it go on (SIGCONT): the step at the moment meets the
	// fault rather than finishing before it bites (a restart takes a
	// second or two to stop an API server; a step may take 0.1 s).
	begun func(t *testing.T)
	// evidence is a line of the apply's output that shows it rode
	// through the fault (a retry, a redial); "" when none is certain.
	evidence string
}

// TestFaultsOnTheWalkthroughWorld injects the faults of README's fault
// matrix into the walkthrough world (two clusters on two networks, one
// mesh) while mcplan apply runs. Each transient fault is ridden through
// in the same run (exit 0), and afterwards the mesh has converged: a
// second apply changes nothing, verify --xds passes on both networks, the
// mesh root is the one of the first apply, each pair has one remote
// secret and one reader token, and no secret is in the output or state.
// Then mcplan is SIGKILLed right after each step of the graph starts, and
// at seeded random moments, each next apply resuming; and the state
// directory runs out of space.
func TestFaultsOnTheWalkthroughWorld(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	h1, h2, h3 := w.bed.Hosts[0], w.bed.Hosts[1], w.bed.Hosts[2]
	w.writePlan(planOptions{mesh: meshSection})
	w.mustApply(t, ctx, "first apply")
	root := w.rootSum(t)

	controlPlane1 := []string{"cluster/cluster1/istio/controlplane"}
	controlPlane2 := []string{"cluster/cluster2/istio/controlplane"}
	agent := []string{"host/h3/k3s/join"}
	// A baseline for the loss case: the same work without a fault.
	w.destroy(t, ctx, controlPlane2)
	start := time.Now()
	w.mustApply(t, ctx, "cluster2's Istio again, no fault")
	baseline := time.Since(start)

	for _, f := range []fault{
		{name: "k3s restarted on h1 during its Istio control plane apply", targets: controlPlane1,
			moment: "cluster/cluster1/istio/controlplane  | rendered", inject: w.restartK3s(h1), begun: apiDown(h1), evidence: "trying again"},
		{name: "k3s restarted on h2 during the remote-secret steps", targets: []string{"mesh/mesh1/remotesecret/*"},
			moment: "mesh/mesh1/remotesecret/cluster2->cluster1  creating", inject: w.restartK3s(h2), begun: apiDown(h2), evidence: "trying again"},
		{name: "20% packet loss both ways on h2 for the whole apply", targets: controlPlane2,
			inject: w.packetLoss(h2, 0.2)},
		{name: "h3's link down for 20 s during its k3s upload", targets: agent,
			moment: "host/h3/k3s/join  creating", inject: w.linkDown(h3, 20*time.Second)},
		{name: "h3's link down for 20 s during its node-Ready wait", targets: agent,
			moment: "host/h3/k3s/join  | installing k3s agent", inject: w.linkDown(h3, 20*time.Second)},
		{name: "h1's link down for 20 s during istiod's wait", targets: controlPlane1,
			moment: "cluster/cluster1/istio/controlplane  | applied in", inject: w.linkDown(h1, 20*time.Second)},
		{name: "h3's SSH session killed during its k3s install", targets: agent,
			moment: "host/h3/k3s/join  | installing k3s agent", inject: w.killSSHSessions(h3, time.Second), evidence: "connection lost while running"},
	} {
		t.Run(f.name, func(t *testing.T) {
			w.destroy(t, ctx, f.targets)
			out, code, took := w.applyDuring(t, ctx, f.moment, f.inject, f.begun)
			t.Logf("apply with the fault: exit %d after %s", code, took.Round(time.Millisecond))
			if f.name == "20% packet loss both ways on h2 for the whole apply" {
				t.Logf("the same work without a fault took %s", baseline.Round(time.Millisecond))
			}
			logRetries(t, out)
			if code != 0 {
				t.Fatalf("apply did not ride through the fault: exit %d\n%s", code, out)
			}
			if f.evidence != "" && !strings.Contains(out, f.evidence) {
				t.Errorf("the apply's output shows no %q:\n%s", f.evidence, out)
			}
			w.checkConverged(t, ctx, root, out)
		})
	}

	t.Run("SIGKILL right after each step starts, each next apply resuming", func(t *testing.T) {
		w.destroyAll(t, ctx)
		killed := map[string]bool{}
		for i := 0; ; i++ {
			id, code, out := w.killAtNewStep(t, ctx, killed)
			if id == "" {
				if code != 0 {
					t.Fatalf("the apply after %d kills: exit %d\n%s", len(killed), code, out)
				}
				break
			}
			killed[id] = true
			if i > 100 {
				t.Fatal("no end of steps to kill")
			}
		}
		t.Logf("killed mcplan right after each of %d steps started", len(killed))
		if len(killed) < 20 {
			t.Errorf("only %d steps were killed: the walkthrough graph has more", len(killed))
		}
		w.checkConverged(t, ctx, "", "")
	})

	t.Run("SIGKILL at seeded random moments", func(t *testing.T) {
		for seed := 1; seed <= 3; seed++ {
			w.destroy(t, ctx, controlPlane1)
			// A moment within the apply's first 10 s, the same for a seed.
			after := time.Duration(500+rand.New(rand.NewPCG(uint64(seed), 0)).IntN(9500)) * time.Millisecond
			w.killAfter(t, ctx, after)
			w.unlock(t)
			w.mustApply(t, ctx, fmt.Sprintf("apply after the kill at %s (seed %d)", after, seed))
		}
		w.checkConverged(t, ctx, "", "")
	})

	t.Run("the state directory runs out of space during the apply", func(t *testing.T) {
		w.destroy(t, ctx, controlPlane1)
		state := filepath.Join(w.dir, ".mcplan")
		fill := w.stateOnSmallTmpfs(t, state)
		out, code, _ := w.applyDuring(t, ctx, "cluster/cluster1/istio/controlplane  creating", func(t *testing.T) func() {
			// dd stops at the full disk with an error; that is the point.
			_ = exec.Command("dd", "if=/dev/zero", "of="+fill, "bs=4k").Run()
			t.Logf("filled the state directory's file system")
			return nil
		}, nil)
		if code == 0 || !strings.Contains(out, "no space left on device") {
			t.Fatalf("apply on a full state directory: exit %d, want a failure naming the full disk\n%s", code, out)
		}
		t.Logf("the failed apply said:\n%s", lastLines(out, 6))
		if data, err := os.ReadFile(filepath.Join(state, "state.json")); err != nil || !json.Valid(data) {
			t.Fatalf("state.json after the failed apply: %v (valid JSON: %v)", err, json.Valid(data))
		}
		if err := os.Remove(fill); err != nil {
			t.Fatal(err)
		}
		w.unlock(t)
		w.mustApply(t, ctx, "apply with space again")
		w.checkConverged(t, ctx, root, "")
	})
}

// rootSum is the sha256 of the mesh's root certificate.
func (w *world) rootSum(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(w.dir, ".mcplan", "ca", "mesh1", "root-cert.pem"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// destroy destroys the targeted steps (and what depends on them).
func (w *world) destroy(t *testing.T, ctx context.Context, targets []string) {
	t.Helper()
	args := []string{"destroy", "--auto-approve"}
	for _, id := range targets {
		args = append(args, "--target", id)
	}
	if out, err := exec.CommandContext(ctx, w.mcplan, append(args, filepath.Join(w.dir, "plan.yaml"))...).CombinedOutput(); err != nil {
		t.Fatalf("destroy %v: %v\n%s", targets, err, out)
	}
}

// destroyAll destroys the whole plan but the mesh root, which it moves
// aside; it is put back, so the mesh keeps its root.
func (w *world) destroyAll(t *testing.T, ctx context.Context) {
	t.Helper()
	rootDir := filepath.Join(w.dir, ".mcplan", "ca", "mesh1")
	keep := t.TempDir()
	for _, f := range []string{"root-cert.pem", "root-key.pem"} {
		testbed.CopyFile(t, filepath.Join(rootDir, f), filepath.Join(keep, f))
	}
	w.destroy(t, ctx, nil)
	if err := os.MkdirAll(rootDir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"root-cert.pem", "root-key.pem"} {
		testbed.CopyFile(t, filepath.Join(keep, f), filepath.Join(rootDir, f))
	}
}

// applyDuring runs mcplan apply (text output) and starts inject when a
// line holds moment (at once for ""). It returns the output, the exit
// code and how long the apply took; the fault is over when it returns.
func (w *world) applyDuring(t *testing.T, ctx context.Context, moment string, inject func(*testing.T) func(), begun func(*testing.T)) (string, int, time.Duration) {
	t.Helper()
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		end func()
	)
	startFault := func() {
		wg.Go(func() {
			e := inject(t)
			mu.Lock()
			end = e
			mu.Unlock()
		})
	}
	if moment == "" {
		startFault()
		wg.Wait()
	}
	cmd := exec.CommandContext(ctx, w.mcplan, "apply", filepath.Join(w.dir, "plan.yaml"))
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := moment == ""
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if !started && strings.Contains(sc.Text(), moment) {
			started = true
			t.Logf("fault injected at %q", sc.Text())
			if begun == nil {
				startFault()
				continue
			}
			if err := cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatalf("hold the apply: %v", err)
			}
			startFault()
			holdUntil(t, cmd.Process, begun)
		}
	}
	err = cmd.Wait()
	took := time.Since(start)
	wg.Wait()
	if end != nil {
		end()
	}
	if !started {
		t.Fatalf("apply ended before %q:\n%s", moment, out.String())
	}
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code, took
}

// holdUntil waits for begun with the stopped process p, then lets p go
// on (also when begun fails the test).
func holdUntil(t *testing.T, p *os.Process, begun func(*testing.T)) {
	defer func() {
		if err := p.Signal(syscall.SIGCONT); err != nil {
			t.Errorf("let the apply go on: %v", err)
		}
	}()
	start := time.Now()
	begun(t)
	t.Logf("apply held %s, until the fault began", time.Since(start).Round(time.Millisecond))
}

// apiDown waits until h's Kubernetes API refuses connections (its k3s
// stopped), at most 30 s.
func apiDown(h testbed.Host) func(*testing.T) {
	return func(t *testing.T) {
		addr := net.JoinHostPort(h.Address, strconv.Itoa(plans.DefaultAPIPort))
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err != nil {
				return
			}
			c.Close()
		}
		t.Fatalf("%s's API at %s still answers 30 s into the fault", h.Name, addr)
	}
}

// restartK3s restarts k3s on h, as an upgrade or a config change does.
func (w *world) restartK3s(h testbed.Host) func(*testing.T) func() {
	return func(t *testing.T) func() {
		start := time.Now()
		w.ssh(h, "systemctl restart k3s")
		t.Logf("restarted k3s on %s (%s)", h.Name, time.Since(start).Round(time.Millisecond))
		return nil
	}
}

// packetLoss drops a share of the packets in and out of h's eth0
// (iptables statistic match in h's network namespace) until ended.
func (w *world) packetLoss(h testbed.Host, share float64) func(*testing.T) func() {
	chains := func(op string) [][]string {
		p := strconv.FormatFloat(share, 'f', 2, 64)
		match := []string{"-m", "statistic", "--mode", "random", "--probability", p, "-j", "DROP"}
		in := append([]string{"netns", "exec", h.Namespace, "iptables", "-w", op, "INPUT", "-i", "eth0"}, match...)
		out := append([]string{"netns", "exec", h.Namespace, "iptables", "-w", op, "OUTPUT", "-o", "eth0"}, match...)
		return [][]string{in, out}
	}
	return func(t *testing.T) func() {
		for _, args := range chains("-A") {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v %s", args, err, out)
			}
		}
		t.Logf("dropping %.0f%% of %s's packets both ways", share*100, h.Name)
		return func() {
			for _, args := range chains("-D") {
				if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
					t.Errorf("ip %v: %v %s", args, err, out)
				}
			}
		}
	}
}

// linkDown takes h's eth0 down for d, then up again.
func (w *world) linkDown(h testbed.Host, d time.Duration) func(*testing.T) func() {
	set := func(t *testing.T, state string) {
		if out, err := exec.Command("ip", "-n", h.Namespace, "link", "set", "eth0", state).CombinedOutput(); err != nil {
			t.Errorf("ip -n %s link set eth0 %s: %v %s", h.Namespace, state, err, out)
		}
	}
	return func(t *testing.T) func() {
		set(t, "down")
		time.Sleep(d)
		set(t, "up")
		t.Logf("%s's link was down for %s", h.Name, d)
		return nil
	}
}

// killSSHSessions kills, after a while (a command under way), the sshd
// processes serving connections on h (not its listener), as an sshd child
// dying does: mcplan's connection ends while its command runs.
func (w *world) killSSHSessions(h testbed.Host, after time.Duration) func(*testing.T) func() {
	return func(t *testing.T) func() {
		time.Sleep(after)
		out, err := exec.Command("ip", "netns", "pids", h.Namespace).Output()
		if err != nil {
			t.Fatalf("ip netns pids %s: %v", h.Namespace, err)
		}
		var killed []string
		for _, f := range strings.Fields(string(out)) {
			pid, _ := strconv.Atoi(f)
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			name := strings.TrimRight(strings.ReplaceAll(string(cmdline), "\x00", " "), " ")
			if strings.HasPrefix(name, "sshd: root") && !strings.Contains(name, "listener") {
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					killed = append(killed, fmt.Sprintf("%d (%s)", pid, name))
				}
			}
		}
		if len(killed) == 0 {
			t.Errorf("no sshd session on %s to kill", h.Name)
		}
		t.Logf("killed %s's sshd sessions: %s", h.Name, strings.Join(killed, ", "))
		return nil
	}
}

// logRetries logs the lines of an apply that show a retry or a redial.
func logRetries(t *testing.T, out string) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "trying again") || strings.Contains(l, "connection lost") || strings.Contains(l, "dial attempt") || strings.Contains(l, "gave up") {
			lines = append(lines, l)
		}
	}
	t.Logf("%d retries and redials in the apply's output:\n%s", len(lines), strings.Join(lines, "\n"))
}

// checkConverged checks what every fault case ends with: a second apply
// changes nothing, verify --xds passes on both networks, the root is
// root (unless ""), each pair has one remote secret and one reader token,
// and no secret is in out, the state or the inventories.
func (w *world) checkConverged(t *testing.T, ctx context.Context, root, out string) {
	t.Helper()
	if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
		t.Errorf("the apply after: exit %d, ran %v\n%s", again.code, again.ran(), again.output)
	}
	w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, map[string]string{"cluster1": "network1", "cluster2": "network2"})
	if root != "" && w.rootSum(t) != root {
		t.Error("the mesh root changed")
	}
	for c, other := range map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} {
		secrets, err := w.clientFor("context-"+c).CoreV1().Secrets(istiorender.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var remote, tokens []string
		for _, s := range secrets.Items {
			if s.Labels[istiorender.MultiClusterLabel] == "true" {
				remote = append(remote, s.Name)
			}
			if s.Annotations["kubernetes.io/service-account.name"] == istiorender.ReaderServiceAccount {
				tokens = append(tokens, s.Name)
			}
		}
		if len(remote) != 1 || remote[0] != istiorender.RemoteSecretName(other) {
			t.Errorf("%s holds remote secrets %v, want only %s", c, remote, istiorender.RemoteSecretName(other))
		}
		if len(tokens) != 1 || tokens[0] != istiorender.ReaderTokenSecretFor(other) {
			t.Errorf("%s holds reader tokens %v, want only %s", c, tokens, istiorender.ReaderTokenSecretFor(other))
		}
	}
	saved := w.savedFiles(t)
	saved["the apply's output"] = []byte(out)
	checkNoSecret(t, w.secretsOf(t, ctx, map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"}), saved)
}

// killAtNewStep runs apply -o json and SIGKILLs it right after a step
// not in killed starts; it returns that step, or "" when the apply ran to
// its end (with its exit code and output).
func (w *world) killAtNewStep(t *testing.T, ctx context.Context, killed map[string]bool) (string, int, string) {
	t.Helper()
	events, code, out := w.applyEventsUntil(t, ctx, func(ev event) bool { return ev.Type == "started" && !killed[ev.Step] })
	if code == -1 {
		return events[len(events)-1].Step, -1, ""
	}
	return "", code, out
}

// killAfter runs apply and SIGKILLs it after d (or lets it end first).
func (w *world) killAfter(t *testing.T, ctx context.Context, d time.Duration) {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, "apply", filepath.Join(w.dir, "plan.yaml"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(d, func() { cmd.Process.Signal(syscall.SIGKILL) })
	err := cmd.Wait()
	if timer.Stop() {
		t.Logf("the apply ended (%v) before its kill at %s", err, d)
	}
}

// unlock releases the lock a killed mcplan left.
func (w *world) unlock(t *testing.T) {
	t.Helper()
	if out, err := exec.Command(w.mcplan, "state", "unlock", filepath.Join(w.dir, "plan.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("state unlock: %v %s", err, out)
	}
}

// stateOnSmallTmpfs moves the state directory onto a tmpfs of 8 MiB; it
// returns the path of a filler file that fills it and whose removal frees
// the space. The tmpfs is unmounted (its content copied back) when the
// test ends.
func (w *world) stateOnSmallTmpfs(t *testing.T, state string) string {
	t.Helper()
	saved := filepath.Join(t.TempDir(), "state")
	run := func(name string, args ...string) {
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v %s", name, args, err, out)
		}
	}
	run("cp", "-a", state, saved)
	run("mount", "-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs", state)
	t.Cleanup(func() {
		tmp := filepath.Join(filepath.Dir(saved), "back")
		run("cp", "-a", state, tmp)
		run("umount", state)
		run("cp", "-a", tmp+"/.", state)
	})
	run("cp", "-a", saved+"/.", state)
	return filepath.Join(state, "filler")
}

// lastLines is the end of a command's output.
func lastLines(s string, n int) string { return testbed.LastLines(s, n) }
