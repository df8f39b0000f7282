package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDamagedStateIsRefusedAndKept: a state.json that is truncated,
// garbled, or of a newer mcplan's version is refused by every command
// that reads it, with a clear error, and never overwritten.
func TestDamagedStateIsRefusedAndKept(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	statePath := filepath.Join(dir, ".mcplan", "state.json")
	good, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		state []byte
		want  string
	}{
		{"truncated", good[:len(good)/2], "it is damaged (unexpected end of JSON input"},
		{"garbled", bytes.ReplaceAll(good, []byte(`"steps"`), []byte(`"steps" "`)), "it is damaged (invalid character"},
		{"of a newer mcplan", bytes.Replace(good, []byte(`"version": 1`), []byte(`"version": 7`), 1), "version 7 was written by a newer mcplan"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(statePath, tt.state, 0o600); err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"plan", "--offline", plan},
				append(append([]string{"apply"}, caTargets...), plan),
				{"destroy", "--auto-approve", plan},
				{"state", "list", plan},
			} {
				r := mcplan(t, args...)
				if r.code != exitError || !strings.Contains(r.stderr, tt.want) || !strings.Contains(r.stderr, statePath) {
					t.Errorf("mcplan %s: exit %d, want %d with %q\n%s", args[0], r.code, exitError, tt.want, r.stderr)
				}
				if now, _ := os.ReadFile(statePath); !bytes.Equal(now, tt.state) {
					t.Fatalf("mcplan %s changed the damaged state", args[0])
				}
			}
		})
	}
	// Put back, it is read again.
	if err := os.WriteFile(statePath, good, 0o600); err != nil {
		t.Fatal(err)
	}
	if r := mcplan(t, "plan", "--offline", "--detailed-exitcode", plan); r.code == exitError {
		t.Errorf("plan with the state restored: exit %d\n%s", r.code, r.stderr)
	}
}
