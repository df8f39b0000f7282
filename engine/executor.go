package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-multierror"
)

// DefaultParallelism is how many steps run at once unless told otherwise.
const DefaultParallelism = 10

// Options control a Run.
type Options struct {
	// Parallelism bounds the steps running at once; <= 0 means DefaultParallelism.
	Parallelism int
	// DryRun decides every step's action without applying anything: plan.
	DryRun bool
	// Check reads the live system (Step.Check) for steps whose inputs did
	// not change. Without it, decisions come from the plan and state alone
	// (plan --offline).
	Check bool
	// Store is the state to decide from and record into. Nil means an
	// empty state kept in memory.
	Store *Store
	// Dir is the state directory steps keep files under (Env.Dir).
	Dir string
	// Sink receives progress events; nil discards them.
	Sink Sink
	// Drain, when closed, stops launching new steps; running steps finish.
	// Cancelling the context passed to Run also stops launching, and
	// running steps see the cancellation and should abort.
	Drain <-chan struct{}
	// Forget drops the records of steps that are in the state but not in
	// the graph. Only set it when the graph is the whole plan's.
	Forget bool
	// Passing, when set, names the step kinds that exist only while
	// something is under way (an upgrade's snapshot, a canary's gate): a
	// record of such a kind whose step left the graph is dropped quietly
	// by an apply (never by a dry run), not shown and not a change, since
	// it made nothing to undo.
	Passing func(kind string) bool
	// Retire, when set, says how to undo a step that left the plan (or is
	// destroyed): it returns a Remover for the step's record, or nil when
	// there is nothing to undo. A record is dropped only once its Remove
	// succeeded.
	Retire func(id string, rec StepRecord) Remover
	// Destroy removes the graph's steps instead of applying them: each
	// recorded one is undone by its Remover (Retire) and its record
	// dropped, in reverse dependency order. With Forget, the records of
	// steps that left the plan go too.
	Destroy bool
	// StepTimeout bounds one run of a step of a kind, its Check and
	// Apply together, and one Remove of a record of that kind; the step
	// then fails with ErrStepTimeout. Nil or 0: no bound but the run's
	// context.
	StepTimeout func(kind string) time.Duration
	// Replace are the IDs of steps to run again whatever their record and
	// the live system say (Terraform's -replace): their Apply runs, and
	// what depends on them follows as for any change.
	Replace []string
	// Replay, when set, carries out the decisions of an earlier dry run
	// (a saved plan) instead of deciding: Check is not called, each step
	// runs with its recorded decision (Replace still reaches its Env).
	// Run refuses it before changing anything unless it matches the
	// graph and state (CheckReplay).
	Replay *Replay
}

// StepResult is what happened to one step.
type StepResult struct {
	ID   string
	Kind string
	// Fingerprint is the one of the step's inputs the decision was made
	// for.
	Fingerprint string
	Decision
	// Outcome is EventPlanned for a dry run, else one of EventUnchanged,
	// EventSucceeded, EventFailed, EventBlocked, EventCancelled.
	Outcome EventType
	Err     error
	Elapsed time.Duration
}

// Report is the result of a Run.
type Report struct {
	// Steps in topological order.
	Steps []StepResult
	// Removals are the records of steps that left the plan (or are
	// destroyed), in the order they are removed.
	Removals []RemovalResult
	// Forgotten are the IDs of Removals.
	Forgotten []string
	// Removing are the Removals whose effect is (or, for a dry run, would
	// be) undone by their Remover.
	Removing []string
	// Err joins every failure; nil when all went well.
	Err error
}

// Count returns how many steps were decided for action a.
func (r *Report) Count(a Action) int {
	n := 0
	for _, s := range r.Steps {
		if s.Action == a && s.Outcome != EventBlocked && s.Outcome != EventCancelled {
			n++
		}
	}
	if a == ActionForget {
		n += len(r.Forgotten)
	}
	return n
}

// Changes reports whether anything is (or was) to be created, updated or forgotten.
func (r *Report) Changes() bool {
	return r.Count(ActionCreate)+r.Count(ActionUpdate)+len(r.Forgotten) > 0
}

// completion is a worker's report to the scheduler.
type completion struct {
	id      string
	result  StepResult
	outputs map[string]string
	changed bool
	// applied: the step's Apply began.
	applied bool
}

