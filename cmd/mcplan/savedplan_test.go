package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// cmdline is one mcplan command line: args, then the plan or file last.
func cmdline(command string, args []string, file string) []string {
	return append(append([]string{command}, args...), file)
}

// must runs a command line that must exit with one of codes (0 when none
// is given).
func must(t *testing.T, args []string, codes ...int) result {
	t.Helper()
	r := mcplan(t, args...)
	if !slices.Contains(append(codes, exitOK), r.code) {
		t.Fatalf("mcplan %s: exit %d\n%s\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// applyCA applies the walkthrough's CA steps of plan, with extra flags.
func applyCA(t *testing.T, plan string, extra ...string) {
	t.Helper()
	must(t, cmdline("apply", append(slices.Clone(caTargets), extra...), plan))
}

// savePlan runs plan -out into a new file and returns its path and what
// plan printed.
func savePlan(t *testing.T, plan string, args ...string) (string, result) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "saved.plan")
	r := must(t, cmdline("plan", append([]string{"-out", out}, args...), plan), exitChanges)
	return out, r
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// stateOf is the state file of plan's directory as it is on disk.
func stateOf(t *testing.T, plan string) engine.State {
	t.Helper()
	var st engine.State
	if err := json.Unmarshal(readFile(t, filepath.Join(filepath.Dir(plan), ".mcplan", engine.StateFile)), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// withoutSavedNote is plan's text output without the line -out adds.
func withoutSavedNote(stdout string) string {
	before, _, _ := strings.Cut(stdout, "\nSaved the plan to ")
	return before
}

// tokenLike are forms of secrets: JWTs (service account tokens), k3s
// join tokens, and padded base64 (key material, Secret data).
var tokenLike = []*regexp.Regexp{
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{10,}\.`),
	regexp.MustCompile(`K10[0-9a-f]{20,}`),
	regexp.MustCompile(`[A-Za-z0-9+/]{20,}={1,2}`),
}

// TestSavedPlanIsPrivateAndHoldsNoSecret: plan -out writes a 0600 file
// that holds no key material of the CA files the state directory holds,
// nothing PEM and nothing token-like.
func TestSavedPlanIsPrivateAndHoldsNoSecret(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	applyCA(t, plan)
	saved, _ := savePlan(t, plan, append(slices.Clone(caTargets), "--replace", "cluster/cluster1/ca/intermediate")...)
	fi, err := os.Stat(saved)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("saved plan mode %v, want 0600", fi.Mode().Perm())
	}
	data := readFile(t, saved)
	for _, frag := range []string{"PRIVATE KEY", "BEGIN", "-----"} {
		if bytes.Contains(data, []byte(frag)) {
			t.Errorf("saved plan holds %q", frag)
		}
	}
	for _, re := range tokenLike {
		for _, m := range re.FindAll(data, -1) {
			t.Errorf("saved plan holds a token-like string %.60q", m)
		}
	}
	keys := mustGlob(t, filepath.Join(filepath.Dir(plan), ".mcplan", "ca", "*", "*-key.pem"))
	keys = append(keys, mustGlob(t, filepath.Join(filepath.Dir(plan), ".mcplan", "ca", "*", "*", "*-key.pem"))...)
	if len(keys) != 3 {
		t.Fatalf("CA keys %v, want the root's and two intermediates'", keys)
	}
	for _, key := range keys {
		block, _ := pem.Decode(readFile(t, key))
		if block == nil {
			t.Fatalf("%s: no PEM", key)
		}
		// Any 24 bytes of the key, as base64 starts them.
		for i := 0; i+24 <= len(block.Bytes); i += 24 {
			if bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(block.Bytes[i:i+24]))) {
				t.Fatalf("saved plan holds bytes of %s", key)
			}
		}
	}
}

// TestShowRendersASavedPlanAsPlanDid: show prints a saved plan exactly
// as plan printed it, in text and in JSON.
func TestShowRendersASavedPlanAsPlanDid(t *testing.T) {
	tests := []struct {
		name    string
		applied bool // the CA steps are applied first
		args    []string
	}{
		{"create", false, append([]string{"--offline"}, caTargets...)},
		{"replace", true, append([]string{"--offline", "--replace", "cluster/cluster1/ca/intermediate"}, caTargets...)},
		{"destroy", true, []string{"--offline", "--destroy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := copyExample(t, "walkthrough")
			dir := filepath.Dir(plan)
			if tt.applied {
				applyCA(t, plan)
			}
			saved, text := savePlan(t, plan, tt.args...)
			if !strings.Contains(text.stdout, "Saved the plan to "+saved+". To carry out exactly these actions: mcplan apply "+saved) {
				t.Errorf("plan -out does not say where it saved the plan:\n%s", text.stdout)
			}
			shown := must(t, []string{"show", saved})
			if want := withoutSavedNote(text.stdout); shown.stdout != want {
				t.Errorf("show differs from plan\n--- show\n%s\n--- plan\n%s", shown.stdout, want)
			}
			golden.Check(t, filepath.Join("testdata", "show", tt.name+".txt"), strings.ReplaceAll(shown.stdout, dir, "$DIR"))

			savedJSON, asJSON := savePlan(t, plan, append([]string{"-o", "json"}, tt.args...)...)
			if shown := must(t, []string{"show", "-o", "json", savedJSON}); shown.stdout != asJSON.stdout {
				t.Errorf("show -o json differs from plan -o json\n--- show\n%s\n--- plan\n%s", shown.stdout, asJSON.stdout)
			}
		})
	}
	plan := copyExample(t, "walkthrough")
	if r := mcplan(t, "show", plan); r.code != exitError || !strings.Contains(r.stderr, "show "+plan+": not a saved plan") {
		t.Errorf("show of a plan file: exit %d, %s", r.code, r.stderr)
	}
}

// stream is what apply -o json printed: its events, then its report.
type stream struct {
	events []engine.Event
	report reportJSON
}

func readStream(t *testing.T, stdout string) stream {
	t.Helper()
	var s stream
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		var probe struct {
			Summary map[string]int `json:"summary"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil {
			t.Fatal(err)
		}
		if probe.Summary != nil {
			if err := json.Unmarshal(raw, &s.report); err != nil {
				t.Fatal(err)
			}
			continue
		}
		var ev engine.Event
		if err := json.Unmarshal(raw, &ev); err != nil {
			t.Fatal(err)
		}
		s.events = append(s.events, ev)
	}
	return s
}

// stepsWith are the IDs of the events of type typ, in their order.
func (s stream) stepsWith(typ engine.EventType) []string {
	var ids []string
	for _, ev := range s.events {
		if ev.Type == typ {
			ids = append(ids, ev.Step)
		}
	}
	slices.Sort(ids)
	return ids
}

// readSaved decodes a saved plan file.
func readSaved(t *testing.T, path string) savedPlan {
	t.Helper()
	var sp savedPlan
	if err := json.Unmarshal(readFile(t, path), &sp); err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestApplySavedPlanDoesExactlyWhatItShowed: with nothing in between,
// apply of a saved plan runs the steps it listed, with the actions it
// listed (its events and its report say so), asks nothing, and leaves a
// state that plans no change for them.
func TestApplySavedPlanDoesExactlyWhatItShowed(t *testing.T) {
	tests := []struct {
		name    string
		applied bool
		args    []string
	}{
		{"create online", false, caTargets},
		{"replace one intermediate", true, append([]string{"--replace", "cluster/cluster1/ca/intermediate"}, caTargets...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := copyExample(t, "walkthrough")
			if tt.applied {
				applyCA(t, plan)
			}
			saved, _ := savePlan(t, plan, tt.args...)
			sp := readSaved(t, saved)
			var all, changing []string
			for _, s := range sp.Report.Steps {
				all = append(all, s.ID)
				if s.Action == engine.ActionCreate || s.Action == engine.ActionUpdate {
					changing = append(changing, s.ID)
				}
			}
			slices.Sort(all)
			slices.Sort(changing)
			if len(changing) == 0 {
				t.Fatal("the saved plan changes nothing: nothing to compare")
			}
			run := readStream(t, must(t, []string{"apply", "-o", "json", saved}).stdout)
			if got := run.stepsWith(engine.EventPlanned); !slices.Equal(got, all) {
				t.Errorf("apply decided %v, the saved plan lists %v", got, all)
			}
			if got := run.stepsWith(engine.EventStarted); !slices.Equal(got, changing) {
				t.Errorf("apply started %v, the saved plan changes %v", got, changing)
			}
			if got := run.stepsWith(engine.EventSucceeded); !slices.Equal(got, changing) {
				t.Errorf("apply finished %v, the saved plan changes %v", got, changing)
			}
			if len(run.report.Steps) != len(sp.Report.Steps) {
				t.Fatalf("apply reported %d steps, the saved plan %d", len(run.report.Steps), len(sp.Report.Steps))
			}
			for i, s := range run.report.Steps {
				want := sp.Report.Steps[i]
				if s.ID != want.ID || s.Action != want.Action || s.Reason != want.Reason {
					t.Errorf("step %d: applied %s %s %q, saved %s %s %q", i, s.ID, s.Action, s.Reason, want.ID, want.Action, want.Reason)
				}
			}
			after := must(t, cmdline("plan", append([]string{"--offline", "--detailed-exitcode"}, caTargets...), plan))
			if !strings.Contains(after.stdout, "No changes.") {
				t.Errorf("plan after the saved plan was applied:\n%s", after.stdout)
			}
		})
	}
}

// TestApplySavedPlanDoesNotCheckAgain: what the live system does after
// the plan was saved is not acted on: a step the plan left unchanged
// stays so, though its files went missing since (an apply of the plan
// file would make them again).
func TestApplySavedPlanDoesNotCheckAgain(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	applyCA(t, plan)
	saved, _ := savePlan(t, plan, append([]string{"--replace", "cluster/cluster1/ca/intermediate"}, caTargets...)...)
	missing := filepath.Join(dir, ".mcplan", "ca", "mesh1", "cluster2", "cert-chain.pem")
	if err := os.Remove(missing); err != nil {
		t.Fatal(err)
	}
	run := readStream(t, must(t, []string{"apply", "-o", "json", saved}).stdout)
	if got := run.stepsWith(engine.EventStarted); !slices.Equal(got, []string{"cluster/cluster1/ca/intermediate"}) {
		t.Errorf("apply of the saved plan started %v, want only the replaced intermediate", got)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Errorf("%s was made again (%v): the saved plan left cluster2 unchanged", missing, err)
	}
	r := must(t, cmdline("plan", caTargets, plan))
	if !strings.Contains(r.stdout, "~ cluster/cluster2/ca/intermediate") {
		t.Errorf("a plan of the plan file does not see the drift:\n%s", r.stdout)
	}
}

// TestApplySavedPlanRefusedWhenAnythingMoved: apply of a saved plan is
// refused, changing nothing, when the state was written since (serial),
// is another state (lineage), the plan file was edited, another mcplan
// applies it, a step's inputs are not those it was made for, or a flag
// that shapes the plan is given.
func TestApplySavedPlanRefusedWhenAnythingMoved(t *testing.T) {
	other := build{version: "v0.0.0-other", revision: "0123abcd"}
	tests := []struct {
		name string
		// move changes something after the plan was saved and returns
		// the fragments the refusal must hold.
		move  func(t *testing.T, plan, saved string) []string
		build build
		flags []string
	}{
		{name: "state written since", move: func(t *testing.T, plan, _ string) []string {
			before := stateOf(t, plan).Serial
			applyCA(t, plan, "--replace", "cluster/cluster2/ca/intermediate")
			return []string{fmt.Sprintf("saved plan is stale: state serial was %d, is now %d", before, stateOf(t, plan).Serial)}
		}},
		{name: "another state of the same serial", move: func(t *testing.T, plan, _ string) []string {
			elsewhere := copyExample(t, "walkthrough")
			applyCA(t, elsewhere)
			mine, theirs := stateOf(t, plan), stateOf(t, elsewhere)
			if mine.Serial != theirs.Serial || mine.Lineage == theirs.Lineage {
				t.Fatalf("states of serials %d, %d and lineages %q, %q: want one serial, two lineages", mine.Serial, theirs.Serial, mine.Lineage, theirs.Lineage)
			}
			state := filepath.Join(filepath.Dir(plan), ".mcplan", engine.StateFile)
			if err := os.WriteFile(state, readFile(t, filepath.Join(filepath.Dir(elsewhere), ".mcplan", engine.StateFile)), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"saved plan is for another state", mine.Lineage, theirs.Lineage}
		}},
		{name: "plan file edited", move: func(t *testing.T, plan, _ string) []string {
			if err := os.WriteFile(plan, append(readFile(t, plan), "# edited\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"saved plan is stale: the plan file " + plan + " changed since"}
		}},
		{name: "another mcplan", build: other, move: func(t *testing.T, _, saved string) []string {
			return []string{"saved plan was made by mcplan " + readBuild().String() + ", this is mcplan " + other.String()}
		}},
		{name: "inputs not those planned", move: func(t *testing.T, _, saved string) []string {
			sp := readSaved(t, saved)
			sp.Fingerprints["cluster/cluster1/ca/intermediate"] = "sha256:0000"
			if err := sp.write(saved); err != nil {
				t.Fatal(err)
			}
			return []string{"step cluster/cluster1/ca/intermediate: its inputs are not the ones the plan was made for", "nothing was changed"}
		}},
		{name: "a shaping flag", flags: []string{"--target", "mesh/*/ca/*"}, move: func(*testing.T, string, string) []string {
			return []string{"--target cannot be given with a saved plan"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel() // each in its own directory; RSA-4096 roots take seconds
			plan := copyExample(t, "walkthrough")
			dir := filepath.Dir(plan)
			applyCA(t, plan)
			saved, _ := savePlan(t, plan, append([]string{"--replace", "cluster/cluster1/ca/intermediate"}, caTargets...)...)
			want := tt.move(t, plan, saved)
			stateBefore, filesBefore := readFile(t, filepath.Join(dir, ".mcplan", engine.StateFile)), fileSums(t, caFiles(dir))
			b := tt.build
			if b == (build{}) {
				b = readBuild()
			}
			r := mcplanBuilt(t, b, cmdline("apply", tt.flags, saved)...)
			if r.code != exitError {
				t.Fatalf("apply of the saved plan: exit %d, want %d\n%s%s", r.code, exitError, r.stdout, r.stderr)
			}
			for _, frag := range want {
				if !strings.Contains(r.stderr, frag) {
					t.Errorf("refusal lacks %q:\n%s", frag, r.stderr)
				}
			}
			if !bytes.Equal(readFile(t, filepath.Join(dir, ".mcplan", engine.StateFile)), stateBefore) || !maps.Equal(fileSums(t, caFiles(dir)), filesBefore) {
				t.Error("a refused saved plan changed the state or the CA files")
			}
		})
	}
}

// TestSavedDestroyPlanDestroys: apply of a saved plan --destroy removes
// what it listed, without asking, and leaves an empty state.
func TestSavedDestroyPlanDestroys(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	applyCA(t, plan)
	saved, _ := savePlan(t, plan, "--destroy", "--offline")
	r := must(t, []string{"apply", saved})
	if !strings.Contains(r.stdout, "Destroy complete: 3 removed, 0 forgotten") {
		t.Errorf("apply of a saved destroy:\n%s", r.stdout)
	}
	for _, f := range caFiles(dir) {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	if st := stateOf(t, plan); len(st.Steps) != 0 {
		t.Errorf("state holds %v after the saved destroy", slices.Collect(maps.Keys(st.Steps)))
	}
}
