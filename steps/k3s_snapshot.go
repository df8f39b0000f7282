package steps

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/remote"
)

// K3sOutputSnapshot is the output of k3s/snapshot naming the snapshot it
// took.
const K3sOutputSnapshot = "snapshot"

// K3sSnapshot takes an etcd snapshot on a cluster's first server before
// its k3s upgrade rolls (`k3s etcd-snapshot save`), once per release: the
// way back if the upgrade goes wrong (`k3s server --cluster-reset
// --cluster-reset-restore-path=...`). It is in the graph only while the
// cluster's nodes are being upgraded.
type K3sSnapshot struct {
	rt      *Runtime
	cluster plans.Cluster
	host    string
}

// NewK3sSnapshot returns the k3s/snapshot step of spec.Cluster.
func NewK3sSnapshot(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *K3sSnapshot {
	return &K3sSnapshot{rt: rt, cluster: *p.Cluster(spec.Cluster), host: spec.Host}
}

// name is the snapshot's name prefix for the release (k3s appends the
// node's name and the time).
func (s *K3sSnapshot) name() string {
	return "mcplan-pre-upgrade-" + digest.SHA256Hex([]byte(s.cluster.K3sRelease()))[:12]
}

// Check: a snapshot taken for this release (the engine reruns the step
// when the release changes) stays taken.
func (s *K3sSnapshot) Check(context.Context, *engine.Env) (engine.Drift, error) {
	return engine.InSync(), nil
}

// Apply checks every node Ready (unless forced), takes the snapshot and
// records its name.
func (s *K3sSnapshot) Apply(ctx context.Context, env *engine.Env) error {
	node := &K3sNode{rt: s.rt, cluster: s.cluster}
	cs, err := node.clusterClient(ctx, env)
	if err != nil {
		return fmt.Errorf("reach the cluster's API: %w", err)
	}
	if !s.rt.Force {
		if err := clusterReady(ctx, cs, s.cluster.Name); err != nil {
			return err
		}
	}
	c, err := s.rt.Host(ctx, s.host, env.Logf)
	if err != nil {
		return err
	}
	name := s.name()
	if _, err := c.Run(ctx, k3sBinaryPath+" etcd-snapshot save --name "+remote.ShellQuote(name), remoteOptions(env)); err != nil {
		return fmt.Errorf("etcd snapshot on %s: %w", s.host, err)
	}
	res, err := c.Run(ctx, k3sBinaryPath+" etcd-snapshot ls", remote.RunOptions{})
	if err != nil {
		return fmt.Errorf("list the etcd snapshots on %s: %w", s.host, err)
	}
	taken := ""
	for _, line := range strings.Split(res.Stdout, "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], name+"-") {
			taken = f[0] // the list is oldest first: the last is this one
		}
	}
	if taken == "" {
		return fmt.Errorf("etcd snapshot on %s: %s is not in `k3s etcd-snapshot ls`:\n%s", s.host, name, res.Stdout)
	}
	env.SetOutput(K3sOutputSnapshot, taken)
	env.Logf("etcd snapshot %s taken on %s before the upgrade to %s", taken, s.host, s.cluster.K3sRelease())
	return nil
}
