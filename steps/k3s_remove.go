package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/remote"
)

// k3sDrainTimeout bounds the drain of a node that leaves its cluster.
const k3sDrainTimeout = 5 * time.Minute

// k3sLeftovers are the paths upstream's uninstall scripts remove: after an
// uninstall none may be left.
func k3sLeftovers() []string {
	return []string{k3sBinaryPath, "/etc/systemd/system/k3s.service", "/etc/systemd/system/k3s-agent.service",
		"/etc/rancher/k3s", "/var/lib/rancher/k3s", "/var/lib/kubelet"}
}

// k3sNetworkLeftovers lists what k3s's CNI (flannel) and kube-proxy make on
// a host and upstream's uninstall deletes: the links, and the pods'
// network namespaces. It prints nothing on a clean host.
const k3sNetworkLeftovers = `ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(cni0|flannel[.]1|flannel-v6[.]1|flannel-wg|flannel-wg-v6|kube-ipvs0)$'; ` +
	`ip netns list 2>/dev/null | awk '{print $1}' | grep '^cni-'; true`

// uninstallScript is the script the install wrote for this role.
func (s *K3sNode) uninstallScript() string {
	if s.agent {
		return "/usr/local/bin/k3s-agent-uninstall.sh"
	}
	return "/usr/local/bin/k3s-uninstall.sh"
}

// drains says whether the removal drains the node and deletes it first:
// an agent of a cluster that stays in the plan (or is destroyed with it),
// and a joined server leaving a cluster that stays.
func (s *K3sNode) drains() bool {
	return (s.agent && !s.noDrain) || s.joinedServerLeaves
}

// Describe says what Remove does.
func (s *K3sNode) Describe(*engine.Env) string {
	if s.drains() {
		return fmt.Sprintf("drains and deletes node %s, then runs %s on it", s.host.Name, s.uninstallScript())
	}
	return fmt.Sprintf("runs %s on %s", s.uninstallScript(), s.host.Name)
}

// Remove takes the host out of k3s: an agent, or a joined server leaving
// a cluster that stays, is drained first (kubectl's drain: cordon,
// evictions that respect PodDisruptionBudgets, at most k3sDrainTimeout)
// and its Node deleted through the cluster's API (for a server, k3s then
// removes its etcd member); then the uninstall script the install wrote
// runs (a host without it has nothing to uninstall), and what upstream's
// uninstall removes is checked to be gone. A server goes after every agent
// of its cluster, the first server after the others (they depend on it).
func (s *K3sNode) Remove(ctx context.Context, env *engine.Env) error {
	c, err := s.rt.Host(ctx, s.host.Name, env.Logf)
	if err != nil {
		return err
	}
	if s.drains() {
		if err := s.drainAndDelete(ctx, env); err != nil {
			return err
		}
	}
	q := remote.ShellQuote(s.uninstallScript())
	if _, err := c.Run(ctx, "if [ -x "+q+" ]; then "+q+"; fi", remoteOptions(env)); err != nil {
		return fmt.Errorf("uninstall: %w", err)
	}
	quoted := make([]string, len(k3sLeftovers()))
	for i, p := range k3sLeftovers() {
		quoted[i] = remote.ShellQuote(p)
	}
	res, err := c.Run(ctx, "for p in "+strings.Join(quoted, " ")+`; do [ -e "$p" ] && echo "$p"; done; true`, remote.RunOptions{})
	if err != nil {
		return fmt.Errorf("check the uninstall: %w", err)
	}
	if left := strings.Fields(res.Stdout); len(left) > 0 {
		return fmt.Errorf("%s left %s behind", s.uninstallScript(), strings.Join(left, ", "))
	}
	res, err = c.Run(ctx, k3sNetworkLeftovers, remote.RunOptions{})
	if err != nil {
		return fmt.Errorf("check the uninstall: %w", err)
	}
	if left := strings.Fields(res.Stdout); len(left) > 0 {
		return fmt.Errorf("%s left network links or namespaces behind: %s", s.uninstallScript(), strings.Join(left, ", "))
	}
	env.Logf("k3s %s uninstalled from %s", s.role(), s.host.Name)
	return nil
}

// drainAndDelete drains the node and deletes it, through the API of the
// cluster's first server.
func (s *K3sNode) drainAndDelete(ctx context.Context, env *engine.Env) error {
	cs, err := s.clusterClient(ctx, env)
	if err != nil {
		return fmt.Errorf("reach the cluster's API to drain %s: %w", s.host.Name, err)
	}
	node := s.host.Name
	n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil // already gone
	}
	if err != nil {
		return fmt.Errorf("get node %s: %w", node, err)
	}
	if s.joinedServerLeaves && s.etcdMember() {
		// k3s's etcd controller puts its finalizer on a server's Node a
		// moment after the Node registers (Ready comes first); a Node
		// deleted before that goes at once and leaves its etcd member.
		held := func() error { return waitEtcdFinalizer(ctx, cs, node, k3sNodeGoneTimeout) }
		if err := env.Wait(fmt.Sprintf("node %s held by k3s's etcd finalizer", node), held); err != nil {
			return err
		}
	}
	if err := cordonAndDrain(ctx, env, cs, n); err != nil {
		return err
	}
	if err := cs.CoreV1().Nodes().Delete(ctx, node, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete node %s: %w", node, err)
	}
	// A server's Node carries k3s's etcd finalizer: it is gone once k3s
	// removed its etcd member. Uninstalling before that would leave the
	// cluster's etcd counting a member that no longer answers (with two
	// servers, no quorum).
	gone := func() error { return waitNodeGone(ctx, cs, node, k3sNodeGoneTimeout) }
	if err := env.Wait(fmt.Sprintf("node %s gone (its etcd member removed)", node), gone); err != nil {
		return err
	}
	env.Logf("drained and deleted node %s", node)
	return nil
}

