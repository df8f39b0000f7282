package engine

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrStepTimeout marks a step (or removal) that its own deadline ended.
var ErrStepTimeout = errors.New("timed out")

// stepContext bounds one run of a step or removal of kind by
// Options.StepTimeout; without a timeout for the kind it is ctx.
func (o Options) stepContext(ctx context.Context, kind string) (context.Context, context.CancelFunc, time.Duration) {
	if o.StepTimeout == nil {
		return ctx, func() {}, 0
	}
	limit := o.StepTimeout(kind)
	if limit <= 0 {
		return ctx, func() {}, 0
	}
	stepCtx, cancel := context.WithTimeoutCause(ctx, limit, ErrStepTimeout)
	return stepCtx, cancel, limit
}

// timedOut names the deadline in err when the step's own deadline, not
// the run's context, ended it: a hung command or API call then fails as
// "timed out after 15m0s (the k3s/server timeout): ...".
func timedOut(runCtx, stepCtx context.Context, limit time.Duration, kind string, err error) error {
	if err == nil || limit == 0 || runCtx.Err() != nil || !errors.Is(context.Cause(stepCtx), ErrStepTimeout) {
		return err
	}
	return fmt.Errorf("%w after %s (the %s timeout): %w", ErrStepTimeout, limit, kind, err)
}
