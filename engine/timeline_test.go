package engine

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/internal/golden"
)

// t0 is when the runs of the timeline tests began.
var t0 = time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)

// at is t0 plus seconds.
func at(seconds float64) time.Time {
	return t0.Add(time.Duration(seconds * float64(time.Second)))
}

// wait is a wait of what from start for seconds.
func wait(what string, start, seconds float64) WaitRecord {
	return WaitRecord{What: what, Start: at(start), Elapsed: time.Duration(seconds * float64(time.Second))}
}

// rec is the record of a step that ran from start to end, in seconds
// after t0.
func rec(kind string, start, end float64, deps []string, waits ...WaitRecord) StepRecord {
	return StepRecord{Kind: kind, Status: StatusSucceeded, StartedAt: at(start), FinishedAt: at(end), DependsOn: deps, Waits: waits}
}

// interrupted is r of a step whose Apply never reported back.
func interrupted(r StepRecord) StepRecord {
	r.Status, r.FinishedAt = StatusRunning, time.Time{}
	return r
}

func TestTimeline(t *testing.T) {
	type run struct{ start, end float64 }
	tests := []struct {
		name  string
		steps map[string]StepRecord
		run   *run
		// want
		critical                    []string
		order                       []string
		wall, critWork, critWaiting time.Duration
		waiting                     map[string]time.Duration
	}{
		{
			name: "diamond",
			steps: map[string]StepRecord{
				"host/vm1/facts": rec("host/facts", 0, 2, nil, wait("ssh vm1", 0.5, 1)),
				"host/vm1/k3s/server": rec("k3s/server", 2, 5, []string{"host/vm1/facts"},
					wait("node vm1 Ready", 2.5, 2)),
				"host/vm2/k3s/server": rec("k3s/server", 2, 8, []string{"host/vm1/facts"},
					wait("LoadBalancer address: svc istio-system/eastwest; try #1 (100%)", 3, 4)),
				"mesh/mesh1/remotesecret/cluster2->cluster1": rec("istio/remotesecret", 8, 10,
					[]string{"host/vm1/k3s/server", "host/vm2/k3s/server"}),
			},
			run:      &run{0, 10.5},
			critical: []string{"host/vm1/facts", "host/vm2/k3s/server", "mesh/mesh1/remotesecret/cluster2->cluster1"},
			order:    []string{"host/vm1/facts", "host/vm1/k3s/server", "host/vm2/k3s/server", "mesh/mesh1/remotesecret/cluster2->cluster1"},
			wall:     10500 * time.Millisecond, critWork: 5 * time.Second, critWaiting: 5 * time.Second,
			waiting: map[string]time.Duration{"host/vm1/k3s/server": 2 * time.Second},
		},
		{
			name: "interrupted",
			steps: map[string]StepRecord{
				"a": rec("ca/root", 0, 1, nil),
				"b": interrupted(rec("istio/controlplane", 1, 0, []string{"a"}, wait("Deployment istio-system/istiod Available", 1.5, 10))),
			},
			run:      &run{0, 4},
			critical: []string{"a", "b"},
			order:    []string{"a", "b"},
			wall:     4 * time.Second, critWork: 1500 * time.Millisecond, critWaiting: 2500 * time.Millisecond,
		},
		{
			name: "earlier run excluded",
			steps: map[string]StepRecord{
				"old":   rec("host/facts", -100, -90, nil),
				"new":   rec("k3s/server", 1, 3, []string{"old"}),
				"other": rec("ca/root", 0, 2, nil),
				"later": interrupted(rec("k3s/agent", 20, 0, []string{"new"})), // of a later run that never recorded its end
			},
			run:      &run{0, 5},
			critical: []string{"new"},
			order:    []string{"other", "new"},
			wall:     5 * time.Second, critWork: 2 * time.Second,
		},
		{
			name: "overlapping waits",
			steps: map[string]StepRecord{
				"s": rec("istio/controlplane", 1, 9, nil,
					wait("before the step", 0, 2), // 1..2
					wait("first", 1.5, 2),         // 1.5..3.5, overlaps the one before
					wait("inside first", 2, 1),    // within
					wait("second", 5, 1),          // 5..6
					wait("after the step", 8, 5),  // 8..9
					wait("outside", 10, 1),        // wholly after the step
				),
			},
			run:      &run{0, 10},
			critical: []string{"s"},
			order:    []string{"s"},
			wall:     10 * time.Second, critWork: 3500 * time.Millisecond, critWaiting: 4500 * time.Millisecond,
			waiting: map[string]time.Duration{"s": 4500 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := openStore(t, t.TempDir())
			for id, r := range tt.steps {
				if err := store.Update(id, func(sr *StepRecord) { *sr = r }); err != nil {
					t.Fatal(err)
				}
			}
			if err := store.RecordApply(at(tt.run.start), at(tt.run.end)); err != nil {
				t.Fatal(err)
			}
			tl, err := NewTimeline(store)
			if err != nil {
				t.Fatal(err)
			}
			var order []string
			for _, s := range tl.Steps {
				order = append(order, s.ID)
				if want, ok := tt.waiting[s.ID]; ok && s.Waiting() != want {
					t.Errorf("%s: Waiting %v, want %v", s.ID, s.Waiting(), want)
				}
				if s.Critical != slices.Contains(tt.critical, s.ID) {
					t.Errorf("%s: Critical %v", s.ID, s.Critical)
				}
			}
			if !slices.Equal(order, tt.order) {
				t.Errorf("steps %q, want %q", order, tt.order)
			}
			if !slices.Equal(tl.CriticalPath, tt.critical) {
				t.Errorf("critical path %q, want %q", tl.CriticalPath, tt.critical)
			}
			wall, work, waiting := tl.Totals()
			if wall != tt.wall || work != tt.critWork || waiting != tt.critWaiting {
				t.Errorf("Totals %v, %v, %v; want %v, %v, %v", wall, work, waiting, tt.wall, tt.critWork, tt.critWaiting)
			}
			data, err := json.MarshalIndent(tl, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			base := filepath.Join("testdata", "timeline", strings.ReplaceAll(tt.name, " ", "-"))
			golden.Check(t, base+".json", string(data)+"\n")
			golden.Check(t, base+".mermaid", tl.Mermaid())
		})
	}
}

func TestTimelineWithoutApply(t *testing.T) {
	store := openStore(t, t.TempDir())
	if err := store.Update("a", func(r *StepRecord) { *r = rec("ca/root", 0, 1, nil) }); err != nil {
		t.Fatal(err)
	}
	_, err := NewTimeline(store)
	if !errors.Is(err, ErrNoApply) || err.Error() != "no timeline: no apply has run a step yet" {
		t.Fatalf("error %v, want ErrNoApply", err)
	}
}
