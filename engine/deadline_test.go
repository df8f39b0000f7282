package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// blockingRemover waits until its context ends.
type blockingRemover struct{}

func (blockingRemover) Remove(ctx context.Context, _ *Env) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestStepTimeoutEndsAHungStep: a step (and a removal) that hangs past
// its kind's timeout fails naming the timeout, its record says so, and
// what depends on it is blocked; a kind without a timeout is not bounded.
func TestStepTimeoutEndsAHungStep(t *testing.T) {
	dir := t.TempDir()
	w := newWorld(map[string][]string{"b": {"a"}}, "a", "b")
	w.steps["a"].gate = make(chan struct{}) // never opened: a hangs until its context ends
	defer close(w.steps["a"].gate)
	timeouts := func(kind string) time.Duration {
		if kind == "fake" {
			return 50 * time.Millisecond
		}
		return 0
	}
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), StepTimeout: timeouts})
	if got := outcomes(rep); got["a"] != EventFailed || got["b"] != EventBlocked {
		t.Fatalf("outcomes = %v", got)
	}
	if !errors.Is(rep.Err, ErrStepTimeout) || !strings.Contains(rep.Err.Error(), "step a: timed out after 50ms (the fake timeout)") {
		t.Errorf("err = %v", rep.Err)
	}
	if rec, _ := openStore(t, dir).Record("a"); rec.Status != StatusFailed || !strings.Contains(rec.Error, "timed out after 50ms") {
		t.Errorf("record of a = %+v", rec)
	}

	// A removal is bounded the same way; its record stays.
	retire := func(string, StepRecord) Remover { return blockingRemover{} }
	if err := openStore(t, dir).Update("gone", func(r *StepRecord) { r.Kind, r.Status = "fake", StatusSucceeded }); err != nil {
		t.Fatal(err)
	}
	w2 := newWorld(nil, "c")
	rep = Run(context.Background(), w2.graph(t), Options{Store: openStore(t, dir), Forget: true, Retire: retire, StepTimeout: timeouts})
	if !errors.Is(rep.Err, ErrStepTimeout) {
		t.Errorf("removal: err = %v, want a timeout", rep.Err)
	}
	if _, ok := openStore(t, dir).Record("gone"); !ok {
		t.Error("a timed-out removal dropped its record")
	}

	// The run's own cancellation is not reported as the step's timeout.
	ctx, cancel := context.WithCancel(context.Background())
	w3 := newWorld(nil, "d")
	w3.steps["d"].gate, w3.steps["d"].started = make(chan struct{}), make(chan struct{})
	defer close(w3.steps["d"].gate)
	done := make(chan *Report)
	go func() {
		done <- Run(ctx, w3.graph(t), Options{Store: openStore(t, t.TempDir()), StepTimeout: func(string) time.Duration { return time.Hour }})
	}()
	<-w3.steps["d"].started
	cancel()
	if rep := <-done; errors.Is(rep.Err, ErrStepTimeout) || rep.Err == nil {
		t.Errorf("cancelled run: err = %v, want the cancellation", rep.Err)
	}
}

// refusingStep refuses its change in Check.
type refusingStep struct{}

func (refusingStep) Check(context.Context, *Env) (Drift, error) {
	return Drift{}, fmt.Errorf("upgrade %w: node x is not Ready", ErrRefused)
}

func (refusingStep) Apply(context.Context, *Env) error { return nil }

// TestRefusedCheckFailsThePlan: where a step's inputs changed, a Check
// that cannot read the live system only says so, but one that refuses the
// change fails the step, in plan as in apply.
func TestRefusedCheckFailsThePlan(t *testing.T) {
	dir := t.TempDir()
	g := NewGraph()
	if err := g.Add(Node{ID: "a", Kind: "fake", Fingerprint: "v2", Step: refusingStep{}}); err != nil {
		t.Fatal(err)
	}
	store := openStore(t, dir)
	if err := store.Update("a", func(r *StepRecord) { r.Kind, r.Status, r.Fingerprint = "fake", StatusSucceeded, "v1" }); err != nil {
		t.Fatal(err)
	}
	rep := Run(context.Background(), g, Options{Store: store, DryRun: true, Check: true})
	if !errors.Is(rep.Err, ErrRefused) || !strings.Contains(rep.Err.Error(), "upgrade refused: node x is not Ready") {
		t.Errorf("plan: err %v, want the refusal", rep.Err)
	}
}
