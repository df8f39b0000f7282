package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/kubectl/pkg/drain"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/remote"
)

// K3sOutputRelease is the output of a k3s step recording the release it
// installed (plans.Cluster.K3sRelease): a cluster whose nodes recorded
// another release than the plan's is upgraded in order (Rollouts).
const K3sOutputRelease = "release"

// upgradeCordonAnnotation marks a node that mcplan cordoned for its
// upgrade: the next apply uncordons a node an interrupted upgrade left
// cordoned, and never one a user cordoned.
const upgradeCordonAnnotation = "mcplan.io/cordoned-for-upgrade"

// rolloutNote says where the node's upgrade is in its cluster's rollout,
// for plan: "server 2 of 3, after host/h1/k3s/server; drained first".
func (s *K3sNode) rolloutNote() string {
	c := s.cluster
	var note string
	if s.agent {
		i := slices.Index(c.Agents, s.host.Name)
		note = fmt.Sprintf("agent %d of %d, %d at a time, after the servers", i+1, len(c.Agents), c.AgentBatch())
	} else {
		i := slices.Index(c.Servers, s.host.Name)
		note = fmt.Sprintf("server %d of %d", i+1, len(c.Servers))
		switch {
		case i == 0 && c.EmbeddedEtcd():
			note += ", after the etcd snapshot"
		case i > 0:
			note += ", after " + plans.K3sServerID(c.Servers[i-1])
		}
	}
	if s.drainsForUpgrade() {
		note += "; drained first"
	}
	return note
}

// drainsForUpgrade says whether the node is drained before its upgrade:
// unless the plan says not to, and when there is another node to take its
// pods.
func (s *K3sNode) drainsForUpgrade() bool {
	return s.cluster.Drains() && len(s.cluster.Servers)+len(s.cluster.Agents) > 1
}

// checkClusterReady refuses an upgrade while a node of the cluster is not
// Ready (unless the run is forced): an upgrade takes a node away, and
// with another one down the cluster may lose its quorum or its capacity.
func (s *K3sNode) checkClusterReady(ctx context.Context, cs kubernetes.Interface) error {
	if s.rt.Force {
		return nil
	}
	return clusterReady(ctx, cs, s.cluster.Name)
}

// clusterReady says which nodes of a cluster are not Ready.
func clusterReady(ctx context.Context, cs kubernetes.Interface, cluster string) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list the nodes of cluster %s: %w", cluster, err)
	}
	var notReady []string
	for _, n := range nodes.Items {
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready = true
			}
		}
		if !ready {
			notReady = append(notReady, n.Name)
		}
	}
	if len(notReady) > 0 {
		return fmt.Errorf("upgrade %w: node %s of cluster %s is not Ready; bring it back (or remove it from the plan) first, or apply with --force",
			engine.ErrRefused, strings.Join(notReady, ", "), cluster)
	}
	return nil
}

// startUpgrade prepares the node for its upgrade: the cluster checked
// Ready, the node cordoned (marked as mcplan's) and drained, then the
// beforeUpgrade hooks run.
func (s *K3sNode) startUpgrade(ctx context.Context, env *engine.Env, c *remote.Client, live liveState) error {
	cs, err := s.clusterClient(ctx, env)
	if err != nil {
		return fmt.Errorf("reach the cluster's API to upgrade %s: %w", s.host.Name, err)
	}
	if err := s.checkClusterReady(ctx, cs); err != nil {
		return err
	}
	env.Logf("upgrading k3s on %s from %s (%s)", s.host.Name, live.version, s.rolloutNote())
	if s.drainsForUpgrade() {
		n, err := cs.CoreV1().Nodes().Get(ctx, s.host.Name, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("get node %s: %w", s.host.Name, err)
		}
		if !n.Spec.Unschedulable {
			if err := annotateNode(ctx, cs, s.host.Name, upgradeCordonAnnotation, live.version); err != nil {
				return err
			}
		}
		if err := cordonAndDrain(ctx, env, cs, n); err != nil {
			return err
		}
		env.Logf("cordoned and drained node %s", s.host.Name)
	}
	return s.runHooks(ctx, env, c, "beforeUpgrade")
}

