package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeStep records what the executor asked of it.
type fakeStep struct {
	id       string
	log      *callLog
	applyErr error
	drift    *Drift        // Check's answer; nil means in sync
	gate     chan struct{} // when set, Apply waits for it
	started  chan struct{} // when set, closed as Apply starts
	output   string
	applies  atomic.Int32
	checks   atomic.Int32
}

type callLog struct {
	mu      sync.Mutex
	calls   []string
	running int
	peak    int
}

func (l *callLog) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, s)
}

func (l *callLog) enter() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running++
	l.peak = max(l.peak, l.running)
}

func (l *callLog) leave() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.running--
}

func (f *fakeStep) Check(ctx context.Context, env *Env) (Drift, error) {
	f.checks.Add(1)
	if f.drift != nil {
		return *f.drift, nil
	}
	return InSync(), nil
}

func (f *fakeStep) Apply(ctx context.Context, env *Env) error {
	f.applies.Add(1)
	f.log.enter()
	defer f.log.leave()
	f.log.add("start " + f.id)
	if f.started != nil {
		close(f.started)
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.log.add("end " + f.id)
	if f.applyErr != nil {
		return f.applyErr
	}
	env.SetOutput("value", f.output)
	return nil
}

// world is a graph of fake steps with their edges.
type world struct {
	log   *callLog
	steps map[string]*fakeStep
	edges map[string][]string
	order []string
	input map[string]string // per-step input, part of the fingerprint
}

func newWorld(edges map[string][]string, order ...string) *world {
	w := &world{log: &callLog{}, steps: map[string]*fakeStep{}, edges: edges, order: order, input: map[string]string{}}
	for _, id := range order {
		w.steps[id] = &fakeStep{id: id, log: w.log, output: "out-" + id}
	}
	return w
}

func (w *world) graph(t testing.TB) *Graph {
	t.Helper()
	g := NewGraph()
	for _, id := range w.order {
		fp, err := Fingerprint("fake", w.input[id])
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(Node{ID: id, Kind: "fake", DependsOn: w.edges[id], Fingerprint: fp, Step: w.steps[id]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	return g
}

func (w *world) resetCounts() {
	for _, s := range w.steps {
		s.applies.Store(0)
		s.checks.Store(0)
	}
	w.log.mu.Lock()
	w.log.calls = nil
	w.log.mu.Unlock()
}

func (w *world) applied() []string {
	var out []string
	for _, id := range w.order {
		if w.steps[id].applies.Load() > 0 {
			out = append(out, id)
		}
	}
	return out
}

func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func outcomes(r *Report) map[string]EventType {
	m := map[string]EventType{}
	for _, s := range r.Steps {
		m[s.ID] = s.Outcome
	}
	return m
}

var diamond = map[string][]string{"b": {"a"}, "c": {"a"}, "d": {"b", "c"}}

func TestRunAppliesInDependencyOrder(t *testing.T) {
	w := newWorld(diamond, "a", "b", "c", "d")
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, t.TempDir())})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	pos := map[string]int{}
	for i, c := range w.log.calls {
		pos[c] = i
	}
	for id, deps := range diamond {
		for _, d := range deps {
			if pos["end "+d] > pos["start "+id] {
				t.Errorf("%s started before its dependency %s ended: %v", id, d, w.log.calls)
			}
		}
	}
	if got := rep.Count(ActionCreate); got != 4 {
		t.Errorf("Count(create) = %d, want 4", got)
	}
}

func TestRunBoundsParallelism(t *testing.T) {
	for _, p := range []int{1, 3, 8} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			var order []string
			for i := range 20 {
				order = append(order, fmt.Sprintf("s%02d", i))
			}
			w := newWorld(nil, order...)
			gate := make(chan struct{})
			for _, s := range w.steps {
				s.gate = gate
			}
			done := make(chan *Report)
			go func() { done <- Run(context.Background(), w.graph(t), Options{Parallelism: p}) }()
			// Wait until the executor has filled its slots (or more: a
			// broken bound fails here rather than hanging), give it time
			// to start more than it may, then release.
			running := func() int {
				w.log.mu.Lock()
				defer w.log.mu.Unlock()
				return w.log.running
			}
			deadline := time.Now().Add(10 * time.Second)
			for running() < p {
				if time.Now().After(deadline) {
					close(gate)
					t.Fatalf("%d steps running after 10 s, want %d", running(), p)
				}
				time.Sleep(time.Millisecond)
			}
			time.Sleep(50 * time.Millisecond)
			if r := running(); r != p {
				t.Errorf("%d steps running at once, want %d", r, p)
			}
			close(gate)
			rep := <-done
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if w.log.peak != p {
				t.Errorf("peak concurrency = %d, want %d", w.log.peak, p)
			}
		})
	}
}

