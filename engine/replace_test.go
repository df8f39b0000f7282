package engine

import (
	"context"
	"maps"
	"testing"
)

// TestReplaceRunsAStepAgain: a replaced step runs although nothing
// changed and sees Env.Replace; what depends on it follows, the others
// stay unchanged.
func TestReplaceRunsAStepAgain(t *testing.T) {
	dir := t.TempDir()
	seen := map[string]bool{}
	probe := func(id string) Step {
		return &probeStep{fn: func(env *Env) error { seen[id] = env.Replace; return nil }}
	}
	graph := func() *Graph {
		g := NewGraph()
		for _, n := range []Node{
			{ID: "a", Kind: "fake", Fingerprint: "1", Step: probe("a")},
			{ID: "b", Kind: "fake", Fingerprint: "1", DependsOn: []string{"a"}, Step: probe("b")},
			{ID: "c", Kind: "fake", Fingerprint: "1", Step: probe("c")},
		} {
			if err := g.Add(n); err != nil {
				t.Fatal(err)
			}
		}
		return g
	}
	Run(context.Background(), graph(), Options{Store: openStore(t, dir), Parallelism: 1})
	clear(seen)
	rep := Run(context.Background(), graph(), Options{Store: openStore(t, dir), Check: true, Replace: []string{"a"}, Parallelism: 1})
	want := map[string]EventType{"a": EventSucceeded, "b": EventSucceeded, "c": EventUnchanged}
	if got := outcomes(rep); !maps.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if !maps.Equal(seen, map[string]bool{"a": true, "b": false}) {
		t.Errorf("Env.Replace seen by the steps that ran: %v, want a only", seen)
	}
	if rep.Steps[0].Reason != "replaced on request (--replace)" {
		t.Errorf("a's reason %q", rep.Steps[0].Reason)
	}
}
