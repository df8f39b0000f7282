package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/testbed"
)

// writeClusters writes plan.yaml over every host of the bed with the
// given clusters: section (and no mesh).
func (w *world) writeClusters(clusters string) {
	w.t.Helper()
	var hosts strings.Builder
	for _, h := range w.bed.Hosts {
		fmt.Fprintf(&hosts, "  - {name: %s, address: %s}\n", h.Name, h.Address)
	}
	plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: e2e}
ssh: {user: root, identityFile: %q, knownHosts: %q, connectTimeout: 3s}
hosts:
%sclusters:
%skubeconfig: {path: ./kubeconfig}
`, w.bed.ClientKeyPath, w.knownHosts, hosts.String(), clusters)
	if err := os.WriteFile(filepath.Join(w.dir, "plan.yaml"), []byte(plan), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// etcdMembers lists the etcd members a server's k3s reports (its
// supervisor's /db/info, which joining servers read, with the server
// token), by name.
func (w *world) etcdMembers(t *testing.T, h testbed.Host) []string {
	t.Helper()
	out := w.ssh(h, `t=$(cat /var/lib/rancher/k3s/server/token) && curl -sfk -u "server:${t##*:}" https://127.0.0.1:6443/db/info`)
	var info struct {
		Members []struct{ Name string } `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatalf("%s: /db/info: %v: %q", h.Name, err, out)
	}
	var names []string
	for _, m := range info.Members {
		names = append(names, m.Name)
	}
	slices.Sort(names)
	return names
}

// memberNodes are the node names of etcd member names (<node>-<8 hex>).
func memberNodes(members []string) []string {
	var nodes []string
	for _, m := range members {
		if i := strings.LastIndexByte(m, '-'); i > 0 {
			nodes = append(nodes, m[:i])
		}
	}
	return nodes
}

// TestFirstServerHandover: a cluster of two servers (embedded etcd) hands
// over to its joined server: the plan names h3 alone, h2 (the first
// server, which initialised the cluster) leaves it. Plan shows h2's
// removal; apply drains and deletes h2's Node (its etcd member goes with
// it), uninstalls k3s from h2 and reconfigures h3 as the first server; the
// cluster answers through h3 with its data. Naming a host that has not
// joined as the first server is refused.
func TestFirstServerHandover(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	h2, h3 := w.bed.Hosts[1], w.bed.Hosts[2]
	cluster := func(servers string) string {
		return fmt.Sprintf(`  - name: cluster2
    servers: %s
    k3s:
      channel: stable
      args: ["--cluster-cidr=10.52.0.0/16", "--service-cidr=10.53.0.0/16"]
      airgap: {binary: %q, installScript: %q}
`, servers, w.k3s, w.installScript())
	}
	w.writeClusters(cluster("[h2, h3]"))
	w.mustApply(t, ctx, "cluster2 on h2 and h3")
	if got := memberNodes(w.etcdMembers(t, h2)); !slices.Equal(got, []string{"h2", "h3"}) {
		t.Fatalf("etcd members %v, want h2 and h3", got)
	}
	// Data the cluster must keep through the handover.
	if _, err := w.clientFor("context-cluster2").CoreV1().Namespaces().Create(ctx, nsNamed("kept"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("a host that never joined may not become the first server", func(t *testing.T) {
		w.writeClusters(cluster("[h1, h2, h3]"))
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		want := "clusters[cluster2].servers[0] is h1, but h2 is the server that initialised the cluster and h1 has not joined it as a server"
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("plan: %v, want the refusal %q\n%s", err, want, out)
		}
	})

	t.Run("h2 leaves, h3 carries the cluster on", func(t *testing.T) {
		w.writeClusters(cluster("[h3]"))
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 ||
			!strings.Contains(string(out), "- host/h2/k3s/server") || !strings.Contains(string(out), "drains and deletes node h2, then runs /usr/local/bin/k3s-uninstall.sh on it") ||
			!strings.Contains(string(out), "~ host/h3/k3s/server") {
			t.Fatalf("plan: %v, want exit 2, h2's removal and h3 updated\n%s", err, out)
		}
		t.Logf("plan:\n%s", out)
		marks := w.sshLogMarks()
		start := time.Now()
		w.mustApply(t, ctx, "apply without h2")
		t.Logf("the handover took %s", time.Since(start).Round(time.Millisecond))
		c2 := w.clientFor("context-cluster2")
		if _, err := c2.CoreV1().Nodes().Get(ctx, "h2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("Node h2 is still in cluster2 (%v)", err)
		}
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h3"}) {
			t.Errorf("cluster2 Ready nodes %v, want [h3]", got)
		}
		if _, err := c2.CoreV1().Namespaces().Get(ctx, "kept", metav1.GetOptions{}); err != nil {
			t.Errorf("the cluster's data did not survive the handover: %v", err)
		}
		if got := memberNodes(w.etcdMembers(t, h3)); !slices.Equal(got, []string{"h3"}) {
			t.Errorf("etcd members after the handover: %v, want h3 alone", got)
		}
		if !slices.ContainsFunc(w.sshCommandsSince(marks)["h2"], func(c string) bool { return strings.Contains(c, "/usr/local/bin/k3s-uninstall.sh") }) {
			t.Error("h2's log shows no run of k3s-uninstall.sh")
		}
		if left := w.ssh(h2, "for p in /usr/local/bin/k3s /etc/systemd/system/k3s.service /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet; do [ -e $p ] && echo $p; done; true"); strings.TrimSpace(left) != "" {
			t.Errorf("h2 is not bare: %s", left)
		}
		if cfg := w.ssh(h3, "cat /etc/rancher/k3s/config.yaml"); strings.Contains(cfg, "server:") {
			t.Errorf("h3, now the first server, still joins another:\n%s", cfg)
		}
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("the apply after: exit %d, ran %v", again.code, again.ran())
		}
	})
}

func nsNamed(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}
