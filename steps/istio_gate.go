package steps

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/verify"
)

// IstioGate is the gate of a mesh's canary: once the new revision's
// istiod runs in every cluster beside the old, it asks each of them, as
// the xDS check of verify does, what they tell the sample's sidecars of
// every network, and fails, naming each view that differs from the
// clusters, before any revision tag moves. It changes nothing but the
// sample it deploys (verify/sample's, removed with it). With the mesh's
// verify.enabled false there is no sample to ask about: the gate passes
// and says so.
type IstioGate struct {
	*verify.Verifier
	from []string
	to   string
}

// NewIstioGate returns the istio/gate step of spec.Mesh.
func NewIstioGate(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioGate {
	mesh := *p.Mesh(spec.Mesh)
	g := &IstioGate{Verifier: verify.New(p, mesh), to: mesh.Istio.Revision}
	if in, ok := spec.Inputs.(plans.CanaryInputs); ok {
		g.from = in.From
	}
	return g
}

// Check: a gate has nothing live to compare; once passed for its inputs
// it stays passed (a changed input or a changed dependency runs it again).
func (g *IstioGate) Check(context.Context, *engine.Env) (engine.Drift, error) {
	return engine.InSync(), nil
}

// Apply runs the xDS check against the new revision's istiods.
func (g *IstioGate) Apply(ctx context.Context, env *engine.Env) error {
	if !g.Enabled() {
		env.Logf("mesh %s: xDS gate of revision %s not run: verify.enabled is false", g.Mesh(), plans.RevisionName(g.to))
		return nil
	}
	fs, reports := g.WithWait(env.Wait).XDS(ctx, env.Dir, g.DialIstiod, env.Logf)
	tables := strings.TrimRight(verify.XDSReportsText(reports), "\n")
	if err := verify.FindingsError(fs); err != nil {
		return fmt.Errorf("the xDS gate of revision %s failed, the tags stay on %s: %w\n%s",
			plans.RevisionName(g.to), revisionNames(g.from), err, tables)
	}
	for _, line := range strings.Split(tables, "\n") {
		env.Logf("%s", line)
	}
	env.Logf("mesh %s: revision %s passed the xDS gate (%d views)", g.Mesh(), plans.RevisionName(g.to), len(reports))
	env.SetOutput("views", fmt.Sprint(len(reports)))
	return nil
}

// revisionNames names revisions for messages.
func revisionNames(revs []string) string {
	names := make([]string, len(revs))
	for i, r := range revs {
		names[i] = plans.RevisionName(r)
	}
	return strings.Join(names, ", ")
}