// Run decides and, unless DryRun, applies every step of a valid graph:
// a step starts when all its dependencies are done; at most Parallelism
// run at once; a failure blocks only its dependents; every failure is
// reported in Report.Err.
func Run(ctx context.Context, g *Graph, opts Options) *Report {
	if opts.Parallelism <= 0 {
		opts.Parallelism = DefaultParallelism
	}
	if opts.Store == nil {
		opts.Store = NewMemoryStore()
	}
	if opts.Sink == nil {
		opts.Sink = Discard
	}
	s := &scheduler{
		ctx:        ctx,
		graph:      g,
		opts:       opts,
		dependents: g.dependents(),
		started:    time.Now(),
		pending:    make(map[string]int, g.Len()),
		results:    make(map[string]*StepResult, g.Len()),
		outputs:    make(map[string]map[string]string, g.Len()),
		changed:    make(map[string]bool),
		done:       make(chan completion),
	}
	return s.run()
}

type scheduler struct {
	ctx        context.Context
	graph      *Graph
	opts       Options
	dependents map[string][]string
	pending    map[string]int // unfinished dependencies per step
	results    map[string]*StepResult
	outputs    map[string]map[string]string
	changed    map[string]bool
	ready      []string
	running    int
	stopped    bool
	done       chan completion
	// removed is what the removals did before the steps ran.
	removed    []RemovalResult
	removeErrs *multierror.Error
	// pre are the Checks run ahead (prechecks); nil when the run does
	// not check the live system.
	pre *prechecks
	// applied is set once a step's Apply began (not a dry run).
	applied bool
	started time.Time
}

func (s *scheduler) run() *Report {
	if err := CheckReplay(s.graph, s.opts); err != nil {
		return &Report{Err: err}
	}
	order := s.graph.TopologicalOrder()
	// Steps that left the plan go first: what they made (a remote
	// secret of a cluster that left the mesh) must be gone before the
	// plan's steps run and verify the result.
	if passed := s.passed(); len(passed) > 0 && s.opts.Forget && !s.opts.DryRun {
		if err := s.opts.Store.Forget(passed...); err != nil {
			s.removeErrs = multierror.Append(s.removeErrs, fmt.Errorf("forget the records of %s: %w", strings.Join(passed, ", "), err))
		}
	}
	if leaving, why := s.leaving(); len(leaving) > 0 && s.ctx.Err() == nil {
		s.removed, s.removeErrs = newRemovals(s.ctx, s.opts, leaving, why).run()
	}
	if s.opts.Destroy {
		order = nil
	}
	if s.opts.Check && s.opts.Replay == nil && len(order) > 0 {
		s.pre = startPrechecks(s.ctx, s.graph, order, s.opts)
		defer s.pre.stop()
	}
	if len(order) > 0 && (s.opts.Check || !s.opts.DryRun) {
		// Not for an offline plan: it neither reads nor applies.
		defer startPreparing(s.ctx, s.graph, order, s.opts).stop()
	}
	for _, id := range order {
		s.pending[id] = len(s.graph.Node(id).DependsOn)
		if s.pending[id] == 0 {
			s.ready = append(s.ready, id)
		}
	}
	for {
		s.checkStop()
		for !s.stopped && s.running < s.opts.Parallelism && len(s.ready) > 0 {
			id := s.ready[0]
			s.ready = s.ready[1:]
			s.launch(id)
		}
		if s.running == 0 {
			break
		}
		select {
		case c := <-s.done:
			s.running--
			s.finish(c)
		case <-s.ctx.Done():
			s.stopped = true
			s.waitOnly()
		case <-s.opts.Drain:
			s.stopped = true
			s.waitOnly()
		}
	}
	return s.report(order)
}

// waitOnly collects running steps after a stop; nothing new is launched.
func (s *scheduler) waitOnly() {
	for s.running > 0 {
		c := <-s.done
		s.running--
		s.finish(c)
	}
}

func (s *scheduler) checkStop() {
	if s.stopped {
		return
	}
	if s.ctx.Err() != nil {
		s.stopped = true
		return
	}
	select {
	case <-s.opts.Drain:
		s.stopped = true
	default:
	}
}

func (s *scheduler) launch(id string) {
	n := s.graph.Node(id)
	var changedDeps []string
	depOutputs := make(map[string]map[string]string, len(n.DependsOn))
	for _, dep := range n.DependsOn {
		if s.changed[dep] {
			changedDeps = append(changedDeps, dep)
		}
		depOutputs[dep] = s.outputs[dep]
	}
	if len(changedDeps) > 0 && s.pre != nil {
		s.pre.drop(id) // updated without a Check
	}
	s.running++
	go func() {
		s.done <- s.work(n, changedDeps, depOutputs)
	}()
}

// checker is how a step is checked: not at all without Options.Check,
// else with its precheck's result when it has one.
func (s *scheduler) checker(n *Node) checkFunc {
	switch {
	case !s.opts.Check || n.Step == nil:
		return nil
	case s.pre != nil:
		return s.pre.checker(n, s.opts.Sink)
	}
	return n.Step.Check
}

