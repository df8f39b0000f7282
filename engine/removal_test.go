package engine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// removeLog records removals in the order they happened, safe for the
// removals' goroutines, and how many ran at once.
type removeLog struct {
	mu            sync.Mutex
	order         []string
	running, peak int
}

// loggedRemover removes one step: it logs, waits on gate (when set) and
// fails with err (when set).
type loggedRemover struct {
	log  *removeLog
	id   string
	gate <-chan struct{}
	err  error
}

func (r loggedRemover) Remove(ctx context.Context, _ *Env) error {
	r.log.mu.Lock()
	r.log.running++
	r.log.peak = max(r.log.peak, r.log.running)
	r.log.mu.Unlock()
	defer func() {
		r.log.mu.Lock()
		r.log.running--
		r.log.mu.Unlock()
	}()
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if r.err != nil {
		return r.err
	}
	r.log.mu.Lock()
	r.log.order = append(r.log.order, r.id)
	r.log.mu.Unlock()
	return nil
}

func (r loggedRemover) Describe(env *Env) string {
	v, _ := env.Previous("value")
	return "deletes " + v
}

// applied is a state in dir after applying a world of edges.
func applied(t *testing.T, dir string, edges map[string][]string, ids ...string) *world {
	t.Helper()
	w := newWorld(edges, ids...)
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	return w
}

// chain: c depends on b, b on a; d stands alone.
var chain = map[string][]string{"b": {"a"}, "c": {"b"}}

func TestDestroyRemovesInReverseDependencyOrder(t *testing.T) {
	dir := t.TempDir()
	w := applied(t, dir, chain, "a", "b", "c", "d")
	log := &removeLog{}
	retire := func(id string, _ StepRecord) Remover { return loggedRemover{log: log, id: id} }

	plan := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Destroy: true, DryRun: true, Retire: retire})
	if len(log.order) != 0 || len(plan.Steps) != 0 {
		t.Fatalf("dry run removed %v, planned steps %v", log.order, plan.Steps)
	}
	var planned []string
	for _, r := range plan.Removals {
		planned = append(planned, r.ID+": "+r.Removes)
		if r.Outcome != EventPlanned {
			t.Errorf("%s: %s, want planned", r.ID, r.Outcome)
		}
	}
	if want := []string{"c: deletes out-c", "b: deletes out-b", "a: deletes out-a", "d: deletes out-d"}; !slices.Equal(planned, want) {
		t.Errorf("planned %v, want %v", planned, want)
	}

	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Destroy: true, Retire: retire})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	pos := func(id string) int { return slices.Index(log.order, id) }
	if len(log.order) != 4 || pos("c") > pos("b") || pos("b") > pos("a") {
		t.Errorf("removed in order %v: c before b before a", log.order)
	}
	if ids := openStore(t, dir).IDs(); len(ids) != 0 {
		t.Errorf("state holds %v after destroy", ids)
	}
}

func TestFailedRemovalKeepsWhatItDependedOn(t *testing.T) {
	dir := t.TempDir()
	w := applied(t, dir, chain, "a", "b", "c", "d")
	log := &removeLog{}
	retire := func(id string, _ StepRecord) Remover {
		if id == "c" {
			return loggedRemover{log: log, id: id, err: errors.New("cluster unreachable")}
		}
		return loggedRemover{log: log, id: id}
	}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Destroy: true, Retire: retire})
	got := map[string]EventType{}
	for _, r := range rep.Removals {
		got[r.ID] = r.Outcome
	}
	want := map[string]EventType{"c": EventFailed, "b": EventBlocked, "a": EventBlocked, "d": EventSucceeded}
	for id, o := range want {
		if got[id] != o {
			t.Errorf("%s: %s, want %s", id, got[id], o)
		}
	}
	if rep.Err == nil || !strings.Contains(rep.Err.Error(), "step c (destroyed): remove: cluster unreachable") {
		t.Errorf("err = %v", rep.Err)
	}
	store := openStore(t, dir)
	if ids := store.IDs(); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Errorf("state holds %v, want a, b, c (d removed)", ids)
	}
	if rec, _ := store.Record("c"); rec.Status != StatusRemoving || !strings.Contains(rec.Error, "cluster unreachable") {
		t.Errorf("c's record %+v, want removing with the error", rec)
	}
	// The next destroy, with c reachable again, finishes.
	retry := func(id string, _ StepRecord) Remover { return loggedRemover{log: log, id: id} }
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Destroy: true, Retire: retry}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if ids := openStore(t, dir).IDs(); len(ids) != 0 {
		t.Errorf("state holds %v after the second destroy", ids)
	}
}

