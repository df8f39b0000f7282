package kube

import (
	"context"

	"golang.org/x/sync/errgroup"
)

// atOnce calls each(ctx, i) for i in [0, n), at most limit at a time,
// and returns the first error; that error cancels the ctx the others
// get. Apply's tiers, Diff's reads and dry-runs and Unchanged's reads
// go through it.
func atOnce(ctx context.Context, n, limit int, each func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(limit)
	for i := range n {
		g.Go(func() error { return each(ctx, i) })
	}
	return g.Wait()
}