// work decides one step and, unless this is a dry run, applies it. It runs
// on its own goroutine and touches the scheduler only through its result.
func (s *scheduler) work(n *Node, changedDeps []string, depOutputs map[string]map[string]string) (c completion) {
	start := time.Now()
	c = completion{id: n.ID, result: StepResult{ID: n.ID, Kind: n.Kind, Fingerprint: n.Fingerprint}}
	emit := func(t EventType, msg string, err error) {
		ev := Event{Time: time.Now(), Type: t, Step: n.ID, Kind: n.Kind, Action: c.result.Action, Message: msg}
		if t != EventPlanned && t != EventStarted {
			ev.Elapsed = time.Since(start)
		}
		if err != nil {
			ev.Error = err.Error()
		}
		s.opts.Sink(ev)
	}
	fail := func(err error) completion {
		c.result.Outcome, c.result.Err, c.result.Elapsed = EventFailed, err, time.Since(start)
		emit(EventFailed, "", err)
		return c
	}
	defer func() {
		if p := recover(); p != nil {
			c = fail(fmt.Errorf("panic: %v\n%s", p, debug.Stack()))
		}
	}()

	rec, found := s.opts.Store.Record(n.ID)
	var recp *StepRecord
	if found {
		recp = &rec
	}
	env := NewEnv(n.ID, s.opts.Dir, rec.Outputs, depOutputs, s.opts.Sink)
	ctx, cancel, limit := s.opts.stepContext(s.ctx, n.Kind)
	defer cancel()
	d, err := s.decision(ctx, n, recp, changedDeps, env)
	if err != nil {
		return fail(timedOut(s.ctx, ctx, limit, n.Kind, err))
	}
	c.result.Decision = d
	emit(EventPlanned, d.Reason, nil)
	switch {
	case s.opts.DryRun:
		c.result.Outcome, c.outputs = EventPlanned, rec.Outputs
		c.changed = d.Action != ActionNoChange
		return c
	case d.Action == ActionNoChange:
		if found && !slices.Equal(rec.DependsOn, n.DependsOn) {
			// A record of an older mcplan, or an edge the plan's
			// topology gained: removals need the current ones.
			if err := s.opts.Store.Update(n.ID, func(r *StepRecord) { r.DependsOn = slices.Clone(n.DependsOn) }); err != nil {
				return fail(err)
			}
		}
		c.result.Outcome, c.outputs, c.result.Elapsed = EventUnchanged, rec.Outputs, time.Since(start)
		emit(EventUnchanged, d.Reason, nil)
		return c
	case n.Step == nil:
		return fail(fmt.Errorf("%s: %w: no implementation for this step kind", n.Kind, ErrNotImplemented))
	}

	if err := s.opts.Store.Update(n.ID, func(r *StepRecord) {
		r.Kind, r.Status, r.StartedAt, r.FinishedAt, r.Waits = n.Kind, StatusRunning, start.UTC(), time.Time{}, nil
		r.DependsOn = slices.Clone(n.DependsOn)
	}); err != nil {
		return fail(err)
	}
	emit(EventStarted, d.Reason, nil)
	c.applied = true
	applyErr := timedOut(s.ctx, ctx, limit, n.Kind, n.Step.Apply(ctx, env))
	finished := time.Now().UTC()
	if err := s.opts.Store.Update(n.ID, func(r *StepRecord) {
		r.FinishedAt, r.Waits = finished, env.Waits()
		if applyErr != nil {
			r.Status, r.Error = StatusFailed, applyErr.Error()
			return
		}
		r.Status, r.Error, r.Fingerprint, r.Outputs = StatusSucceeded, "", n.Fingerprint, env.Outputs()
	}); err != nil && applyErr == nil {
		applyErr = err
	}
	if applyErr != nil {
		return fail(applyErr)
	}
	c.result.Outcome, c.result.Elapsed, c.outputs, c.changed = EventSucceeded, time.Since(start), env.Outputs(), true
	emit(EventSucceeded, "", nil)
	return c
}

// decision is a step's decision: the replayed one, or decide's, made an
// update when the step is to be replaced. A step to replace gets
// env.Replace once decided (its Check does not see it).
func (s *scheduler) decision(ctx context.Context, n *Node, rec *StepRecord, changedDeps []string, env *Env) (Decision, error) {
	replace := slices.Contains(s.opts.Replace, n.ID)
	if s.opts.Replay != nil {
		env.Replace = replace
		return s.opts.Replay.Steps[n.ID].Decision, nil
	}
	d, err := decide(ctx, n, rec, changedDeps, s.checker(n), env)
	if err != nil {
		return Decision{}, err
	}
	if replace {
		env.Replace = true
		if d.Action == ActionNoChange {
			d = Decision{Action: ActionUpdate, Reason: "replaced on request (--replace)"}
		}
	}
	return d, nil
}

