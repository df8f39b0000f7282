package engine

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// checkingStep has a Check of its own: check is called with its Env.
type checkingStep struct {
	check func(*Env) (Drift, error)
	apply func(*Env) error
}

func (s *checkingStep) Check(_ context.Context, env *Env) (Drift, error) { return s.check(env) }
func (s *checkingStep) Apply(_ context.Context, env *Env) error {
	if s.apply == nil {
		return nil
	}
	return s.apply(env)
}

// chainGraph is a→b→c→… of steps, each depending on the one before.
func chainGraph(t *testing.T, input map[string]string, steps map[string]*checkingStep, ids ...string) *Graph {
	t.Helper()
	g := NewGraph()
	for i, id := range ids {
		var deps []string
		if i > 0 {
			deps = []string{ids[i-1]}
		}
		fp, err := Fingerprint("chain", input[id])
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Add(Node{ID: id, Kind: "chain", DependsOn: deps, Fingerprint: fp, Step: steps[id]}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	return g
}

// TestChecksOfUnchangedStepsRunAtOnce: on a re-apply of a chain whose
// inputs are unchanged, every Check runs at once, not one after another
// along the chain: each Check waits until all have begun.
func TestChecksOfUnchangedStepsRunAtOnce(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	dir := t.TempDir()
	var all sync.WaitGroup
	steps := map[string]*checkingStep{}
	concurrent := false
	for _, id := range ids {
		steps[id] = &checkingStep{check: func(*Env) (Drift, error) {
			if !concurrent {
				return InSync(), nil
			}
			all.Done()
			done := make(chan struct{})
			go func() { all.Wait(); close(done) }()
			select {
			case <-done:
				return InSync(), nil
			case <-time.After(20 * time.Second):
				return Drift{}, errors.New("the other Checks did not begin: checks ran one after another")
			}
		}}
	}
	if rep := Run(context.Background(), chainGraph(t, nil, steps, ids...), Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	concurrent = true
	all.Add(len(ids))
	rep := Run(context.Background(), chainGraph(t, nil, steps, ids...), Options{Store: openStore(t, dir), Check: true, DryRun: true})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if rep.Changes() {
		t.Errorf("changes reported: %+v", rep.Steps)
	}
}

// TestPrecheckTakenOnlyWhenDependenciesAreUnchanged: a dependent of a
// drifted step is updated for its dependency, and its Check run ahead is
// dropped with its log lines; a drifted step after an unchanged one is
// found by its Check run ahead, whose log lines reach the sink.
func TestPrecheckTakenOnlyWhenDependenciesAreUnchanged(t *testing.T) {
	ids := []string{"a", "b", "c", "d"}
	dir := t.TempDir()
	drifted := map[string]bool{}
	steps := map[string]*checkingStep{}
	for _, id := range ids {
		steps[id] = &checkingStep{check: func(env *Env) (Drift, error) {
			env.Logf("checked %s", id)
			if drifted[id] {
				return Drifted(id + " differs"), nil
			}
			return InSync(), nil
		}}
	}
	if rep := Run(context.Background(), chainGraph(t, nil, steps, ids...), Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	// a in sync, b drifted: c follows b, d follows c; only a's and b's
	// Check results are taken.
	drifted["b"] = true
	var mu sync.Mutex
	var logged []string
	sink := func(ev Event) {
		if ev.Type == EventLog {
			mu.Lock()
			logged = append(logged, ev.Step+": "+ev.Message)
			mu.Unlock()
		}
	}
	rep := Run(context.Background(), chainGraph(t, nil, steps, ids...), Options{Store: openStore(t, dir), Check: true, DryRun: true, Sink: sink})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	reasons := map[string]string{}
	for _, s := range rep.Steps {
		reasons[s.ID] = s.Reason
	}
	want := map[string]string{"a": "", "b": "drift: b differs", "c": "depends on b, which change", "d": "depends on c, which change"}
	for id, r := range want {
		if reasons[id] != r {
			t.Errorf("%s: reason %q, want %q", id, reasons[id], r)
		}
	}
	slices.Sort(logged)
	if wantLogs := []string{"a: checked a", "b: checked b"}; !slices.Equal(logged, wantLogs) {
		t.Errorf("log lines %q, want %q (a dropped Check's lines are dropped)", logged, wantLogs)
	}
}

// TestWaitsAreRecordedAndReported: what a step's Apply waits for is an
// event and part of its record; the run that applied is the state's
// LastApply, and a run that applies nothing leaves it.
func TestWaitsAreRecordedAndReported(t *testing.T) {
	dir := t.TempDir()
	steps := map[string]*checkingStep{"a": {
		check: func(*Env) (Drift, error) { return InSync(), nil },
		apply: func(env *Env) error {
			return env.Wait("node a Ready", func() error { time.Sleep(20 * time.Millisecond); return nil })
		},
	}}
	var waits []Event
	sink := func(ev Event) {
		if ev.Type == EventWait {
			waits = append(waits, ev)
		}
	}
	store := openStore(t, dir)
	if rep := Run(context.Background(), chainGraph(t, nil, steps, "a"), Options{Store: store, Check: true, Sink: sink}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if len(waits) != 1 || waits[0].Message != "node a Ready" || waits[0].Step != "a" || waits[0].Elapsed < 20*time.Millisecond {
		t.Fatalf("wait events %+v", waits)
	}
	rec, _ := openStore(t, dir).Record("a")
	if len(rec.Waits) != 1 || rec.Waits[0].What != "node a Ready" || rec.Waits[0].Elapsed != waits[0].Elapsed {
		t.Errorf("recorded waits %+v", rec.Waits)
	}
	first := openStore(t, dir).LastApply()
	if first == nil || first.StartedAt.After(rec.StartedAt) || first.FinishedAt.Before(rec.FinishedAt) {
		t.Fatalf("last apply %+v does not span the step (%s–%s)", first, rec.StartedAt, rec.FinishedAt)
	}
	if rep := Run(context.Background(), chainGraph(t, nil, steps, "a"), Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if again := openStore(t, dir).LastApply(); *again != *first {
		t.Errorf("a run that applied nothing changed the last apply: %+v, was %+v", again, first)
	}
}

// preparingStep records when its Prepare ran.
type preparingStep struct {
	checkingStep
	prepared chan struct{}
}

func (s *preparingStep) Prepare(context.Context, *Env) { close(s.prepared) }

// TestStepsToApplyArePreparedAhead: a step never applied is prepared at
// the start of the run, while the step it depends on is still applying;
// once applied and unchanged, it is not prepared again.
func TestStepsToApplyArePreparedAhead(t *testing.T) {
	dir := t.TempDir()
	b := &preparingStep{prepared: make(chan struct{})}
	b.check = func(*Env) (Drift, error) { return InSync(), nil }
	a := &checkingStep{check: func(*Env) (Drift, error) { return InSync(), nil }, apply: func(*Env) error {
		select {
		case <-b.prepared:
			return nil
		case <-time.After(20 * time.Second):
			return errors.New("b was not prepared while a applied")
		}
	}}
	g := NewGraph()
	for _, n := range []Node{{ID: "a", Kind: "k", Step: a}, {ID: "b", Kind: "k", DependsOn: []string{"a"}, Step: b}} {
		if err := g.Add(n); err != nil {
			t.Fatal(err)
		}
	}
	if rep := Run(context.Background(), g, Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	b.prepared = make(chan struct{})
	if rep := Run(context.Background(), g, Options{Store: openStore(t, dir), Check: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	select {
	case <-b.prepared:
		t.Error("an unchanged step was prepared")
	default:
	}
}

// TestOfflinePlanPreparesNothing: a dry run that does not read the live
// system (plan --offline) calls no Prepare.
func TestOfflinePlanPreparesNothing(t *testing.T) {
	b := &preparingStep{prepared: make(chan struct{})}
	b.check = func(*Env) (Drift, error) { return InSync(), nil }
	g := NewGraph()
	if err := g.Add(Node{ID: "b", Kind: "k", Step: b}); err != nil {
		t.Fatal(err)
	}
	if rep := Run(context.Background(), g, Options{DryRun: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	select {
	case <-b.prepared:
		t.Error("an offline plan prepared a step")
	default:
	}
}
