// Package steps holds what each step of a plan does: one file per step
// kind, each a small type with Check (read-only) and Apply (idempotent).
// Steps know nothing of scheduling; the engine runs them.
package steps

import (
	"fmt"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// Graph builds the step graph of a validated plan with defaults applied:
// the plan's step specs, each with its fingerprint and implementation.
// The steps share rt; nothing is contacted until a step runs.
func Graph(p *plans.Plan, rt *Runtime) (*engine.Graph, error) {
	g := engine.NewGraph()
	for _, spec := range plans.Steps(p) {
		fp, err := engine.Fingerprint(spec.Kind, spec.Inputs)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", spec.ID, err)
		}
		if err := g.Add(engine.Node{
			ID:          spec.ID,
			Kind:        spec.Kind,
			DependsOn:   spec.DependsOn,
			Fingerprint: fp,
			Step:        New(p, spec, rt),
		}); err != nil {
			return nil, err
		}
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// New returns the implementation of one step.
func New(p *plans.Plan, spec plans.StepSpec, rt *Runtime) engine.Step {
	switch spec.Kind {
	case plans.KindHostFacts:
		return NewHostFacts(rt, *p.Host(spec.Host))
	case plans.KindK3sServer:
		return NewK3sServer(rt, p, *p.Cluster(spec.Cluster), *p.Host(spec.Host))
	case plans.KindK3sJoin:
		return NewK3sJoin(rt, p, *p.Cluster(spec.Cluster), *p.Host(spec.Host))
	case plans.KindKubeconfigFetch:
		return NewKubeconfigFetch(rt, p, *p.Cluster(spec.Cluster))
	case plans.KindKubeconfigMerge:
		return NewKubeconfigMerge(p)
	case plans.KindCARoot:
		return NewCARoot(spec.Mesh, p.Mesh(spec.Mesh).CA, p.Dir())
	case plans.KindCAIntermediate:
		return NewCAIntermediate(spec.Mesh, spec.Cluster, p.Mesh(spec.Mesh).CA, spec.Reads)
	case plans.KindIstioNamespace:
		return NewIstioNamespace(p, spec.Mesh, spec.Cluster)
	case plans.KindIstioCACerts:
		return NewIstioCACerts(spec.Mesh, p.Mesh(spec.Mesh).Clusters, spec.Cluster)
	case plans.KindIstioControlPlane:
		return NewIstioControlPlane(p, *p.Mesh(spec.Mesh), spec.Cluster, spec.Reads)
	case plans.KindIstioEastWest:
		return NewIstioEastWest(p, *p.Mesh(spec.Mesh), spec.Cluster)
	case plans.KindIstioExpose:
		return NewIstioExpose(p, *p.Mesh(spec.Mesh), spec.Cluster, spec.Reads)
	case plans.KindIstioRemoteSecret:
		return NewIstioRemoteSecret(p, spec.Mesh, spec.Source, spec.Target)
	case plans.KindVerifySample:
		return NewVerifySample(p, *p.Mesh(spec.Mesh))
	default:
		return NotImplemented{Kind: spec.Kind}
	}
}
