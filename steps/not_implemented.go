package steps

import (
	"context"
	"fmt"

	"mcplan.io/mcplan/engine"
)

// NotImplemented stands for a step kind this version of mcplan cannot run
// yet. Its Check says so (plan shows the step as not checked) and its Apply
// fails: an apply never pretends to have done it.
type NotImplemented struct {
	Kind string
}

func (s NotImplemented) err() error {
	return fmt.Errorf("step kind %s: %w in this version of mcplan", s.Kind, engine.ErrNotImplemented)
}

// Check reports that the live state cannot be read.
func (s NotImplemented) Check(context.Context, *engine.Env) (engine.Drift, error) {
	return engine.Drift{}, s.err()
}

// Apply fails.
func (s NotImplemented) Apply(context.Context, *engine.Env) error { return s.err() }