// k3sNodeGoneTimeout bounds the wait for a deleted Node to be gone, and
// for a server's Node to carry k3s's etcd finalizer.
const k3sNodeGoneTimeout = 2 * time.Minute

// k3sEtcdFinalizer is the finalizer k3s's etcd controller (wrangler's
// OnRemove handler "managed-etcd-controller") puts on the Node of every
// server with an embedded etcd member: deleting the Node removes the
// member, then the finalizer.
const k3sEtcdFinalizer = "wrangler.cattle.io/managed-etcd-controller"

// etcdMember says whether the server holds a member of the cluster's
// embedded etcd: every server does, unless the cluster keeps its data in
// an external datastore (k3s's --datastore-endpoint).
func (s *K3sNode) etcdMember() bool {
	return !slices.ContainsFunc(s.cluster.K3s.Args, func(a string) bool {
		return strings.HasPrefix(strings.TrimLeft(a, "-"), "datastore-endpoint")
	})
}

// waitEtcdFinalizer polls until the Node carries k3sEtcdFinalizer, so
// that deleting it removes its etcd member.
func waitEtcdFinalizer(ctx context.Context, cs kubernetes.Interface, node string, timeout time.Duration) error {
	held := func(n *corev1.Node) bool { return n != nil && slices.Contains(n.Finalizers, k3sEtcdFinalizer) }
	if seen, err := waitNode(ctx, cs, node, 200*time.Millisecond, timeout, held); err != nil {
		return fmt.Errorf("node %s has no %s after %s (last seen: %s): deleting it would leave its etcd member, "+
			"and the cluster's etcd counting a member that no longer answers", node, k3sEtcdFinalizer, timeout, seen)
	}
	return nil
}

// waitNodeGone polls until the Node is gone (its finalizers done).
func waitNodeGone(ctx context.Context, cs kubernetes.Interface, node string, timeout time.Duration) error {
	gone := func(n *corev1.Node) bool { return n == nil }
	if seen, err := waitNode(ctx, cs, node, 500*time.Millisecond, timeout, gone); err != nil {
		return fmt.Errorf("node %s still there after %s (last seen: %s)", node, timeout, seen)
	}
	return nil
}

// waitNode reads the Node every interval until done says so of it (nil:
// the Node is gone), at most timeout; a failed read is tried again. On
// timeout it says what it last saw: the read's error, or the Node's
// finalizers.
func waitNode(ctx context.Context, cs kubernetes.Interface, node string, interval, timeout time.Duration, done func(*corev1.Node) bool) (seen string, err error) {
	err = wait.PollUntilContextTimeout(ctx, interval, timeout, true, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			seen, n = "gone", nil
		case err != nil:
			seen = err.Error()
			return false, nil
		default:
			seen = fmt.Sprintf("finalizers %v", n.Finalizers)
		}
		return done(n), nil
	})
	return seen, err
}

// clusterClient is a client of the cluster's API (its first server's).
func (s *K3sNode) clusterClient(ctx context.Context, env *engine.Env) (kubernetes.Interface, error) {
	cfg, err := s.rt.clusterREST(ctx, s.cluster, env.Logf)
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}

// cordonAndDrain cordons node n and evicts its pods with kubectl's drain
// (evictions that respect PodDisruptionBudgets, DaemonSets left, at most
// k3sDrainTimeout), as `kubectl drain` does.
func cordonAndDrain(ctx context.Context, env *engine.Env, cs kubernetes.Interface, n *corev1.Node) error {
	helper := &drain.Helper{
		Ctx: ctx, Client: cs, Force: true, IgnoreAllDaemonSets: true, DeleteEmptyDirData: true,
		GracePeriodSeconds: -1, Timeout: k3sDrainTimeout,
		Out: logWriter{env}, ErrOut: logWriter{env},
	}
	if err := drain.RunCordonOrUncordon(helper, n, true); err != nil {
		return fmt.Errorf("cordon %s: %w", n.Name, err)
	}
	if err := drain.RunNodeDrain(helper, n.Name); err != nil {
		return fmt.Errorf("drain %s: %w", n.Name, err)
	}
	return nil
}

// logWriter sends what the drain library prints to the step's log.
type logWriter struct{ env *engine.Env }

func (w logWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if line != "" {
			w.env.Logf("%s", line)
		}
	}
	return len(p), nil
}
