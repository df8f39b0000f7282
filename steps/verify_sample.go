package steps

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/verify"
)

// VerifyOutputClusters is the output of verify/sample naming, comma
// separated, the clusters the sample was deployed in: its removal's list.
const VerifyOutputClusters = "clusters"

// VerifySample is the verify/sample step of a mesh, a thin adapter of
// package verify: Check runs the control-plane checks (verify's
// ControlPlane, read-only: plan runs it). Apply runs them and fails with
// every problem; when the mesh's verify is enabled it then runs the xDS
// check (deploys the sample, asks every istiod what it tells the
// sidecars). Traffic through the sample needs real pods and runs only
// from `mcplan verify --traffic`.
type VerifySample struct {
	*verify.Verifier
}

// NewVerifySample returns the verify/sample step of spec.Mesh.
func NewVerifySample(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *VerifySample {
	return &VerifySample{Verifier: verify.New(p, *p.Mesh(spec.Mesh))}
}

// Check runs the control-plane checks; InSync when all pass.
func (s *VerifySample) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	bad := verify.Failed(s.ControlPlane(ctx, env.Dir))
	if len(bad) == 0 {
		return engine.InSync(), nil
	}
	reasons := make([]string, len(bad))
	for i, f := range bad {
		reasons[i] = f.String()
	}
	return engine.Drifted(strings.Join(reasons, "; ")), nil
}

// Apply runs the control-plane checks and fails with every problem.
// Then, when the mesh's verify.enabled, it runs the xDS check and fails
// with its tables when an istiod tells a sidecar something other than
// what the clusters say.
func (s *VerifySample) Apply(ctx context.Context, env *engine.Env) error {
	fs := s.ControlPlane(ctx, env.Dir)
	if err := verify.FindingsError(fs); err != nil {
		return err
	}
	env.Logf("mesh %s: %d control-plane checks passed", s.Mesh(), len(fs))
	checks := len(fs)
	if s.Enabled() {
		xfs, reports := s.WithWait(env.Wait).XDS(ctx, env.Dir, s.DialIstiod, env.Logf)
		tables := strings.TrimRight(verify.XDSReportsText(reports), "\n")
		if err := verify.FindingsError(xfs); err != nil {
			return fmt.Errorf("%w\n%s", err, tables)
		}
		for _, line := range strings.Split(tables, "\n") {
			env.Logf("%s", line)
		}
		checks += len(xfs)
	}
	env.SetOutput("checks", fmt.Sprint(checks))
	env.SetOutput(VerifyOutputClusters, strings.Join(s.Clusters(), ","))
	return nil
}
