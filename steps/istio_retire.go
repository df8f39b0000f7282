package steps

import (
	"context"
	"fmt"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// IstioRetire is the last step of a canary in one cluster: the old
// revision's control plane deleted by its inventory, once every cluster's
// workloads and gateways moved to the new one. What the new revision's
// control plane or the tags also applied (CRDs, the reader account, the
// default validator) stays; so does whatever mcplan did not make (see
// kube.RemoveInventory). Deleting the inventory file ends the canary: the
// next plan has no canary steps.
type IstioRetire struct {
	cluster, revision, current string
}

// NewIstioRetire returns the istio/retire step of one old revision of
// spec.Cluster.
func NewIstioRetire(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioRetire {
	s := &IstioRetire{cluster: spec.Cluster, current: p.Mesh(spec.Mesh).Istio.Revision}
	if in, ok := spec.Inputs.(plans.CanaryInputs); ok {
		s.revision = in.Revision
	}
	return s
}

// old is the inventory of the revision to remove, nil once it is gone.
func (s *IstioRetire) old(env *engine.Env) (*kube.Inventory, error) {
	installed, err := installedControlPlanes(env.Dir, s.cluster)
	if err != nil {
		return nil, err
	}
	set, ok := installed[s.revision]
	if !ok {
		return nil, nil
	}
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, s.cluster, set)}, nil
}

// Check reports the old revision as installed while its inventory is.
func (s *IstioRetire) Check(_ context.Context, env *engine.Env) (engine.Drift, error) {
	inv, err := s.old(env)
	if err != nil || inv == nil {
		return engine.InSync(), err
	}
	return engine.Drifted(fmt.Sprintf("revision %s is still installed beside %s", plans.RevisionName(s.revision), plans.RevisionName(s.current))), nil
}

// Apply deletes the old revision's objects but those the current
// revision's control plane or the tags list too.
func (s *IstioRetire) Apply(ctx context.Context, env *engine.Env) error {
	inv, err := s.old(env)
	if err != nil || inv == nil {
		return err
	}
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return err
	}
	set, err := controlPlaneSetOf(env.Dir, s.cluster, s.current)
	if err != nil {
		return err
	}
	keep := []*kube.Inventory{
		{Path: statedir.Inventory(env.Dir, s.cluster, set)},
		{Path: statedir.Inventory(env.Dir, s.cluster, tagsSet)},
	}
	res, err := c.RemoveInventory(ctx, inv, keep...)
	if err != nil {
		return err
	}
	env.Logf("revision %s in %s: %s", plans.RevisionName(s.revision), s.cluster, res)
	return nil
}
