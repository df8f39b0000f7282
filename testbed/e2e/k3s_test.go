package e2e

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/testbed"
)

// readyNodes lists the Ready nodes of a context of the merged kubeconfig,
// as kubectl --kubeconfig <merged> --context <ctx> get nodes would.
func (w *world) readyNodes(ctx context.Context, kubeContext string) []string {
	w.t.Helper()
	nodes, err := w.clientFor(kubeContext).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		w.t.Fatalf("context %s: list nodes: %v", kubeContext, err)
	}
	var ready []string
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = append(ready, n.Name)
			}
		}
	}
	slices.Sort(ready)
	return ready
}

// TestK3sClustersOnTestHosts is issue 5's end-to-end run: three systemd
// hosts, cluster1 = server h1, cluster2 = server h2 + agent h3, installed
// by mcplan apply through the airgap path.
func TestK3sClustersOnTestHosts(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w.writePlan(planOptions{})

	r := w.mustApply(t, ctx, "first apply")
	if got := w.readyNodes(ctx, "context-cluster1"); !slices.Equal(got, []string{"h1"}) {
		t.Errorf("cluster1 Ready nodes %v, want [h1]", got)
	}
	if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("cluster2 Ready nodes %v, want [h2 h3]", got)
	}
	if fi, err := os.Stat(filepath.Join(w.dir, "kubeconfig")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("merged kubeconfig: %v, mode %v", err, fi.Mode().Perm())
	}
	state, _ := os.ReadFile(filepath.Join(w.dir, ".mcplan", "state.json"))
	token := strings.TrimSpace(w.ssh(w.bed.Hosts[1], "cat /var/lib/rancher/k3s/server/token"))
	if token == "" || strings.Contains(string(state), token) || strings.Contains(r.output, token) {
		t.Error("the cluster token is in the state or the output")
	}
	// The agent joined (Ready above) with the agent token alone: its
	// config.yaml holds no part of the server token.
	_, serverSecret, _ := strings.Cut(token, "::server:")
	agentConfig := w.ssh(w.bed.Hosts[2], "cat /etc/rancher/k3s/config.yaml")
	agentToken, err := os.ReadFile(filepath.Join(w.dir, ".mcplan", "k3s", "cluster2", "agent-token"))
	switch {
	case err != nil:
		t.Errorf("agent token: %v", err)
	case serverSecret == "" || strings.Contains(agentConfig, serverSecret):
		t.Errorf("h3's config.yaml holds the server token (or the token %q has no server secret)", token)
	case !strings.Contains(agentConfig, "token: "+strings.TrimSpace(string(agentToken))):
		t.Errorf("h3's config.yaml does not join with the agent token:\n%s", agentConfig)
	case strings.Contains(string(state), strings.TrimSpace(string(agentToken))) || strings.Contains(r.output, strings.TrimSpace(string(agentToken))):
		t.Error("the agent token is in the state or the output")
	}
	if fi, err := os.Stat(filepath.Join(w.dir, ".mcplan", "k3s", "cluster2", "agent-token")); err == nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("agent token file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(w.ssh(w.bed.Hosts[1], "cat /etc/rancher/k3s/config.yaml"), "agent-token: ") {
		t.Error("h2's config.yaml has no agent-token")
	}

	t.Run("second apply mutates nothing", func(t *testing.T) {
		before, snaps, marks := w.commandLogs(), w.hostSnapshots(), w.sshLogMarks()
		r := w.mustApply(t, ctx, "second apply")
		// Evidence from the hosts, not from mcplan's report: every
		// command that reached them was a read, and nothing changed.
		checkReadOnly(t, "second apply", w.sshCommandsSince(marks), []string{"h1", "h2", "h3"})
		checkSnapshotsEqual(t, "second apply", snaps, w.hostSnapshots())
		if ran := r.ran(); len(ran) != 0 {
			t.Errorf("second apply ran %v", ran)
			for _, id := range ran {
				t.Logf("%s: %s %s", id, r.actions[id], r.reasons[id])
			}
		}
		for id, o := range r.outcomes {
			if o != "unchanged" {
				t.Errorf("%s: %s, want unchanged", id, o)
			}
		}
		if after := w.commandLogs(); !maps.Equal(before, after) {
			t.Errorf("a host's command log changed:\nbefore %v\nafter %v", before, after)
		}
	})

	t.Run("plan reads the hosts and changes nothing", func(t *testing.T) {
		w.ssh(w.bed.Hosts[0], "systemctl stop k3s")
		before, snaps, marks := w.commandLogs(), w.hostSnapshots(), w.sshLogMarks()
		cmd := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml"))
		out, err := cmd.CombinedOutput()
		checkReadOnly(t, "plan", w.sshCommandsSince(marks), []string{"h1", "h2", "h3"})
		checkSnapshotsEqual(t, "plan", snaps, w.hostSnapshots())
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
			t.Fatalf("plan: %v, want exit 2 (changes)\n%s", err, out)
		}
		if !strings.Contains(string(out), "~ host/h1/k3s/server") || !strings.Contains(string(out), "service k3s is inactive") {
			t.Errorf("plan does not show h1's stopped k3s:\n%s", out)
		}
		if after := w.commandLogs(); !maps.Equal(before, after) {
			t.Errorf("plan changed a host")
		}
		t.Logf("plan:\n%s", out)
		r := w.apply(ctx)
		if r.code != 0 || r.outcomes["host/h1/k3s/server"] != "succeeded" {
			t.Fatalf("apply after drift: exit %d, h1 %s\n%s", r.code, r.outcomes["host/h1/k3s/server"], r.output)
		}
		if got := strings.TrimSpace(w.ssh(w.bed.Hosts[0], "systemctl is-active k3s")); got != "active" {
			t.Errorf("k3s on h1 is %s after apply", got)
		}
	})

	// A re-apply checks k3s's binary by its stamp (size, change time,
	// inode) against the one the last apply recorded, reading its sum and
	// version only when that moved: a hand-edited config.yaml, a binary
	// written again with the same content and one with other content must
	// still be told apart.
	t.Run("drift of k3s files is found by stamp and sum", func(t *testing.T) {
		h1 := w.bed.Hosts[0]
		for _, tc := range []struct {
			name, breakIt, reason string // reason "": no drift
		}{
			{"config.yaml edited by hand", "echo 'node-label: [edited=by-hand]' >> /etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/config.yaml differs from the plan"},
			{"config.yaml written after k3s started (an apply cut off before its restart)", "sleep 1.1 && touch /etc/rancher/k3s/config.yaml", "/etc/rancher/k3s/config.yaml was written after service k3s started"},
			{"binary written again, same content", "cp /usr/local/bin/k3s /usr/local/bin/k3s.copy && mv -f /usr/local/bin/k3s.copy /usr/local/bin/k3s", ""},
			{"binary with other content", "printf x >> /usr/local/bin/k3s", "k3s binary differs from airgap.binary"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w.ssh(h1, tc.breakIt)
				r := w.apply(ctx)
				if r.code != 0 {
					t.Fatalf("apply: exit %d\n%s", r.code, r.output)
				}
				const step = "host/h1/k3s/server"
				switch {
				case tc.reason == "" && r.outcomes[step] != "unchanged":
					t.Errorf("%s: %s (%s), want unchanged", step, r.outcomes[step], r.reasons[step])
				case tc.reason != "" && (r.outcomes[step] != "succeeded" || !strings.Contains(r.reasons[step], tc.reason)):
					t.Errorf("%s: %s for %q, want a repair for %q", step, r.outcomes[step], r.reasons[step], tc.reason)
				}
				if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
					t.Errorf("the apply after: exit %d, ran %v", again.code, again.ran())
				}
			})
		}
	})

	t.Run("changed k3s arg reruns only that cluster", func(t *testing.T) {
		w.writePlan(planOptions{cluster2Args: []string{"--node-label=tier=edge"}})
		before := w.serviceInvocations()
		r := w.apply(ctx)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.output)
		}
		// The hosts say which k3s restarted: cluster2's server, whose
		// config.yaml changed; not cluster1's, and not h3's agent: its step
		// ran (the cluster's settings are among its inputs) but found its
		// config.yaml as it should be.
		after := w.serviceInvocations()
		for host, restarted := range map[string]bool{"h1": false, "h2": true, "h3": false} {
			if changed := before[host] != after[host]; changed != restarted {
				t.Errorf("%s: k3s invocation %s -> %s, want restarted=%v", host, before[host], after[host], restarted)
			}
		}
		want := []string{"cluster/cluster2/kubeconfig/fetch", "host/h2/k3s/server", "host/h3/k3s/join", "kubeconfig/merge"}
		if got := r.ran(); !slices.Equal(got, want) {
			t.Errorf("ran %v, want %v", got, want)
		}
		if !strings.Contains(w.ssh(w.bed.Hosts[1], "cat /etc/rancher/k3s/config.yaml"), "node-label: tier=edge") {
			t.Error("config.yaml of h2 lacks the new arg")
		}
	})

	t.Run("destroy leaves bare hosts, then apply builds it again", func(t *testing.T) {
		plan := filepath.Join(w.dir, "plan.yaml")
		// Off a terminal, without --auto-approve: refused, nothing changes.
		snaps, marks := w.hostSnapshots(), w.sshLogMarks()
		out, err := exec.CommandContext(ctx, w.mcplan, "destroy", plan).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 || !strings.Contains(string(out), "--auto-approve") {
			t.Fatalf("destroy without --auto-approve: %v\n%s", err, out)
		}
		if cmds := w.sshCommandsSince(marks); len(cmds) != 0 {
			t.Errorf("a refused destroy reached the hosts: %v", cmds)
		}
		checkSnapshotsEqual(t, "a refused destroy", snaps, w.hostSnapshots())
		// An entry of the user's own in the merged kubeconfig stays.
		merged := filepath.Join(w.dir, "kubeconfig")
		w.addUserContext(t, merged)
		w.checkGoldenPlan(t, ctx, "destroy-k3s", "--destroy")
		out, err = exec.CommandContext(ctx, w.mcplan, "plan", "--destroy", "--detailed-exitcode", plan).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "- host/h3/k3s/join") ||
			!strings.Contains(string(out), "drains and deletes node h3") {
			t.Fatalf("plan --destroy: %v\n%s", err, out)
		}
		marks = w.sshLogMarks()
		// SIGKILL twice, during the agent's removal and during a server's
		// uninstall: each next destroy resumes.
		for _, moment := range []string{"host/h3/k3s/join  removing", "host/h1/k3s/server  removing"} {
			w.killDuring(t, ctx, moment, "destroy", "--auto-approve", plan)
			if out, err := exec.Command(w.mcplan, "state", "unlock", plan).CombinedOutput(); err != nil {
				t.Fatalf("unlock: %v %s", err, out)
			}
		}
		start := time.Now()
		out, err = exec.CommandContext(ctx, w.mcplan, "destroy", "--auto-approve", plan).CombinedOutput()
		if err != nil {
			t.Fatalf("destroy: %v\n%s", err, out)
		}
		t.Logf("the last destroy took %s:\n%s", time.Since(start).Round(time.Millisecond), out)
		cmds := w.sshCommandsSince(marks)
		for _, h := range w.bed.Hosts {
			script := "/usr/local/bin/k3s-uninstall.sh"
			if h.Name == "h3" {
				script = "/usr/local/bin/k3s-agent-uninstall.sh"
			}
			if !slices.ContainsFunc(cmds[h.Name], func(c string) bool { return strings.Contains(c, script) }) {
				t.Errorf("%s: the host's log shows no run of %s", h.Name, script)
			}
			if left := w.ssh(h, "for p in /usr/local/bin/k3s /etc/systemd/system/k3s.service /etc/systemd/system/k3s-agent.service /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet; do [ -e $p ] && echo $p; done; true"); strings.TrimSpace(left) != "" {
				t.Errorf("%s is not bare after destroy: %s", h.Name, left)
			}
			for _, state := range strings.Fields(w.ssh(h, "systemctl is-active k3s k3s-agent 2>/dev/null; true")) {
				if state == "active" {
					t.Errorf("%s: a k3s service is still active after destroy", h.Name)
				}
			}
		}
		cfg, err := clientcmd.LoadFromFile(merged)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cfg.Contexts["user-own"]; !ok {
			t.Error("destroy removed the user's own context from the merged kubeconfig")
		}
		for _, c := range []string{"context-cluster1", "context-cluster2"} {
			if _, ok := cfg.Contexts[c]; ok {
				t.Errorf("merged kubeconfig still has %s", c)
			}
		}
		store, err := engine.OpenStore(filepath.Join(w.dir, ".mcplan"))
		if err != nil {
			t.Fatal(err)
		}
		if ids := store.IDs(); len(ids) != 0 {
			t.Errorf("state holds %v after destroy", ids)
		}
		// From bare hosts, apply builds it all again.
		w.mustApply(t, ctx, "apply after destroy")
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
			t.Errorf("cluster2 Ready nodes after destroy and apply: %v", got)
		}
	})

	t.Run("an agent leaving its cluster and the plan is drained, deleted and uninstalled", func(t *testing.T) {
		// h3 leaves the plan altogether: its removal reaches it as its
		// host/facts record says.
		w.writePlan(planOptions{noAgent: true, noHost3: true})
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "- host/h3/k3s/join") ||
			!strings.Contains(string(out), "drains and deletes node h3") {
			t.Fatalf("plan: %v, want exit 2 and h3's removal\n%s", err, out)
		}
		marks := w.sshLogMarks()
		w.mustApply(t, ctx, "apply without the agent")
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2"}) {
			t.Errorf("cluster2 Ready nodes %v, want [h2]", got)
		}
		if _, err := w.clientFor("context-cluster2").CoreV1().Nodes().Get(ctx, "h3", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Node h3 is still in cluster2 (%v)", err)
		}
		if !slices.ContainsFunc(w.sshCommandsSince(marks)["h3"], func(c string) bool { return strings.Contains(c, "/usr/local/bin/k3s-agent-uninstall.sh") }) {
			t.Error("h3's log shows no run of k3s-agent-uninstall.sh")
		}
		if left := w.ssh(w.bed.Hosts[2], "for p in /usr/local/bin/k3s /etc/systemd/system/k3s-agent.service /etc/rancher/k3s /var/lib/rancher/k3s; do [ -e $p ] && echo $p; done; true"); strings.TrimSpace(left) != "" {
			t.Errorf("h3 is not bare: %s", left)
		}
		w.writePlan(planOptions{})
		w.mustApply(t, ctx, "the agent back")
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
			t.Errorf("cluster2 Ready nodes after h3 came back: %v", got)
		}
	})

	t.Run("a joined server leaving its cluster is drained, deleted and uninstalled", func(t *testing.T) {
		w.writePlan(planOptions{noAgent: true, h3Server: true})
		w.mustApply(t, ctx, "h3 as cluster2's second server")
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
			t.Fatalf("cluster2 Ready nodes %v, want [h2 h3]", got)
		}
		w.writePlan(planOptions{noAgent: true})
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 || !strings.Contains(string(out), "- host/h3/k3s/server") ||
			!strings.Contains(string(out), "drains and deletes node h3, then runs /usr/local/bin/k3s-uninstall.sh") {
			t.Fatalf("plan: %v, want exit 2 and h3's removal\n%s", err, out)
		}
		marks := w.sshLogMarks()
		w.mustApply(t, ctx, "apply without h3 as a server")
		if _, err := w.clientFor("context-cluster2").CoreV1().Nodes().Get(ctx, "h3", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Node h3 is still in cluster2 (%v)", err)
		}
		if !slices.ContainsFunc(w.sshCommandsSince(marks)["h3"], func(c string) bool { return strings.Contains(c, "/usr/local/bin/k3s-uninstall.sh") }) {
			t.Error("h3's log shows no run of k3s-uninstall.sh")
		}
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2"}) {
			t.Errorf("cluster2 Ready nodes %v, want [h2]", got)
		}
		w.writePlan(planOptions{})
		w.mustApply(t, ctx, "h3 back as the agent")
	})

	t.Run("changed host key and sshd down are both reported", func(t *testing.T) {
		// The plan's known_hosts holds another key for h1 than h1 has (as
		// after a reinstall, or a man in the middle); h3's sshd is stopped.
		w.replaceKnownKey(w.bed.Hosts[0])
		w.ssh(w.bed.Hosts[2], "systemctl stop ssh.socket ssh.service 2>/dev/null; systemctl stop ssh; true")
		w.writePlan(planOptions{cluster1Args: []string{"--node-label=tier=core"}, cluster2Args: []string{"--node-label=tier=edge2"}})
		r := w.apply(ctx)
		if r.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", r.code, r.output)
		}
		if !strings.Contains(r.errors["host/h1/facts"], "HOST KEY MISMATCH") {
			t.Errorf("h1: %q", r.errors["host/h1/facts"])
		}
		if e := r.errors["host/h3/facts"]; !strings.Contains(e, "host h3 (") || !strings.Contains(e, "no connection after") {
			t.Errorf("h3: %q", e)
		}
		if r.outcomes["host/h2/k3s/server"] != "succeeded" {
			t.Errorf("h2's server step: %s (the reachable host must still be updated)", r.outcomes["host/h2/k3s/server"])
		}
		for _, id := range []string{"host/h1/k3s/server", "host/h3/k3s/join", "cluster/cluster1/kubeconfig/fetch"} {
			if r.outcomes[id] != "blocked" {
				t.Errorf("%s: %s, want blocked", id, r.outcomes[id])
			}
		}
	})
}

