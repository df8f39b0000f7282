package engine

import (
	"context"
	"sync"
)

// What the engine runs ahead of a step's turn (prechecks, preparing)
// shares how it is run and the Env it is given.

// runAhead calls fn for each node on a goroutine of its own, in order, at
// most limit at once, each tracked by wg. Once ctx is done the rest are
// still called, one at a time: they see ctx and return at once.
func runAhead(ctx context.Context, wg *sync.WaitGroup, limit int, nodes []*Node, fn func(*Node)) {
	slots := make(chan struct{}, max(limit, 1))
	wg.Add(len(nodes))
	go func() {
		for _, n := range nodes {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				slots <- struct{}{}
			}
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				fn(n)
			}()
		}
	}()
}

// recordedEnv is the Env a step gets at its turn when its dependencies
// are unchanged: its own and its dependencies' recorded outputs.
func recordedEnv(n *Node, opts Options, sink Sink) *Env {
	rec, _ := opts.Store.Record(n.ID)
	deps := make(map[string]map[string]string, len(n.DependsOn))
	for _, dep := range n.DependsOn {
		r, _ := opts.Store.Record(dep)
		deps[dep] = r.Outputs
	}
	return NewEnv(n.ID, opts.Dir, rec.Outputs, deps, sink)
}