func TestRemovalsRunInParallelWithinTheBound(t *testing.T) {
	ids := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	for _, p := range []int{1, 3} {
		dir := t.TempDir()
		w := applied(t, dir, nil, ids...)
		log := &removeLog{}
		gate := make(chan struct{})
		retire := func(id string, _ StepRecord) Remover { return loggedRemover{log: log, id: id, gate: gate} }
		done := make(chan *Report)
		go func() {
			done <- Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Destroy: true, Retire: retire, Parallelism: p})
		}()
		deadline := time.Now().Add(10 * time.Second)
		for {
			log.mu.Lock()
			r := log.running
			log.mu.Unlock()
			if r >= p || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond)
		close(gate)
		if rep := <-done; rep.Err != nil {
			t.Fatal(rep.Err)
		}
		if log.peak != p {
			t.Errorf("parallelism %d: peak %d removals at once", p, log.peak)
		}
	}
}

func TestInterruptedRemovalIsResumed(t *testing.T) {
	dir := t.TempDir()
	applied(t, dir, nil, "a", "b")
	log := &removeLog{}
	gate := make(chan struct{}) // never closed: b's removal hangs until cancelled
	retire := func(id string, _ StepRecord) Remover {
		if id == "b" {
			return loggedRemover{log: log, id: id, gate: gate}
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := newWorld(nil, "a")
	done := make(chan *Report)
	go func() { done <- Run(ctx, w.graph(t), Options{Store: openStore(t, dir), Forget: true, Retire: retire}) }()
	for {
		if rec, _ := openStore(t, dir).Record("b"); rec.Status == StatusRemoving {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	rep := <-done
	if rep.Err == nil {
		t.Fatal("an interrupted removal reported no error")
	}
	if rec, ok := openStore(t, dir).Record("b"); !ok || rec.Status != StatusRemoving {
		t.Fatalf("b's record after the interruption: %+v (kept %v), want removing", rec, ok)
	}
	resume := func(id string, _ StepRecord) Remover {
		if id == "b" {
			return loggedRemover{log: log, id: id}
		}
		return nil
	}
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, Retire: resume}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if !slices.Equal(log.order, []string{"b"}) {
		t.Errorf("removed %v, want b once", log.order)
	}
	if ids := openStore(t, dir).IDs(); !slices.Equal(ids, []string{"a"}) {
		t.Errorf("state holds %v", ids)
	}
}

func TestRecordsKeepTheirDependencies(t *testing.T) {
	dir := t.TempDir()
	applied(t, dir, chain, "a", "b", "c")
	if rec, _ := openStore(t, dir).Record("c"); !slices.Equal(rec.DependsOn, []string{"b"}) {
		t.Errorf("c's record depends on %v, want [b]", rec.DependsOn)
	}
	// An unchanged step whose edges changed gets them recorded.
	w := newWorld(map[string][]string{"c": {"a", "b"}, "b": {"a"}}, "a", "b", "c")
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir)}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if rec, _ := openStore(t, dir).Record("c"); !slices.Equal(rec.DependsOn, []string{"a", "b"}) {
		t.Errorf("c's record depends on %v, want [a b]", rec.DependsOn)
	}
}

// TestPassingRecordsAreDroppedQuietly: a record of a passing kind whose
// step left the plan (a finished canary's gate) is neither shown by a
// dry run nor a change, and an apply drops it; one of another kind is
// forgotten as before; none is dropped from a partial graph.
func TestPassingRecordsAreDroppedQuietly(t *testing.T) {
	dir := t.TempDir()
	applied(t, dir, chain, "a", "b", "c", "d")
	w := newWorld(nil, "a", "d") // b and c left the plan
	passing := func(kind string) bool { return kind == "fake" }

	// b and c are of the passing kind: a dry run shows nothing of them.
	plan := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, DryRun: true, Passing: passing})
	if len(plan.Forgotten) != 0 || plan.Changes() {
		t.Fatalf("dry run: forgotten %v, changes %v", plan.Forgotten, plan.Changes())
	}
	if ids := openStore(t, dir).IDs(); len(ids) != 4 {
		t.Fatalf("the dry run changed the state: %v", ids)
	}
	// A partial graph (not Forget) keeps them.
	Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Passing: passing})
	if ids := openStore(t, dir).IDs(); len(ids) != 4 {
		t.Fatalf("a run without Forget dropped records: %v", ids)
	}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Forget: true, Passing: passing})
	if rep.Err != nil || len(rep.Forgotten) != 0 {
		t.Fatalf("apply: %v, forgotten %v", rep.Err, rep.Forgotten)
	}
	if ids := openStore(t, dir).IDs(); !slices.Equal(ids, []string{"a", "d"}) {
		t.Errorf("records after the apply %v, want a and d", ids)
	}
}