func (s *scheduler) finish(c completion) {
	r := c.result
	s.applied = s.applied || c.applied
	s.results[c.id] = &r
	s.outputs[c.id] = c.outputs
	if c.changed {
		s.changed[c.id] = true
	}
	if r.Outcome == EventFailed {
		s.block(c.id)
		return
	}
	for _, d := range s.dependents[c.id] {
		if s.results[d] != nil {
			continue // blocked by another dependency
		}
		s.pending[d]--
		if s.pending[d] == 0 {
			s.ready = append(s.ready, d)
		}
	}
}

// block marks everything depending on a failed step as blocked.
func (s *scheduler) block(failed string) {
	queue := []string{failed}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, d := range s.dependents[cur] {
			if s.results[d] != nil {
				continue
			}
			n := s.graph.Node(d)
			msg := fmt.Sprintf("not run: %s failed", failed)
			if cur != failed {
				msg = fmt.Sprintf("not run: %s was not run", cur)
			}
			s.results[d] = &StepResult{ID: d, Kind: n.Kind, Outcome: EventBlocked, Decision: Decision{Reason: msg}}
			s.opts.Sink(Event{Time: time.Now(), Type: EventBlocked, Step: d, Kind: n.Kind, Message: msg})
			queue = append(queue, d)
		}
	}
}

func (s *scheduler) report(order []string) *Report {
	rep := &Report{Steps: make([]StepResult, 0, len(order)), Removals: s.removed}
	for _, r := range s.removed {
		rep.Forgotten = append(rep.Forgotten, r.ID)
		if r.HasRemover {
			rep.Removing = append(rep.Removing, r.ID)
		}
	}
	errs := s.removeErrs
	cancelled := 0
	for _, r := range s.removed {
		if r.Outcome == EventCancelled {
			cancelled++
		}
	}
	for _, id := range order {
		r := s.results[id]
		if r == nil {
			n := s.graph.Node(id)
			r = &StepResult{ID: id, Kind: n.Kind, Outcome: EventCancelled, Decision: Decision{Reason: "not started: the run was stopped"}}
			s.opts.Sink(Event{Time: time.Now(), Type: EventCancelled, Step: id, Kind: n.Kind, Message: r.Reason})
			cancelled++
		}
		if r.Outcome == EventFailed {
			errs = multierror.Append(errs, fmt.Errorf("step %s: %w", id, r.Err))
		}
		rep.Steps = append(rep.Steps, *r)
	}
	if cancelled > 0 {
		cause := "stopped"
		if err := s.ctx.Err(); err != nil {
			cause = err.Error()
		}
		errs = multierror.Append(errs, fmt.Errorf("%w (%s): %d steps not started; apply again to resume", ErrInterrupted, cause, cancelled))
	}
	if s.applied {
		// What graph --timeline shows: the last run that applied something.
		if err := s.opts.Store.RecordApply(s.started, time.Now()); err != nil {
			errs = multierror.Append(errs, err)
		}
	}
	rep.Err = errs.ErrorOrNil()
	return rep
}

// leaving are the records to remove before (or, destroying, instead of)
// the plan's steps: with Forget, those of steps no longer in the graph;
// with Destroy, also those of the graph's steps. why names it for
// messages.
func (s *scheduler) leaving() (ids []string, why string) {
	why = "left the plan"
	for _, id := range s.opts.Store.IDs() {
		inGraph := s.graph.Node(id) != nil
		if !inGraph && s.opts.Forget && s.isPassing(id) {
			continue
		}
		if (!inGraph && s.opts.Forget) || (inGraph && s.opts.Destroy) {
			ids = append(ids, id)
		}
	}
	if s.opts.Destroy {
		why = "destroyed"
	}
	return ids, why
}

// passed are the records of passing kinds (Options.Passing) whose steps
// left the graph (dropped only when the graph is the whole plan's:
// Options.Forget).
func (s *scheduler) passed() []string {
	var ids []string
	for _, id := range s.opts.Store.IDs() {
		if s.graph.Node(id) == nil && s.isPassing(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *scheduler) isPassing(id string) bool {
	if s.opts.Passing == nil {
		return false
	}
	rec, ok := s.opts.Store.Record(id)
	return ok && s.opts.Passing(rec.Kind)
}

// ErrInterrupted is part of a Report's error when the run was stopped
// before every step ran.
var ErrInterrupted = errors.New("interrupted")
