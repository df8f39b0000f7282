package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// prechecks are the Checks a run starts at once, before their steps'
// turn: a step whose inputs are unchanged is decided by its Check, and
// that Check reads the live system as it is before anything is applied,
// whichever order the steps run in. So every such Check can run at the
// start, in parallel (bounded by Options.Parallelism), instead of one
// after another along the graph; the step, at its turn, takes the result
// when its dependencies turned out unchanged too, and drops it otherwise
// (it is then updated without a Check). A dropped Check's log lines are
// dropped with it: they are held until the result is taken.
type prechecks struct {
	checks map[string]*precheck
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// precheck is the Check of one step, run ahead.
type precheck struct {
	done chan struct{}
	// cancel stops the Check once its result will not be taken.
	cancel context.CancelFunc
	ctx    context.Context
	drift  Drift
	err    error
	// events are the Check's log lines, held until the result is taken.
	mu     sync.Mutex
	events []Event
}

// eligibleForPrecheck says whether a step's decision will hinge on its
// Check when its dependencies are unchanged: its last apply succeeded
// with the inputs it has now.
func eligibleForPrecheck(n *Node, rec StepRecord, found bool) bool {
	return n.Step != nil && found && rec.Status == StatusSucceeded && rec.Fingerprint == n.Fingerprint
}

// startPrechecks starts the Checks of the eligible steps of order, at
// most parallelism at once, in order. Each gets the Env it would get at
// its turn with unchanged dependencies: its own and its dependencies'
// recorded outputs.
func startPrechecks(ctx context.Context, g *Graph, order []string, opts Options) *prechecks {
	ctx, cancel := context.WithCancel(ctx)
	p := &prechecks{checks: map[string]*precheck{}, cancel: cancel}
	var queue []*Node
	for _, id := range order {
		n := g.Node(id)
		rec, found := opts.Store.Record(id)
		if !eligibleForPrecheck(n, rec, found) {
			continue
		}
		pc := &precheck{done: make(chan struct{})}
		pc.ctx, pc.cancel = context.WithCancel(ctx)
		p.checks[id] = pc
		queue = append(queue, n)
	}
	runAhead(ctx, &p.wg, opts.Parallelism, queue, func(n *Node) { p.checks[n.ID].run(n, opts) })
	return p
}

// stop cancels the Checks still running (their results are no longer
// wanted: the run is over) and waits for them to return, so that none
// outlives the run.
func (p *prechecks) stop() {
	p.cancel()
	p.wg.Wait()
}

// drop cancels the Check of a step that will not take its result.
func (p *prechecks) drop(id string) {
	if pc := p.checks[id]; pc != nil {
		pc.cancel()
	}
}

func (pc *precheck) run(n *Node, opts Options) {
	defer close(pc.done)
	defer pc.cancel()
	ctx := pc.ctx
	if ctx.Err() != nil {
		pc.err = ctx.Err()
		return
	}
	defer func() {
		if r := recover(); r != nil {
			pc.err = fmt.Errorf("panic: %v\n%s", r, debug.Stack())
		}
	}()
	hold := func(ev Event) {
		pc.mu.Lock()
		pc.events = append(pc.events, ev)
		pc.mu.Unlock()
	}
	checkCtx, cancel, limit := opts.stepContext(ctx, n.Kind)
	defer cancel()
	pc.drift, pc.err = n.Step.Check(checkCtx, recordedEnv(n, opts, hold))
	pc.err = timedOut(ctx, checkCtx, limit, n.Kind, pc.err)
}

// checker is how a step at its turn is checked: with the result of its
// precheck when it has one (its held log lines then go to sink), else by
// its own Check.
func (p *prechecks) checker(n *Node, sink Sink) func(context.Context, *Env) (Drift, error) {
	pc := p.checks[n.ID]
	if pc == nil {
		return n.Step.Check
	}
	return func(ctx context.Context, _ *Env) (Drift, error) {
		select {
		case <-pc.done:
		case <-ctx.Done():
			return Drift{}, ctx.Err()
		}
		pc.mu.Lock()
		events := pc.events
		pc.events = nil
		pc.mu.Unlock()
		for _, ev := range events {
			sink(ev)
		}
		return pc.drift, pc.err
	}
}