func TestRunFailureBlocksOnlyDependentsAndJoinsErrors(t *testing.T) {
	edges := map[string][]string{"b": {"a"}, "c": {"b"}, "y": {"x"}, "z": {"x", "c"}}
	w := newWorld(edges, "a", "b", "c", "x", "y", "z", "q")
	w.steps["b"].applyErr = errors.New("host vm1: k3s install: exit status 1")
	w.steps["q"].applyErr = errors.New("disk full")
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, t.TempDir())})
	want := map[string]EventType{
		"a": EventSucceeded, "b": EventFailed, "c": EventBlocked,
		"x": EventSucceeded, "y": EventSucceeded, "z": EventBlocked, "q": EventFailed,
	}
	if got := outcomes(rep); !maps.Equal(got, want) {
		t.Errorf("outcomes = %v, want %v", got, want)
	}
	if rep.Err == nil {
		t.Fatal("no error reported")
	}
	for _, frag := range []string{"step b: host vm1: k3s install: exit status 1", "step q: disk full"} {
		if !strings.Contains(rep.Err.Error(), frag) {
			t.Errorf("error %q does not contain %q", rep.Err, frag)
		}
	}
	if slices.Contains(w.applied(), "c") || slices.Contains(w.applied(), "z") {
		t.Errorf("blocked steps ran: %v", w.applied())
	}
}

func TestReapplyUnchangedRunsNothing(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(diamond, "a", "b", "c", "d")
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	w.resetCounts()
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got := w.applied(); len(got) != 0 {
		t.Errorf("second apply ran %v, want nothing", got)
	}
	for id, s := range w.steps {
		if s.checks.Load() != 1 {
			t.Errorf("%s checked %d times, want 1", id, s.checks.Load())
		}
	}
	if rep.Changes() {
		t.Errorf("report says changes: %+v", rep.Steps)
	}
}

func TestChangedInputRerunsStepAndDependents(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(diamond, "a", "b", "c", "d")
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	w.resetCounts()
	w.input["b"] = "new k3s arg"
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got, want := w.applied(), []string{"b", "d"}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	reasons := map[string]string{}
	for _, s := range rep.Steps {
		reasons[s.ID] = s.Reason
	}
	if !strings.HasPrefix(reasons["b"], "inputs changed") || !strings.Contains(reasons["d"], "depends on b") {
		t.Errorf("reasons = %v", reasons)
	}
}

func TestDriftRerunsStep(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(diamond, "a", "b", "c", "d")
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	w.resetCounts()
	w.steps["c"].drift = &Drift{Reason: "secret cacerts missing"}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	if got, want := w.applied(), []string{"c", "d"}; !slices.Equal(got, want) {
		t.Errorf("applied %v, want %v", got, want)
	}
	if rep.Steps[2].Reason != "drift: secret cacerts missing" {
		t.Errorf("reason = %q", rep.Steps[2].Reason)
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(diamond, "a", "b", "c", "d")
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), DryRun: true, Check: true})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got := w.applied(); len(got) != 0 {
		t.Errorf("dry run applied %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
		t.Errorf("dry run wrote state: %v", err)
	}
	if rep.Count(ActionCreate) != 4 || !rep.Changes() {
		t.Errorf("plan = %+v", rep.Steps)
	}
}

