package status

import (
	"fmt"

	"mcplan.io/mcplan/engine"
)

// ReadLastApply is the last apply recorded in store: when it ran and
// which of its steps failed or did not finish (as `mcplan graph
// --timeline` shows it). It is an error wrapping engine.ErrNoApply when no
// run has applied a step yet.
func ReadLastApply(store *engine.Store) (LastApply, error) {
	t, err := engine.NewTimeline(store)
	if err != nil {
		return LastApply{}, fmt.Errorf("last apply: %w", err)
	}
	a := LastApply{StartedAt: t.StartedAt, FinishedAt: t.FinishedAt, Steps: len(t.Steps)}
	for _, s := range t.Steps {
		switch s.Status {
		case engine.StatusFailed:
			a.Failed = append(a.Failed, s.ID)
		case engine.StatusRunning, engine.StatusRemoving:
			a.Interrupted = append(a.Interrupted, s.ID)
		}
	}
	return a, nil
}
