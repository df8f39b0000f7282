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
	// Details, when set, are the objects that differ, each with its
	// changed fields, for plan to show under the step. Never secret values.
	Details []Change
}

// Change is one object a Check found differing from what Apply would make
// of it.
type Change struct {
	// Object names the object and what Apply would do to it, e.g.
	// "~ Deployment istio-system/istiod", "+ Secret istio-system/cacerts"
	// or "- Service istio-system/old (no longer rendered)".
	Object string `json:"object"`
	// Fields are the object's changed fields, one per entry, e.g.
	// "~ spec.replicas: 1 → 2". Never secret values.
	Fields []string `json:"fields,omitempty"`
}

// InSync is the Drift of a converged step.
func InSync() Drift { return Drift{InSync: true} }

// Drifted is the Drift of a step whose effect is missing or differs.
func Drifted(reason string) Drift { return Drift{Reason: reason} }

// ErrNotImplemented is returned (wrapped) by steps whose kind this version
// of mcplan cannot run yet. plan treats such a Check as "not checked".
var ErrNotImplemented = errors.New("not implemented")

// ErrRefused marks a Check or Apply error that refuses the change the
// plan asks for (an upgrade while the cluster is not healthy): plan fails
// with it even where the step's inputs changed and a Check that merely
// cannot read the live system would not stop it.
var ErrRefused = errors.New("refused")
