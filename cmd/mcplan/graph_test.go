package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// writeLastApply writes, beside the plan at path, the state of an apply
// of part of it: three steps, one of which waited.
func writeLastApply(t *testing.T, path string) {
	t.Helper()
	p, err := statePlan(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := engine.OpenStore(p.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2025, 3, 4, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	records := map[string]engine.StepRecord{
		"host/vm1/facts": {Kind: "host/facts", StartedAt: at(100), FinishedAt: at(1300)},
		"host/vm1/k3s/server": {Kind: "k3s/server", StartedAt: at(1300), FinishedAt: at(21300),
			DependsOn: []string{"host/vm1/facts"},
			Waits:     []engine.WaitRecord{{What: "node vm1 Ready", Start: at(4300), Elapsed: 15 * time.Second}}},
		"host/vm2/facts": {Kind: "host/facts", StartedAt: at(100), FinishedAt: at(900)},
	}
	for id, r := range records {
		r.Status = engine.StatusSucceeded
		if err := store.Update(id, func(sr *engine.StepRecord) { *sr = r }); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.RecordApply(t0, at(21500)); err != nil {
		t.Fatal(err)
	}
}

func TestGraphTimeline(t *testing.T) {
	path := copyExample(t, "walkthrough")
	writeLastApply(t, path)
	for _, tt := range []struct{ format, args string }{
		{"mermaid", ""}, // the default
		{"json", "--format json"},
	} {
		t.Run(tt.format, func(t *testing.T) {
			args := append([]string{"graph", "--timeline"}, strings.Fields(tt.args)...)
			r := mcplan(t, append(args, path)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			golden.Check(t, filepath.Join("testdata", "graph", "timeline."+tt.format), r.stdout)
		})
	}
}

func TestGraphTimelineErrors(t *testing.T) {
	applied := copyExample(t, "walkthrough")
	writeLastApply(t, applied)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"dot", []string{"--format", "dot", applied}, `--format "dot": with --timeline, want mermaid or json`},
		{"target", []string{"--target", "host/*", applied}, "--timeline shows the whole last apply: it takes no --target"},
		{"no apply", []string{copyExample(t, "walkthrough")}, "no timeline: no apply has run a step yet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mcplan(t, append([]string{"graph", "--timeline"}, tt.args...)...)
			if r.code != exitError || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and %q", r.code, r.stdout, r.stderr, exitError, tt.want)
			}
		})
	}
	if r := mcplan(t, "graph", "--format", "json", applied); r.code != exitError || !strings.Contains(r.stderr, "json only with --timeline") {
		t.Errorf("--format json without --timeline: exit %d, stderr %q", r.code, r.stderr)
	}
}
