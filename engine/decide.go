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
	// Details are the objects the Check found differing, with their
	// changed fields, when it found any.
	Details []Change
}

// checkFunc reads the live system for a step: its Check, or the result
// of its Check run ahead (prechecks). nil means the live system is not
// read (plan --offline).
type checkFunc func(context.Context, *Env) (Drift, error)

// decide works out a step's action from its state record, the dependencies
// that change in this run and, when check is set, the live system. plan
// and apply both use it, so what plan shows is what apply does.
func decide(ctx context.Context, n *Node, rec *StepRecord, changedDeps []string, check checkFunc, env *Env) (Decision, error) {
	switch {
	case rec == nil || (rec.Fingerprint == "" && rec.Status != StatusSucceeded):
		if rec != nil && rec.Status == StatusRunning {
			return Decision{Action: ActionCreate, Reason: "interrupted during its first apply"}, nil
		}
		if rec != nil && rec.Status == StatusFailed {
			return Decision{Action: ActionCreate, Reason: "first apply failed: " + firstLine(rec.Error)}, nil
		}
		return Decision{Action: ActionCreate, Reason: "not applied yet"}, nil
	case rec.Status == StatusRunning:
		return Decision{Action: ActionUpdate, Reason: "interrupted during its last apply"}, nil
	case rec.Status == StatusFailed:
		return Decision{Action: ActionUpdate, Reason: "last apply failed: " + firstLine(rec.Error)}, nil
	case rec.Fingerprint != n.Fingerprint:
		reason, details, err := inputsChanged(ctx, n, check, env)
		if err != nil {
			return Decision{}, err
		}
		return Decision{Action: ActionUpdate, Reason: reason, Details: details}, nil
	case len(changedDeps) > 0:
		return Decision{Action: ActionUpdate, Reason: "depends on " + describeDeps(changedDeps) + ", which change"}, nil
	}
	if check == nil || n.Step == nil {
		return Decision{Action: ActionNoChange}, nil
	}
	drift, err := check(ctx, env)
	switch {
	case errors.Is(err, ErrNotImplemented):
		return Decision{Action: ActionNoChange, Reason: "live state not checked: " + err.Error()}, nil
	case err != nil:
		return Decision{}, fmt.Errorf("check: %w", err)
	case !drift.InSync:
		return Decision{Action: ActionUpdate, Reason: "drift: " + drift.Reason, Details: drift.Details}, nil
	}
	return Decision{Action: ActionNoChange}, nil
}

// inputsChanged is the reason of a step whose inputs changed: with check,
// what its Check finds differing in the live system (for Kubernetes
// objects: which objects a server-side dry-run apply would change). A
// Check that cannot read the live system does not stop the step (it is
// to run anyway); one that refuses the change (ErrRefused) does.
func inputsChanged(ctx context.Context, n *Node, check checkFunc, env *Env) (string, []Change, error) {
	if check == nil || n.Step == nil {
		return "inputs changed", nil, nil
	}
	drift, err := check(ctx, env)
	switch {
	case errors.Is(err, ErrRefused):
		return "", nil, fmt.Errorf("check: %w", err)
	case err != nil:
		return "inputs changed (live state not read: " + firstLine(err.Error()) + ")", nil, nil
	case drift.InSync:
		return "inputs changed; the live system already matches", nil, nil
	}
	return "inputs changed: " + drift.Reason, drift.Details, nil
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
