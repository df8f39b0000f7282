// Package engine schedules a graph of steps: it decides what must run from
// the state of earlier applies, runs independent steps in parallel, records
// the outcome of each step and reports progress as a stream of events. It
// knows nothing about what a step does.
package engine

import (
	"context"
	"errors"
)

// Step is one unit of work. A step is idempotent: Apply on a converged
// system changes nothing.
type Step interface {
	// Check reads the live system, changing nothing, and says whether the
	// step's effect is present as expected. plan and apply both call it.
	Check(ctx context.Context, env *Env) (Drift, error)
	// Apply converges the live system.
	Apply(ctx context.Context, env *Env) error
}

// Remover is a step that can undo its effect once it has left the plan,
// such as a remote secret of a cluster that left its mesh. See
// Options.Retire.
type Remover interface {
	// Remove deletes what the step made. env.Previous holds the step's
	// last recorded outputs. It must succeed when there is nothing left.
	Remove(ctx context.Context, env *Env) error
}

// Drift is the result of a Check.
type Drift struct {
	// InSync is true when the step's effect is present as expected.
	InSync bool
	// Reason says what differs, for plan output ("root-cert.pem missing").
	Reason string
	// Details, when set, are lines plan shows under the step, e.g. one
	// per changed object and field. Never secret values.
	Details []string
}

// InSync is the Drift of a converged step.
func InSync() Drift { return Drift{InSync: true} }

// Drifted is the Drift of a step whose effect is missing or differs.
func Drifted(reason string) Drift { return Drift{Reason: reason} }

// ErrNotImplemented is returned (wrapped) by steps whose kind this version
// of mcplan cannot run yet. plan treats such a Check as "not checked".
var ErrNotImplemented = errors.New("not implemented")
