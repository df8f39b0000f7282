package kube

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// RetryTransient runs op, an operation that may be done twice but does
// not go through a retrying transport (a port-forward's upgrade), again
// while it fails transiently (as retryTransport judges a connection's
// failure, or an API answer of 429, 500, 503 or 504), with the same
// policy, each attempt logged as what. The last error says how many
// attempts were made.
func RetryTransient(ctx context.Context, logf func(string, ...any), what string, op func(context.Context) error) error {
	return retryOp(ctx, transientPolicy(), logf, what, op)
}

func retryOp(ctx context.Context, p retryPolicy, logf func(string, ...any), what string, op func(context.Context) error) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		why := transientError(ctx, err)
		if why == "" {
			return err
		}
		if attempt >= p.attempts {
			return fmt.Errorf("%w (gave up after %d attempts)", err, attempt)
		}
		pause := p.backoff.Step()
		logf("%s: %s; trying again in %s (attempt %d of %d)", what, why, pause.Round(100*time.Millisecond), attempt+1, p.attempts)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after %d attempts: %v)", ctx.Err(), attempt, err)
		case <-time.After(pause):
		}
	}
}

// transientError says why err is worth another attempt, or "".
func transientError(ctx context.Context, err error) string {
	if err == nil {
		return ""
	}
	if why := transient(ctx, nil, err); why != "" {
		return why
	}
	switch {
	case ctx.Err() != nil:
		return ""
	case apierrors.IsTooManyRequests(err), apierrors.IsInternalError(err), apierrors.IsServiceUnavailable(err),
		apierrors.IsServerTimeout(err), apierrors.IsTimeout(err):
		return "answered " + err.Error()
	}
	return ""
}
