package main

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// TestStatusOffline runs status where nothing can be contacted: a plan
// never applied is an error saying so; an applied one whose kubeconfigs
// are gone reports every cluster unreachable, and a failed last apply,
// and exits 1.
func TestStatusOffline(t *testing.T) {
	never := copyExample(t, "walkthrough")
	applied := copyExample(t, "walkthrough")
	writeLastApply(t, applied)
	failed := copyExample(t, "walkthrough")
	writeLastApply(t, failed)
	markFailed(t, failed, "host/vm1/k3s/server")
	readAt := regexp.MustCompile(`(read |"readAt": ")[0-9TZ:.+-]+`)
	for _, tc := range []struct {
		name, plan, output string
		stderr             string
	}{
		{"never-applied", never, "text", "has not been applied: its state " + filepath.Join(filepath.Dir(never), ".mcplan", "state.json") + " records no apply. Run mcplan apply"},
		{"unreachable", applied, "text", "Error: status: not healthy: 2 problems"},
		{"unreachable", applied, "json", "Error: status: not healthy: 2 problems"},
		{"failed", failed, "text", "Error: status: not healthy: 3 problems"},
	} {
		t.Run(tc.name+"."+tc.output, func(t *testing.T) {
			r := mcplan(t, "status", "-o", tc.output, tc.plan)
			if r.code != exitError || !strings.Contains(r.stderr, tc.stderr) {
				t.Fatalf("exit %d, want %d and %q on stderr\n%s\n%s", r.code, exitError, tc.stderr, r.stdout, r.stderr)
			}
			if tc.output == "json" {
				var doc struct {
					Healthy bool `json:"healthy"`
				}
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Healthy {
					t.Fatalf("JSON %v, healthy %v:\n%s", err, doc.Healthy, r.stdout)
				}
			}
			out := readAt.ReplaceAllString(strings.ReplaceAll(r.stdout, filepath.Dir(tc.plan), "$DIR"), "${1}$$TIME")
			golden.Check(t, filepath.Join("testdata", "status", tc.name+"."+tc.output), out)
		})
	}
	if r := mcplan(t, "status", "-o", "yaml", applied); r.code != exitError || !strings.Contains(r.stderr, `--output "yaml": want text or json`) {
		t.Errorf("-o yaml: exit %d: %s", r.code, r.stderr)
	}
}

// markFailed records that a step of the last apply at path failed.
func markFailed(t *testing.T, path, id string) {
	t.Helper()
	p, err := statePlan(path)
	if err != nil {
		t.Fatal(err)
	}
	store, err := engine.OpenStore(p.StateDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Update(id, func(r *engine.StepRecord) { r.Status, r.Error = engine.StatusFailed, "install script exited 1" }); err != nil {
		t.Fatal(err)
	}
}
