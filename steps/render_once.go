package steps

import (
	"context"
	"encoding/json"
	"sync"

	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/steps/istiorender"
)

// renderOnce renders each IstioOperator once per run: a step's Check and
// its Apply (a step whose inputs changed is checked, then applied) share
// one render. A failed render is not kept.
type renderOnce struct {
	mu    sync.Mutex
	byKey map[string]*rendering
}

type rendering struct {
	done chan struct{}
	m    *istiorender.Manifest
	err  error
}

// render is istiorender.Render of op, once per run for equal operators.
// The Manifest is shared: callers must not modify its objects. A nil
// Runtime (tests of one step) renders every time.
func (r *Runtime) render(ctx context.Context, op map[string]any) (*istiorender.Manifest, error) {
	if r == nil {
		return istiorender.Render(ctx, op)
	}
	data, err := json.Marshal(op)
	if err != nil {
		return istiorender.Render(ctx, op)
	}
	key := digest.SHA256Hex(data)
	r.renders.mu.Lock()
	if r.renders.byKey == nil {
		r.renders.byKey = map[string]*rendering{}
	}
	if got := r.renders.byKey[key]; got != nil {
		r.renders.mu.Unlock()
		select {
		case <-got.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if got.err == nil {
			return got.m, nil
		}
		return r.render(ctx, op) // the other render failed (its context ended): render anew
	}
	mine := &rendering{done: make(chan struct{})}
	r.renders.byKey[key] = mine
	r.renders.mu.Unlock()
	mine.m, mine.err = istiorender.Render(ctx, op)
	if mine.err != nil {
		r.renders.mu.Lock()
		delete(r.renders.byKey, key)
		r.renders.mu.Unlock()
	}
	close(mine.done)
	return mine.m, mine.err
}
