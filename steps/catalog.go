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
// the plan's step specs, each with its fingerprint and implementation;
// the upgrades under way are carried on (see Upgrades). The steps share
// rt; nothing is contacted until a step runs.
func Graph(p *plans.Plan, rt *Runtime, u plans.Upgrades) (*engine.Graph, error) {
	g := engine.NewGraph()
	kinds := catalogue()
	for _, spec := range plans.StepsUpgrading(p, u) {
		fp, err := engine.Fingerprint(spec.Kind, spec.Inputs)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", spec.ID, err)
		}
		if err := g.Add(engine.Node{
			ID:          spec.ID,
			Kind:        spec.Kind,
			DependsOn:   spec.DependsOn,
			Fingerprint: fp,
			Step:        construct(kinds, p, spec, rt),
		}); err != nil {
			return nil, err
		}
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Constructor makes the step of one spec of a plan. Every kind's
// constructor has this shape, so the catalogue is a table.
type Constructor func(p *plans.Plan, spec plans.StepSpec, rt *Runtime) engine.Step

// catalogue is the constructor of each step kind: adding a kind is a
// rule in plans/stepgraph.go, its file here, and its row.
func catalogue() map[string]Constructor {
	return map[string]Constructor{
		plans.KindHostFacts:         kind(NewHostFacts),
		plans.KindK3sServer:         kind(NewK3sServer),
		plans.KindK3sJoin:           kind(NewK3sJoin),
		plans.KindK3sSnapshot:       kind(NewK3sSnapshot),
		plans.KindKubeconfigFetch:   kind(NewKubeconfigFetch),
		plans.KindKubeconfigImport:  kind(NewKubeconfigImport),
		plans.KindKubeconfigMerge:   kind(NewKubeconfigMerge),
		plans.KindCARoot:            kind(NewCARoot),
		plans.KindCAIntermediate:    kind(NewCAIntermediate),
		plans.KindIstioNamespace:    kind(NewIstioNamespace),
		plans.KindIstioCACerts:      kind(NewIstioCACerts),
		plans.KindIstioControlPlane: kind(NewIstioControlPlane),
		plans.KindIstioEastWest:     kind(NewIstioEastWest),
		plans.KindIstioGate:         kind(NewIstioGate),
		plans.KindIstioTags:         kind(NewIstioTags),
		plans.KindIstioRestart:      kind(NewIstioRestart),
		plans.KindIstioRetire:       kind(NewIstioRetire),
		plans.KindIstioExpose:       kind(NewIstioExpose),
		plans.KindIstioRemoteSecret: kind(NewIstioRemoteSecret),
		plans.KindVerifySample:      kind(NewVerifySample),
		plans.KindManifestsApply:    kind(NewManifestsApply),
	}
}

// kind turns a kind's constructor, which returns its own type, into a
// Constructor.
func kind[S engine.Step](newStep func(*plans.Plan, plans.StepSpec, *Runtime) S) Constructor {
	return func(p *plans.Plan, spec plans.StepSpec, rt *Runtime) engine.Step { return newStep(p, spec, rt) }
}

// New returns the implementation of one step: its kind's constructor, or
// NotImplemented for a kind this version does not know.
func New(p *plans.Plan, spec plans.StepSpec, rt *Runtime) engine.Step {
	return construct(catalogue(), p, spec, rt)
}

// construct is New with the catalogue built once per graph.
func construct(kinds map[string]Constructor, p *plans.Plan, spec plans.StepSpec, rt *Runtime) engine.Step {
	if newStep, ok := kinds[spec.Kind]; ok {
		return newStep(p, spec, rt)
	}
	return NotImplemented{Kind: spec.Kind}
}
