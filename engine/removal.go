package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/hashicorp/go-multierror"
)

// Describer is a Remover that can say, before it runs and without
// reading the live system, what it will do, as a phrase starting with a
// verb ("deletes Secret istio-system/cacerts in cluster1"); plan shows it
// on the step's "-" line. env.Previous holds the step's recorded outputs.
type Describer interface {
	Describe(env *Env) string
}

// RemovalResult is what happened (or, for a dry run, would happen) to the
// record of a step that leaves: what it made undone by its Remover, then
// the record dropped; or, with no Remover, the record only forgotten.
type RemovalResult struct {
	ID   string
	Kind string
	// Removes says what the Remover does ("deletes ..."); "" when there
	// is no Remover (the record is only forgotten) or it does not say.
	Removes string
	// HasRemover is true when what the step made is undone.
	HasRemover bool
	// Outcome is EventPlanned for a dry run, else EventSucceeded,
	// EventFailed, EventBlocked or EventCancelled.
	Outcome EventType
	Err     error
	Elapsed time.Duration
}

// leaving is one record to remove.
type leaving struct {
	id      string
	rec     StepRecord
	remover Remover
	// deps are the leaving records it depended on: they are removed after
	// it.
	deps []string
}

// removals removes the records of ids in reverse dependency order (a step
// that depended on another is removed first, as Terraform destroys),
// independent ones in parallel, at most Parallelism at once. A failed
// removal blocks the removal of what it depended on; its record stays,
// marked, so the next run resumes it. A record is dropped only once its
// Remove succeeded. The results are in the order the removals may run.
type removals struct {
	ctx     context.Context
	opts    Options
	why     string // "left the plan" or "destroyed", for messages
	items   map[string]*leaving
	order   []string            // a valid removal order
	waiters map[string][]string // id -> leaving records that wait for it (its deps)
	pending map[string]int      // id -> leaving records that depend on it and are not removed yet
	results map[string]*RemovalResult
}

// newRemovals prepares the removal of ids' records; retire gives each its
// Remover (nil: only forgotten).
func newRemovals(ctx context.Context, opts Options, ids []string, why string) *removals {
	r := &removals{ctx: ctx, opts: opts, why: why, items: map[string]*leaving{}, waiters: map[string][]string{},
		pending: map[string]int{}, results: map[string]*RemovalResult{}}
	for _, id := range ids {
		rec, ok := opts.Store.Record(id)
		if !ok {
			continue
		}
		l := &leaving{id: id, rec: rec}
		if opts.Retire != nil {
			l.remover = opts.Retire(id, rec)
		}
		r.items[id] = l
	}
	for _, l := range r.items {
		for _, d := range l.rec.DependsOn {
			if _, ok := r.items[d]; ok && d != l.id && !slices.Contains(l.deps, d) {
				l.deps = append(l.deps, d)
				r.pending[d]++
			}
		}
	}
	r.order = r.removalOrder()
	return r
}

