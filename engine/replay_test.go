package engine

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
)

// appliedWorld is a world of a, b (on a) and c, applied once into the
// state in dir.
func appliedWorld(t *testing.T, dir string) *world {
	t.Helper()
	w := newWorld(map[string][]string{"b": {"a"}}, "a", "b", "c")
	if rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir)}); rep.Err != nil {
		t.Fatal(rep.Err)
	}
	w.resetCounts()
	return w
}

func checks(w *world) int32 {
	n := int32(0)
	for _, s := range w.steps {
		n += s.checks.Load()
	}
	return n
}

// TestReplayCarriesOutTheSavedDecisions: an apply with the Replay of a
// dry run runs the steps the dry run decided to change, with its
// decisions, and reads nothing live: drift that appeared since the dry
// run is not acted on.
func TestReplayCarriesOutTheSavedDecisions(t *testing.T) {
	dir := t.TempDir()
	w := appliedWorld(t, dir)
	w.input["a"] = "changed"
	dry := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), DryRun: true, Check: true})
	if dry.Err != nil {
		t.Fatal(dry.Err)
	}
	w.steps["c"].drift = &Drift{Reason: "drifted after the plan"}
	w.resetCounts()
	rep := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), Check: true, Replay: ReplayOf(dry)})
	if rep.Err != nil {
		t.Fatal(rep.Err)
	}
	if got := w.applied(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("applied %v, want a and b (c was unchanged when planned)", got)
	}
	if n := checks(w); n != 0 {
		t.Errorf("%d Checks ran; a replay reads nothing live", n)
	}
	for i, s := range rep.Steps {
		if s.Decision.Reason != dry.Steps[i].Reason || s.Action != dry.Steps[i].Action {
			t.Errorf("%s decided %s %q, the dry run %s %q", s.ID, s.Action, s.Reason, dry.Steps[i].Action, dry.Steps[i].Reason)
		}
	}
	want := map[string]EventType{"a": EventSucceeded, "b": EventSucceeded, "c": EventUnchanged}
	if got := outcomes(rep); !maps.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// TestReplayRefusedWhenGraphOrStateMoved: a Replay that does not match
// the graph and the records leaving is refused before anything changes.
func TestReplayRefusedWhenGraphOrStateMoved(t *testing.T) {
	tests := []struct {
		name string
		// change alters the world or the state after the dry run.
		change func(t *testing.T, w *world, g *Graph, s *Store) *Graph
		want   string
	}{
		{
			name: "inputs changed",
			change: func(t *testing.T, w *world, _ *Graph, _ *Store) *Graph {
				w.input["c"] = "edited"
				return w.graph(t)
			},
			want: "step c: its inputs are not the ones the plan was made for",
		},
		{
			name: "step added",
			change: func(t *testing.T, w *world, g *Graph, _ *Store) *Graph {
				if err := g.Add(Node{ID: "d", Kind: "fake", Fingerprint: "1", Step: &fakeStep{id: "d", log: w.log}}); err != nil {
					t.Fatal(err)
				}
				return g
			},
			want: "step d is not in the saved plan",
		},
		{
			name: "step gone",
			change: func(t *testing.T, _ *world, g *Graph, _ *Store) *Graph {
				return g.Subgraph([]string{"b"})
			},
			want: "step c of the saved plan is not in the plan now",
		},
		{
			name: "record to remove appeared",
			change: func(t *testing.T, _ *world, g *Graph, s *Store) *Graph {
				if err := s.Update("old", func(r *StepRecord) { r.Kind, r.Status = "fake", StatusSucceeded }); err != nil {
					t.Fatal(err)
				}
				return g
			},
			want: "the record of old would be removed, which the saved plan does not remove",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			w := appliedWorld(t, dir)
			w.input["a"] = "changed" // something to do
			dry := Run(context.Background(), w.graph(t), Options{Store: openStore(t, dir), DryRun: true, Forget: true})
			if dry.Err != nil {
				t.Fatal(dry.Err)
			}
			store := openStore(t, dir)
			g := tt.change(t, w, w.graph(t), store)
			serial := store.Serial()
			opts := Options{Store: store, Forget: true, Replay: ReplayOf(dry)}
			if err := CheckReplay(g, opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckReplay = %v, want %q", err, tt.want)
			}
			rep := Run(context.Background(), g, opts)
			if rep.Err == nil || !strings.Contains(rep.Err.Error(), tt.want) || !strings.Contains(rep.Err.Error(), "nothing was changed") {
				t.Errorf("Run = %v, want %q", rep.Err, tt.want)
			}
			if got := w.applied(); len(got) != 0 || len(rep.Steps) != 0 {
				t.Errorf("a refused replay applied %v, reported %v", got, rep.Steps)
			}
			if store.Serial() != serial {
				t.Errorf("a refused replay wrote the state (serial %d -> %d)", serial, store.Serial())
			}
		})
	}
}

// TestReplayOfADestroyRemovesItsRecords: the Replay of a destroy's dry
// run removes the records it listed.
func TestReplayOfADestroyRemovesItsRecords(t *testing.T) {
	dir := t.TempDir()
	w := appliedWorld(t, dir)
	opts := Options{Store: openStore(t, dir), Destroy: true, Forget: true}
	dry := opts
	dry.DryRun = true
	plan := Run(context.Background(), w.graph(t), dry)
	if plan.Err != nil || len(plan.Forgotten) != 3 {
		t.Fatalf("destroy dry run: %v, forgets %v", plan.Err, plan.Forgotten)
	}
	opts.Replay = ReplayOf(plan)
	if rep := Run(context.Background(), w.graph(t), opts); rep.Err != nil || !slices.Equal(rep.Forgotten, plan.Forgotten) {
		t.Fatalf("replayed destroy: %v, forgot %v, want %v", rep.Err, rep.Forgotten, plan.Forgotten)
	}
	if ids := openStore(t, dir).IDs(); len(ids) != 0 {
		t.Errorf("state after the replayed destroy: %v", ids)
	}
}
