package engine

import (
	"context"
	"runtime"
	"sync"
)

// Preparer is a step with work it can do ahead of its turn, before its
// dependencies have run: work that depends on the plan alone, such as a
// render. At the start of a run the engine calls Prepare of every step
// that is likely to be applied (never applied, or its inputs changed),
// in parallel with the rest of the run; Prepare keeps its result where
// the step's Check and Apply find it (a cache of the run) and changes
// nothing. It has no result for the engine: a Prepare that cannot do its
// work (an output it needs is not recorded yet) just returns, and the
// step does the work at its turn.
type Preparer interface {
	Prepare(ctx context.Context, env *Env)
}

// preparing are the Prepare calls of a run.
type preparing struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startPreparing calls Prepare of the steps of order that implement it
// and will not be decided by their Check alone (not eligibleForPrecheck),
// in order, at most prepareLimit at once.
// Each gets the Env it would get with its dependencies as recorded;
// its log lines are dropped.
func startPreparing(ctx context.Context, g *Graph, order []string, opts Options) *preparing {
	ctx, cancel := context.WithCancel(ctx)
	p := &preparing{cancel: cancel}
	var queue []*Node
	for _, id := range order {
		n := g.Node(id)
		if _, ok := n.Step.(Preparer); !ok {
			continue
		}
		if rec, found := opts.Store.Record(id); eligibleForPrecheck(n, rec, found) {
			continue
		}
		queue = append(queue, n)
	}
	runAhead(ctx, &p.wg, prepareLimit(runtime.GOMAXPROCS(0)), queue, func(n *Node) {
		defer func() { _ = recover() }() // the step's own turn reports what fails
		if ctx.Err() == nil {
			n.Step.(Preparer).Prepare(ctx, recordedEnv(n, opts, Discard))
		}
	})
	return p
}

// prepareLimit is how many Prepare calls run at once on procs cores:
// preparing is work, not waiting, and one core is left to the steps
// being run (the first ones, reaching the hosts, start at the same
// moment), so that work ahead does not slow the critical path; at least
// one.
func prepareLimit(procs int) int { return max(procs-1, 1) }

// stop cancels what is still being prepared and waits for it.
func (p *preparing) stop() {
	p.cancel()
	p.wg.Wait()
}
