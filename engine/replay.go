package engine

import (
	"fmt"
	"slices"
	"strings"
)

// Replay carries out the decisions of an earlier dry run (a saved plan)
// instead of deciding again: no step is checked against the live system,
// each runs with the decision the dry run recorded, and the records the
// dry run would remove are removed. Run refuses it, changing nothing,
// unless the graph and the records leaving are still the ones the dry run
// saw (CheckReplay).
type Replay struct {
	// Steps are the dry run's decisions by step ID, each with the
	// fingerprint of the inputs it was made for.
	Steps map[string]ReplayedStep
	// Removals are the IDs of the records the dry run removes or forgets.
	Removals []string
}

// ReplayedStep is one step's decision in a Replay.
type ReplayedStep struct {
	Fingerprint string
	Decision
}

// ReplayOf is the Replay of a dry run's report: what an apply of the
// same graph and state carries out.
func ReplayOf(rep *Report) *Replay {
	r := &Replay{Steps: make(map[string]ReplayedStep, len(rep.Steps)), Removals: slices.Clone(rep.Forgotten)}
	for _, s := range rep.Steps {
		r.Steps[s.ID] = ReplayedStep{Fingerprint: s.Fingerprint, Decision: s.Decision}
	}
	return r
}

// CheckReplay says why opts.Replay cannot be carried out on g as it is
// now, or nil when it can (or there is none): every step of g must have
// a decision in it, made for the fingerprint the step has now (a destroy
// runs no step, so only its removals count), and the records leaving
// must be the ones it removes. Run checks the same before changing
// anything.
func CheckReplay(g *Graph, opts Options) error {
	r := opts.Replay
	if r == nil {
		return nil
	}
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	var problems []string
	if !opts.Destroy {
		for _, id := range g.IDs() {
			saved, ok := r.Steps[id]
			switch {
			case !ok:
				problems = append(problems, fmt.Sprintf("step %s is not in the saved plan", id))
			case saved.Fingerprint != g.Node(id).Fingerprint:
				problems = append(problems, fmt.Sprintf("step %s: its inputs are not the ones the plan was made for (fingerprint %s, saved %s)", id, g.Node(id).Fingerprint, saved.Fingerprint))
			}
		}
		for id := range r.Steps {
			if g.Node(id) == nil {
				problems = append(problems, fmt.Sprintf("step %s of the saved plan is not in the plan now", id))
			}
		}
	}
	leaving, _ := (&scheduler{graph: g, opts: opts}).leaving()
	for _, id := range leaving {
		if !slices.Contains(r.Removals, id) {
			problems = append(problems, fmt.Sprintf("the record of %s would be removed, which the saved plan does not remove", id))
		}
	}
	for _, id := range r.Removals {
		if !slices.Contains(leaving, id) {
			problems = append(problems, fmt.Sprintf("the saved plan removes the record of %s, which is not to be removed now", id))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	slices.Sort(problems)
	return fmt.Errorf("the saved plan no longer matches the plan and state, nothing was changed:\n  %s", strings.Join(problems, "\n  "))
}