// TestSIGKILLDuringInstallResumes kills mcplan while k3s installs, then
// applies again: everything completes, nothing is uploaded twice.
func TestSIGKILLDuringInstallResumes(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w.writePlan(planOptions{})
	cmd := exec.CommandContext(ctx, w.mcplan, "apply", filepath.Join(w.dir, "plan.yaml"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The plain output's lines are "<time>  <step>  | <log line>".
	installing := ""
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); strings.Contains(sc.Text(), "installing k3s") && len(fields) > 1 {
			cmd.Process.Signal(syscall.SIGKILL)
			installing = fields[1]
			break
		}
	}
	cmd.Wait()
	if installing == "" {
		t.Fatal("never saw an install start")
	}
	t.Logf("killed mcplan while %s ran the install script", installing)
	if out, err := exec.Command(w.mcplan, "state", "unlock", filepath.Join(w.dir, "plan.yaml")).CombinedOutput(); err != nil {
		t.Fatalf("unlock: %v %s", err, out)
	}
	marks := w.sshLogMarks()
	r := w.apply(ctx)
	if r.code != 0 {
		t.Fatalf("apply after SIGKILL: exit %d\n%s", r.code, r.output)
	}
	for _, line := range strings.Split(r.output, "\n") {
		if strings.Contains(line, `"step":"`+installing+`"`) && strings.Contains(line, "uploaded "+w.k3s) {
			t.Errorf("%s got the k3s binary again after the kill, though it had it: %s", installing, line)
		}
	}
	// The host's own log agrees: no upload of the binary reached it.
	host := strings.Split(installing, "/")[1]
	for _, c := range w.sshCommandsSince(marks)[host] {
		if strings.Contains(c, "/usr/local/bin/k3s.mcplan-upload") {
			t.Errorf("%s got the k3s binary again after the kill:\n%s", host, indent(c))
		}
	}
	if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Errorf("cluster2 Ready nodes %v", got)
	}
	r = w.apply(ctx)
	if ran := r.ran(); r.code != 0 || len(ran) != 0 {
		t.Errorf("apply after resume: exit %d, ran %v", r.code, ran)
	}
}

// replaceKnownKey puts a freshly made key for h in the plan's known_hosts.
func (w *world) replaceKnownKey(h testbed.Host) {
	w.t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		w.t.Fatal(err)
	}
	key, err := ssh.NewPublicKey(pub)
	if err != nil {
		w.t.Fatal(err)
	}
	data, err := os.ReadFile(w.knownHosts)
	if err != nil {
		w.t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if strings.HasPrefix(line, h.Address+" ") {
			line = h.Address + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
		}
		lines = append(lines, line)
	}
	if err := os.WriteFile(w.knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		w.t.Fatal(err)
	}
}