func TestDrainStopsLaunchingAndApplyResumes(t *testing.T) {
	dir := t.TempDir()
	edges := map[string][]string{"b": {"a"}, "c": {"b"}}
	w := newWorld(edges, "a", "b", "c")
	gate := make(chan struct{})
	w.steps["b"].gate, w.steps["b"].started = gate, make(chan struct{})
	drain := make(chan struct{})
	done := make(chan *Report)
	go func() {
		done <- Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Drain: drain})
	}()
	<-w.steps["b"].started
	close(drain) // first Ctrl-C: b is running, c not started
	close(gate)  // b finishes normally
	rep := <-done
	want := map[string]EventType{"a": EventSucceeded, "b": EventSucceeded, "c": EventCancelled}
	if got := outcomes(rep); !maps.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	if !errors.Is(rep.Err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", rep.Err)
	}
	w.resetCounts()
	w.steps["b"].gate = nil
	rep = Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got := w.applied(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("resume applied %v, want [c]", got)
	}
}

func TestCancelAbortsRunningStepsAndRecordsThem(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(map[string][]string{"b": {"a"}}, "a", "b")
	w.steps["a"].gate, w.steps["a"].started = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *Report)
	go func() { done <- Run(ctx, w.graph(t), Options{Store: openStore(t, dir)}) }()
	<-w.steps["a"].started
	cancel()
	rep := <-done
	want := map[string]EventType{"a": EventFailed, "b": EventBlocked}
	if got := outcomes(rep); !maps.Equal(got, want) {
		t.Fatalf("outcomes = %v, want %v", got, want)
	}
	rec, _ := openStore(t, dir).Record("a")
	if rec.Status != StatusFailed || !strings.Contains(rec.Error, "context canceled") {
		t.Errorf("record of a = %+v", rec)
	}
}

func TestInterruptedStepIsRerun(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(nil, "a", "b")
	store := openStore(t, dir)
	// What a SIGKILL during a's Apply leaves behind.
	if err := store.Update("a", func(r *StepRecord) { r.Kind, r.Status = "fake", StatusRunning }); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), DryRun: true})
	if rep.Steps[0].Action != ActionCreate || rep.Steps[0].Reason != "interrupted during its first apply" {
		t.Errorf("plan for a = %+v", rep.Steps[0])
	}
}

func TestOutputsFlowToDependentsAndPreviousSurvivesFailure(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(map[string][]string{"b": {"a"}}, "a", "b")
	var seen string
	probe := &probeStep{fn: func(env *Env) error {
		seen, _ = env.Output("a", "value")
		return nil
	}}
	g := w.graph(t)
	g.Node("b").Step = probe
	if rep := Run(context.Background(), g, Options{Store: openStore(t, dir)}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if seen != "out-a" {
		t.Errorf("b saw output %q of a, want out-a", seen)
	}
	// a fails on its next (changed) apply: its earlier outputs stay.
	w.input["a"] = "changed"
	w.steps["a"].applyErr = errors.New("boom")
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir)})
	rec, _ := openStore(t, dir).Record("a")
	if rec.Outputs["value"] != "out-a" || rec.Status != StatusFailed {
		t.Errorf("record of a after failure = %+v", rec)
	}
}

type probeStep struct{ fn func(*Env) error }

func (p *probeStep) Check(context.Context, *Env) (Drift, error) { return InSync(), nil }
func (p *probeStep) Apply(_ context.Context, env *Env) error    { return p.fn(env) }

func TestPanicInStepIsAFailure(t *testing.T) {
	w := newWorld(nil, "a")
	g := w.graph(t)
	g.Node("a").Step = &probeStep{fn: func(*Env) error { panic("oops") }}
	rep := Run(context.Background(), g, Options{})
	if rep.Steps[0].Outcome != EventFailed || !strings.Contains(rep.Err.Error(), "panic: oops") {
		t.Errorf("report = %+v, err %v", rep.Steps, rep.Err)
	}
}