// finishUpgrade checks the upgraded node: Ready at the wanted version
// (a pinned one), for a server its own API's /readyz (etcd included); then
// the afterUpgrade hooks run. The uncordon is uncordonAfterUpgrade's.
func (s *K3sNode) finishUpgrade(ctx context.Context, env *engine.Env, c *remote.Client) error {
	cs, err := s.clusterClient(ctx, env)
	if err != nil {
		return err
	}
	if want := s.cluster.K3s.Version; want != "" {
		if err := env.Wait("node "+s.host.Name+" reporting kubelet "+want, func() error {
			return waitKubeletVersion(ctx, cs, s.host.Name, want, s.timeout)
		}); err != nil {
			return err
		}
	}
	if !s.agent {
		if err := s.checkOwnAPIReady(ctx, env); err != nil {
			return err
		}
	}
	return s.runHooks(ctx, env, c, "afterUpgrade")
}

// uncordonAfterUpgrade uncordons the node when mcplan cordoned it for an
// upgrade (this one, or one a killed run left half done).
func (s *K3sNode) uncordonAfterUpgrade(ctx context.Context, env *engine.Env) error {
	cs, err := s.clusterClient(ctx, env)
	if err != nil {
		return err
	}
	n, err := cs.CoreV1().Nodes().Get(ctx, s.host.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", s.host.Name, err)
	}
	if _, ours := n.Annotations[upgradeCordonAnnotation]; !ours {
		return nil
	}
	helper := &drain.Helper{Ctx: ctx, Client: cs, Out: logWriter{env}, ErrOut: logWriter{env}}
	if err := drain.RunCordonOrUncordon(helper, n, false); err != nil {
		return fmt.Errorf("uncordon %s: %w", s.host.Name, err)
	}
	if err := annotateNode(ctx, cs, s.host.Name, upgradeCordonAnnotation, ""); err != nil {
		return err
	}
	env.Logf("uncordoned node %s", s.host.Name)
	return nil
}

// cordonedForUpgrade says whether mcplan's upgrade left the node
// cordoned (Check reports it, so the next apply uncordons).
func cordonedForUpgrade(n *corev1.Node) bool {
	_, ours := n.Annotations[upgradeCordonAnnotation]
	return ours
}

// annotateNode sets (value != "") or removes an annotation of a node.
func annotateNode(ctx context.Context, cs kubernetes.Interface, node, key, value string) error {
	var v any = value
	if value == "" {
		v = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{key: v}}})
	if err != nil {
		return err
	}
	if _, err := cs.CoreV1().Nodes().Patch(ctx, node, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: kube.FieldManager}); err != nil {
		return fmt.Errorf("annotate node %s: %w", node, err)
	}
	return nil
}

// waitKubeletVersion waits until the node reports the wanted version.
func waitKubeletVersion(ctx context.Context, cs kubernetes.Interface, node, want string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	seen := ""
	for {
		n, err := cs.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
		if err == nil {
			seen = n.Status.NodeInfo.KubeletVersion
			if seen == want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s reports k3s %s, not %s, after %s", node, orUnknown(seen), want, timeout)
		case <-time.After(time.Second):
		}
	}
}

// checkOwnAPIReady asks the server's own API (at its private IP, not the
// cluster's operator address) for /readyz, which includes etcd's health.
func (s *K3sNode) checkOwnAPIReady(ctx context.Context, env *engine.Env) error {
	cfg, err := s.rt.clusterREST(ctx, s.cluster, env.Logf)
	if err != nil {
		return err
	}
	cfg.Host = apiURL(s.host.PrivateIP, s.cluster.API.Port)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("the API of %s is not ready after its upgrade (/readyz: %w)", s.host.Name, err)
	}
	env.Logf("API of %s /readyz: %s", s.host.Name, strings.TrimSpace(string(body)))
	return nil
}

// runHooks runs the plan's hooks of a kind on the node, each a shell
// command of the plan's author, in order; the first that fails fails the
// step.
func (s *K3sNode) runHooks(ctx context.Context, env *engine.Env, c *remote.Client, which string) error {
	h := s.cluster.K3s.Hooks
	if h == nil {
		return nil
	}
	cmds := h.BeforeUpgrade
	if which == "afterUpgrade" {
		cmds = h.AfterUpgrade
	}
	for i, cmd := range cmds {
		env.Logf("hook %s[%d] on %s", which, i, s.host.Name)
		opts := remoteOptions(env)
		opts.Once = true // a user's command: not known to be idempotent
		if _, err := c.Run(ctx, cmd, opts); err != nil {
			return fmt.Errorf("hooks.%s[%d] failed on %s, so its upgrade stops here: %w", which, i, s.host.Name, err)
		}
	}
	return nil
}
