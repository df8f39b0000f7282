package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Decision is what is to be done with a step, and why.
type Decision struct {
	Action Action
	Reason string
}

// decide works out a step's action from its state record, the dependencies
// that change in this run and, when check is set, the live system. plan
// and apply both use it, so what plan shows is what apply does.
func decide(ctx context.Context, n *Node, rec *StepRecord, changedDeps []string, check bool, env *Env) (Decision, error) {
	switch {
	case rec == nil || (rec.Fingerprint == "" && rec.Status != StatusSucceeded):
		if rec != nil && rec.Status == StatusRunning {
			return Decision{ActionCreate, "interrupted during its first apply"}, nil
		}
		if rec != nil && rec.Status == StatusFailed {
			return Decision{ActionCreate, "first apply failed: " + firstLine(rec.Error)}, nil
		}
		return Decision{ActionCreate, "not applied yet"}, nil
	case rec.Status == StatusRunning:
		return Decision{ActionUpdate, "interrupted during its last apply"}, nil
	case rec.Status == StatusFailed:
		return Decision{ActionUpdate, "last apply failed: " + firstLine(rec.Error)}, nil
	case rec.Fingerprint != n.Fingerprint:
		return Decision{ActionUpdate, inputsChanged(ctx, n, check, env)}, nil
	case len(changedDeps) > 0:
		return Decision{ActionUpdate, "depends on " + describeDeps(changedDeps) + ", which change"}, nil
	}
	if !check || n.Step == nil {
		return Decision{ActionNoChange, ""}, nil
	}
	drift, err := n.Step.Check(ctx, env)
	switch {
	case errors.Is(err, ErrNotImplemented):
		return Decision{ActionNoChange, "live state not checked: " + err.Error()}, nil
	case err != nil:
		return Decision{}, fmt.Errorf("check: %w", err)
	case !drift.InSync:
		return Decision{ActionUpdate, "drift: " + drift.Reason}, nil
	}
	return Decision{ActionNoChange, ""}, nil
}

// inputsChanged is the reason of a step whose inputs changed: with check,
// what its Check finds differing in the live system (for Kubernetes
// objects: which objects a server-side dry-run apply would change).
func inputsChanged(ctx context.Context, n *Node, check bool, env *Env) string {
	if !check || n.Step == nil {
		return "inputs changed"
	}
	drift, err := n.Step.Check(ctx, env)
	switch {
	case err != nil:
		return "inputs changed (live state not read: " + firstLine(err.Error()) + ")"
	case drift.InSync:
		return "inputs changed; the live system already matches"
	}
	return "inputs changed: " + drift.Reason
}

func describeDeps(ids []string) string {
	if len(ids) <= 2 {
		return strings.Join(ids, " and ")
	}
	return fmt.Sprintf("%s and %d more", ids[0], len(ids)-1)
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