func TestNotImplementedStepFailsLoudly(t *testing.T) {
	g := NewGraph()
	if err := g.Add(Node{ID: "host/vm1/k3s/server", Kind: "k3s/server"}); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), g, Options{})
	if !errors.Is(rep.Err, ErrNotImplemented) {
		t.Fatalf("err = %v, want ErrNotImplemented", rep.Err)
	}
}

func TestForgetDropsRecordsOfRemovedSteps(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(nil, "a", "b")
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true})
	w2 := newWorld(nil, "a")
	plan := Run(context.Background(), w2.graph(t), Options{Store: openStore(t, dir), Forget: true, DryRun: true})
	if !slices.Equal(plan.Forgotten, []string{"b"}) || plan.Count(ActionForget) != 1 {
		t.Fatalf("plan forgotten = %v", plan.Forgotten)
	}
	Run(context.Background(), w2.graph(t), Options{Store: openStore(t, dir), Forget: true})
	if ids := openStore(t, dir).IDs(); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("state holds %v after forget, want [a]", ids)
	}
}

// removerStep records that it was asked to undo itself.
type removerStep struct {
	removed *[]string
	err     error
}

func (r removerStep) Remove(_ context.Context, env *Env) error {
	if r.err != nil {
		return r.err
	}
	v, _ := env.Previous("value")
	*r.removed = append(*r.removed, env.StepID+"="+v)
	return nil
}

func TestRetireRemovesWhatLeftThePlan(t *testing.T) {
	dir := t.TempDir()
	Run(context.Background(), newWorld(nil, "a", "b", "c").graph(t), Options{Store: openStore(t, dir), Forget: true})
	var removed []string
	retire := func(id string, rec StepRecord) Remover {
		switch id {
		case "b":
			return removerStep{removed: &removed}
		case "c":
			return removerStep{removed: &removed, err: errors.New("cluster unreachable")}
		}
		return nil
	}
	w := newWorld(nil, "a")
	plan := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, DryRun: true, Retire: retire})
	if !slices.Equal(plan.Forgotten, []string{"b", "c"}) || !slices.Equal(plan.Removing, []string{"b", "c"}) || len(removed) != 0 {
		t.Fatalf("dry run: forgotten %v removing %v removed %v", plan.Forgotten, plan.Removing, removed)
	}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, Retire: retire})
	if !slices.Equal(removed, []string{"b=out-b"}) {
		t.Errorf("removed %v, want b with its recorded outputs", removed)
	}
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "step c (left the plan): remove: cluster unreachable") {
		t.Errorf("err = %v", rep.Err)
	}
	if ids := openStore(t, dir).IDs(); !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("state holds %v; c's record must stay until its removal succeeds", ids)
	}
}

func TestRetireRunsBeforeThePlansSteps(t *testing.T) {
	dir := t.TempDir()
	Run(context.Background(), newWorld(nil, "a", "b").graph(t), Options{Store: openStore(t, dir), Forget: true})
	var removed []string
	retire := func(id string, rec StepRecord) Remover {
		if id == "b" {
			return removerStep{removed: &removed}
		}
		return nil
	}
	var order []string
	sink := func(e Event) { order = append(order, string(e.Type)+" "+e.Step) }
	// "a" changes (its inputs differ) so it runs again; b's removal must
	// come first, as a verify step must see the world without b.
	w := newWorld(nil, "a")
	w.input["a"] = "changed"
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, Retire: retire, Sink: sink})
	if len(removed) != 1 {
		t.Fatalf("removed %v", removed)
	}
	first := slices.IndexFunc(order, func(s string) bool { return strings.HasSuffix(s, " a") })
	forgot := slices.Index(order, string(EventSucceeded)+" b")
	if forgot < 0 || first < 0 || forgot > first {
		t.Errorf("events %v: b's removal must come before a runs", order)
	}
}
