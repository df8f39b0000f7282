package steps

import (
	"context"

	"mcplan.io/mcplan/engine"
)

// What steps do ahead of their turn (engine.Preparer): work that needs
// the plan alone, kept in the run's Runtime where their Check and Apply
// find it.

// Prepare renders the control plane ahead (engine.Preparer): the render
// is the run's (Runtime.render), so the step's Check and Apply find it
// done. A remote whose primary's address is not recorded yet is rendered
// at its turn.
func (s *IstioControlPlane) Prepare(ctx context.Context, env *engine.Env) {
	if cp, err := s.wanted(env); err == nil {
		_, _ = s.rt.render(ctx, cp.IstioOperator())
	}
}

// Prepare renders the gateway ahead (engine.Preparer).
func (s *IstioEastWest) Prepare(ctx context.Context, _ *engine.Env) {
	_, _ = s.render(ctx)
}

// Prepare renders the tags ahead (engine.Preparer).
func (s *IstioTags) Prepare(ctx context.Context, env *engine.Env) {
	if op, err := s.operator(env); err == nil {
		_, _ = s.rt.render(ctx, op)
	}
}

// Prepare reads the sum of the plan's airgap binary ahead
// (engine.Preparer), once per run (Runtime.fileSHA256), while the hosts
// are being reached.
func (s *K3sNode) Prepare(_ context.Context, env *engine.Env) {
	_, _, _ = s.airgapBinarySHA(env)
}