// removalOrder is the reverse of a topological order of the leaving
// records (dependents first), ties broken by ID. Records of a cycle,
// which a valid graph never recorded, come last in ID order.
func (r *removals) removalOrder() []string {
	pending := make(map[string]int, len(r.items))
	var ready, order []string
	for id := range r.items {
		pending[id] = r.pending[id]
		if pending[id] == 0 {
			ready = append(ready, id)
		}
	}
	for len(ready) > 0 {
		slices.Sort(ready)
		id := ready[0]
		ready = ready[1:]
		order = append(order, id)
		for _, d := range r.items[id].deps {
			pending[d]--
			if pending[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	var rest []string
	for id := range r.items {
		if !slices.Contains(order, id) {
			rest = append(rest, id)
		}
	}
	slices.Sort(rest)
	return append(order, rest...)
}

// removalDone is a worker's report.
type removalDone struct {
	id     string
	result RemovalResult
}

// run removes (or, for a dry run, plans the removal of) every record.
func (r *removals) run() ([]RemovalResult, *multierror.Error) {
	var errs *multierror.Error
	done := make(chan removalDone)
	running := 0
	var ready []string
	for _, id := range r.order {
		if r.pending[id] == 0 {
			ready = append(ready, id)
		}
	}
	stopped := false
	for {
		if !stopped && r.stopRequested() {
			stopped = true
		}
		for !stopped && running < r.opts.Parallelism && len(ready) > 0 {
			id := ready[0]
			ready = ready[1:]
			running++
			go func(l *leaving) { done <- removalDone{id: l.id, result: r.remove(l)} }(r.items[id])
		}
		if running == 0 {
			break
		}
		c := <-done
		running--
		res := c.result
		r.results[c.id] = &res
		if res.Outcome == EventFailed {
			errs = multierror.Append(errs, fmt.Errorf("step %s (%s): remove: %w", c.id, r.why, res.Err))
			r.block(c.id)
			continue
		}
		for _, d := range r.items[c.id].deps {
			r.pending[d]--
			if r.pending[d] == 0 && r.results[d] == nil {
				ready = append(ready, d)
			}
		}
	}
	out := make([]RemovalResult, 0, len(r.order))
	for _, id := range r.order {
		if res := r.results[id]; res != nil {
			out = append(out, *res)
			continue
		}
		l := r.items[id]
		res := RemovalResult{ID: id, Kind: l.rec.Kind, Removes: r.describe(l), HasRemover: l.remover != nil, Outcome: EventCancelled}
		r.opts.Sink(Event{Time: time.Now(), Type: EventCancelled, Step: id, Kind: l.rec.Kind, Action: ActionForget, Message: "not removed: the run was stopped"})
		out = append(out, res)
	}
	return out, errs
}

func (r *removals) stopRequested() bool {
	if r.ctx.Err() != nil {
		return true
	}
	select {
	case <-r.opts.Drain:
		return true
	default:
		return false
	}
}

// block marks what a failed removal depended on as not removed: it must
// outlive the failed one.
func (r *removals) block(failed string) {
	queue := []string{failed}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range r.items[cur].deps {
			if r.results[d] != nil {
				continue
			}
			l := r.items[d]
			msg := fmt.Sprintf("not removed: the removal of %s failed", failed)
			if cur != failed {
				msg = fmt.Sprintf("not removed: %s was not removed", cur)
			}
			r.results[d] = &RemovalResult{ID: d, Kind: l.rec.Kind, Removes: r.describe(l), HasRemover: l.remover != nil, Outcome: EventBlocked}
			r.opts.Sink(Event{Time: time.Now(), Type: EventBlocked, Step: d, Kind: l.rec.Kind, Action: ActionForget, Message: msg})
			queue = append(queue, d)
		}
	}
}

// describe is what l's Remover says it deletes.
func (r *removals) describe(l *leaving) string {
	d, ok := l.remover.(Describer)
	if !ok {
		return ""
	}
	return d.Describe(NewEnv(l.id, r.opts.Dir, l.rec.Outputs, nil, Discard))
}

// remove undoes one step's effect and drops its record. It runs on its
// own goroutine.
func (r *removals) remove(l *leaving) (res RemovalResult) {
	start := time.Now()
	res = RemovalResult{ID: l.id, Kind: l.rec.Kind, Removes: r.describe(l), HasRemover: l.remover != nil}
	emit := func(t EventType, msg string, err error) {
		ev := Event{Time: time.Now(), Type: t, Step: l.id, Kind: l.rec.Kind, Action: ActionForget, Message: msg}
		if t != EventPlanned && t != EventStarted {
			ev.Elapsed = time.Since(start)
		}
		if err != nil {
			ev.Error = err.Error()
		}
		r.opts.Sink(ev)
	}
	fail := func(err error) RemovalResult {
		res.Outcome, res.Err, res.Elapsed = EventFailed, err, time.Since(start)
		emit(EventFailed, "", err)
		return res
	}
	defer func() {
		if p := recover(); p != nil {
			res = fail(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
	}()
	if r.opts.DryRun {
		res.Outcome = EventPlanned
		emit(EventPlanned, res.Removes, nil)
		return res
	}
	msg := "removed from state (" + r.why + "; nothing on the hosts was changed)"
	if l.remover != nil {
		// The record says a removal is under way before anything is
		// deleted, so an interrupted one is resumed, not forgotten.
		if err := r.opts.Store.Update(l.id, func(rec *StepRecord) {
			rec.Status, rec.StartedAt, rec.FinishedAt, rec.Error = StatusRemoving, start.UTC(), time.Time{}, ""
		}); err != nil {
			return fail(err)
		}
		emit(EventStarted, res.Removes, nil)
		env := NewEnv(l.id, r.opts.Dir, l.rec.Outputs, nil, r.opts.Sink)
		ctx, cancel, limit := r.opts.stepContext(r.ctx, l.rec.Kind)
		err := timedOut(r.ctx, ctx, limit, l.rec.Kind, l.remover.Remove(ctx, env))
		cancel()
		if err != nil {
			_ = r.opts.Store.Update(l.id, func(rec *StepRecord) { rec.Error, rec.FinishedAt = err.Error(), time.Now().UTC() })
			return fail(err)
		}
		msg = "removed what it made and its record (" + r.why + ")"
	}
	if err := r.opts.Store.Forget(l.id); err != nil {
		return fail(err)
	}
	res.Outcome, res.Elapsed = EventSucceeded, time.Since(start)
	emit(EventSucceeded, msg, nil)
	return res
}
