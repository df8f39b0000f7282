package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// spans are each step's [started, finished] within one apply.
func spans(events []event) map[string][2]time.Time {
	s := map[string][2]time.Time{}
	for _, ev := range events {
		switch ev.Type {
		case "started":
			s[ev.Step] = [2]time.Time{ev.Time}
		case "succeeded", "failed":
			if sp, ok := s[ev.Step]; ok {
				sp[1] = ev.Time
				s[ev.Step] = sp
			}
		}
	}
	return s
}

// sampler watches a workload and the API while an upgrade runs: every
// 250 ms it asks each server's own API in turn for the Deployment until
// one answers, and keeps the fewest ready replicas seen and the samples no
// server answered.
type sampler struct {
	mu          sync.Mutex
	minReady    int32
	samples     int
	unanswered  int
	stop, ended chan struct{}
}

func (w *world) sample(t *testing.T, servers []string, ns, name string) *sampler {
	s := &sampler{minReady: 1 << 30, stop: make(chan struct{}), ended: make(chan struct{})}
	base := w.restFor("context-cluster1")
	var clients []*kubernetes.Clientset
	for _, addr := range servers {
		cfg := rest.CopyConfig(base)
		cfg.Host = "https://" + addr + ":6443"
		cfg.Timeout = 2 * time.Second
		clients = append(clients, kubernetes.NewForConfigOrDie(cfg))
	}
	go func() {
		defer close(s.ended)
		for {
			select {
			case <-s.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			answered := false
			for _, c := range clients {
				d, err := c.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					continue
				}
				answered = true
				s.mu.Lock()
				s.minReady = min(s.minReady, d.Status.ReadyReplicas)
				s.mu.Unlock()
				break
			}
			s.mu.Lock()
			s.samples++
			if !answered {
				s.unanswered++
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *sampler) end() (minReady int32, samples, unanswered int) {
	close(s.stop)
	<-s.ended
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.minReady, s.samples, s.unanswered
}

// TestK3sUpgradeRolls upgrades a cluster of three servers and an agent
// from the stand-in's version A to B with a workload under a
// PodDisruptionBudget: an etcd snapshot first, the servers one at a time,
// then the agent, each drained, upgraded, checked and uncordoned. The
// first attempt's beforeUpgrade hook fails and stops the cluster's
// upgrade at its first node; the next is SIGKILLed after the second
// server started; the one after completes. Throughout, the workload keeps
// a ready replica and some server's API answers.
func TestK3sUpgradeRolls(t *testing.T) {
	w := newWorld(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	const versionA, versionB = "v1.37.2+k3s1", "v1.38.0+k3s1"
	binaryB, _ := standinAt(t, "v1.38.0")
	cluster := func(version, binary, hook string) string {
		return fmt.Sprintf(`  - name: cluster1
    servers: [h1, h2, h3]
    agents: [h4]
    k3s:
      version: %s
      airgap: {binary: %q, installScript: %q}
      hooks: {beforeUpgrade: [%q]}
`, version, binary, w.installScript(), hook)
	}
	w.writeClusters(cluster(versionA, w.k3s, "true"))
	w.mustApply(t, ctx, "three servers and an agent at "+versionA)
	c1 := w.clientFor("context-cluster1")
	for _, n := range w.nodes(t, ctx) {
		if n.Status.NodeInfo.KubeletVersion != versionA {
			t.Fatalf("node %s runs %s, want %s", n.Name, n.Status.NodeInfo.KubeletVersion, versionA)
		}
	}
	// HA: with one server's k3s stopped, the API answers through the
	// others and a write succeeds.
	w.ssh(w.bed.Hosts[1], "systemctl stop k3s")
	if _, err := c1.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "written-while-h2-is-down"}},
		metav1.CreateOptions{}); err != nil {
		t.Errorf("a write with h2's k3s stopped: %v", err)
	}
	if got := w.readyNodes(ctx, "context-cluster1"); len(got) == 0 {
		t.Error("no API answer with h2's k3s stopped")
	}
	w.ssh(w.bed.Hosts[1], "systemctl start k3s")
	w.waitNodesReady(t, ctx, 4)

	// The workload: two replicas that may lose at most one.
	labels := map[string]string{"app": "web"}
	two := int32(2)
	if _, err := c1.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	one := intstr.FromInt32(1)
	if _, err := c1.PolicyV1().PodDisruptionBudgets("default").Create(ctx, &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       policyv1.PodDisruptionBudgetSpec{MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: labels}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.waitReadyReplicas(t, ctx, "default", "web", 2)

	var servers []string
	for _, h := range w.bed.Hosts[:3] {
		servers = append(servers, h.Address)
	}
	watch := w.sample(t, servers, "default", "web")
	start := time.Now()

	w.writeClusters(cluster(versionB, binaryB, "test -e /run/allow-upgrade"))
	// 0. A node that is not Ready (a Node whose kubelet never came: no
	// Ready condition, then Unknown) stops
	// the upgrade in plan, unless --force.
	if _, err := c1.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "ghost"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput(); err == nil ||
		!strings.Contains(string(out), "upgrade refused: node ghost of cluster cluster1 is not Ready") {
		t.Errorf("plan with a NotReady node: %v, want the refusal\n%s", err, out)
	}
	if out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--force", filepath.Join(w.dir, "plan.yaml")).CombinedOutput(); err != nil {
		t.Errorf("plan --force with a NotReady node: %v\n%s", err, out)
	}
	if err := c1.CoreV1().Nodes().Delete(ctx, "ghost", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	// 1. The hook fails on the first server: the cluster's upgrade stops
	// there, the snapshot is taken.
	if out, err := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "server 2 of 3, after host/h1/k3s/server; drained first") || !strings.Contains(string(out), "+ cluster/cluster1/k3s/snapshot") {
		t.Errorf("plan of the upgrade: %v\n%s", err, out)
	} else {
		t.Logf("plan:\n%s", out)
	}
	events, code, out := w.applyEvents(t, ctx, "")
	if code != 1 || !strings.Contains(out, "hooks.beforeUpgrade[0] failed on h1, so its upgrade stops here") {
		t.Fatalf("apply with a failing hook: exit %d, want 1 naming the hook\n%s", code, out)
	}
	runs := [][]event{events}
	if sp := spans(events); sp["host/h2/k3s/server"][0] != (time.Time{}) {
		t.Errorf("h2's upgrade started although h1's failed")
	}

	// 2. Hook passing; SIGKILL once the second server's upgrade started.
	for _, h := range w.bed.Hosts {
		w.ssh(h, "touch /run/allow-upgrade")
	}
	events, _, _ = w.applyEvents(t, ctx, "host/h2/k3s/server")
	runs = append(runs, events)

	// 3. The apply after the kill completes.
	events, code, out = w.applyEvents(t, ctx, "")
	if code != 0 {
		t.Fatalf("the apply after the kill: exit %d\n%s", code, out)
	}
	runs = append(runs, events)
	took := time.Since(start)
	minReady, samples, unanswered := watch.end()
	t.Logf("upgrade of 4 nodes (3 applies, one failed by its hook, one killed) took %s; %d samples, fewest ready replicas %d, %d unanswered",
		took.Round(time.Millisecond), samples, minReady, unanswered)
	for i, run := range runs {
		sp := spans(run)
		for _, id := range []string{"host/h1/k3s/server", "host/h2/k3s/server", "host/h3/k3s/server", "host/h4/k3s/join"} {
			if s, ok := sp[id]; ok && !s[1].IsZero() {
				t.Logf("apply %d: %s ran %s", i+1, id, s[1].Sub(s[0]).Round(time.Millisecond))
			}
		}
	}

	if minReady < 1 {
		t.Errorf("the workload had %d ready replicas during the upgrade: its PodDisruptionBudget (minAvailable 1) was violated", minReady)
	}
	if unanswered > 0 {
		t.Errorf("%d of %d samples found no server's API answering", unanswered, samples)
	}
	// No two servers' upgrade steps overlap, in any apply; the snapshot
	// came before the first server's.
	for i, run := range runs {
		sp := spans(run)
		ids := []string{"host/h1/k3s/server", "host/h2/k3s/server", "host/h3/k3s/server"}
		for a := range ids {
			for b := a + 1; b < len(ids); b++ {
				x, y := sp[ids[a]], sp[ids[b]]
				if x[0].IsZero() || y[0].IsZero() {
					continue
				}
				if x[1].IsZero() || y[1].IsZero() {
					continue // killed: its end is not known
				}
				if x[0].Before(y[1]) && y[0].Before(x[1]) {
					t.Errorf("apply %d: %s and %s overlap (%v, %v)", i+1, ids[a], ids[b], x, y)
				}
			}
		}
		if snap, first := sp["cluster/cluster1/k3s/snapshot"], sp["host/h1/k3s/server"]; !snap[0].IsZero() && !first[0].IsZero() && first[0].Before(snap[1]) {
			t.Errorf("apply %d: h1's upgrade started before the snapshot was taken", i+1)
		}
	}
	if sp := spans(runs[2]); !sp["cluster/cluster1/k3s/snapshot"][0].IsZero() {
		t.Error("the snapshot was taken again after the kill")
	}
	taken := 0
	list := w.ssh(w.bed.Hosts[0], "k3s etcd-snapshot ls")
	for _, line := range strings.Split(list, "\n") {
		if strings.HasPrefix(line, "mcplan-pre-upgrade-") {
			taken++
		}
	}
	if taken != 1 {
		t.Errorf("%d mcplan snapshots on h1, want one:\n%s", taken, list)
	}
	for _, n := range w.nodes(t, ctx) {
		if n.Status.NodeInfo.KubeletVersion != versionB || n.Spec.Unschedulable || n.Annotations["mcplan.io/cordoned-for-upgrade"] != "" {
			t.Errorf("node %s: %s, unschedulable %v, annotations %v; want %s, schedulable", n.Name, n.Status.NodeInfo.KubeletVersion, n.Spec.Unschedulable, n.Annotations, versionB)
		}
	}
	if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
		t.Errorf("the apply after: exit %d, ran %v", again.code, again.ran())
	}

	t.Run("a downgrade is refused in plan", func(t *testing.T) {
		w.writeClusters(cluster(versionA, w.k3s, "true"))
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--offline", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "clusters[0].k3s.version: v1.37.2+k3s1 is older than the installed v1.38.0+k3s1: k3s does not support downgrades") {
			t.Errorf("plan of a downgrade: %v\n%s", err, out)
		}
	})
}

// nodes lists cluster1's nodes.
func (w *world) nodes(t *testing.T, ctx context.Context) []corev1.Node {
	t.Helper()
	list, err := w.clientFor("context-cluster1").CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// waitReadyReplicas waits until a Deployment has n ready replicas.
func (w *world) waitReadyReplicas(t *testing.T, ctx context.Context, ns, name string, n int32) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		d, err := w.clientFor("context-cluster1").AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err == nil && d.Status.ReadyReplicas >= n {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("deployment %s/%s never had %d ready replicas", ns, name, n)
}

// waitNodesReady waits until cluster1 has n Ready nodes.
func (w *world) waitNodesReady(t *testing.T, ctx context.Context, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if len(w.readyNodes(ctx, "context-cluster1")) == n {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("cluster1 never had %d Ready nodes", n)
}
