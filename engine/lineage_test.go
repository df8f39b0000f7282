package engine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// uuidV4 is the form of a lineage.
var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func succeed(r *StepRecord) { r.Kind, r.Status = "ca/root", StatusSucceeded }

// readState decodes the state file of dir as it is on disk.
func readState(t *testing.T, dir string) State {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestNewStateGetsALineageThatReopeningKeeps(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if s.Lineage() != "" || s.Serial() != 0 {
		t.Fatalf("a state never written has lineage %q, serial %d; want none and 0", s.Lineage(), s.Serial())
	}
	if err := s.Update("a", succeed); err != nil {
		t.Fatal(err)
	}
	first := readState(t, dir)
	if !uuidV4.MatchString(first.Lineage) || s.Lineage() != first.Lineage {
		t.Fatalf("lineage on disk %q, in the store %q: want one random UUID", first.Lineage, s.Lineage())
	}
	reopened := openStore(t, dir)
	if reopened.Lineage() != first.Lineage || reopened.Serial() != first.Serial {
		t.Errorf("reopened: lineage %q serial %d, want %q %d", reopened.Lineage(), reopened.Serial(), first.Lineage, first.Serial)
	}
	if err := reopened.Update("b", succeed); err != nil {
		t.Fatal(err)
	}
	second := readState(t, dir)
	if second.Lineage != first.Lineage || second.Serial <= first.Serial {
		t.Errorf("after a second write: lineage %q serial %d, want %q and a serial above %d", second.Lineage, second.Serial, first.Lineage, first.Serial)
	}
	other := t.TempDir()
	if err := openStore(t, other).Update("a", succeed); err != nil {
		t.Fatal(err)
	}
	if readState(t, other).Lineage == first.Lineage {
		t.Error("two new states got the same lineage")
	}
}

// TestStoreNeverWritesOverAnotherState: a state file swapped in between
// two writes of a Store (another lineage, or one where there was none)
// makes the next write fail with a LineageError naming both lineages and
// the path, and is left as it was.
func TestStoreNeverWritesOverAnotherState(t *testing.T) {
	tests := []struct {
		name string
		// before is written to the store before the swap; false: the
		// store starts from an empty directory and writes nothing first.
		before   bool
		appeared bool
	}{
		{name: "another lineage between writes", before: true},
		{name: "a state appeared where there was none", appeared: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, otherDir := t.TempDir(), t.TempDir()
			s := openStore(t, dir)
			if tt.before {
				if err := s.Update("mine", succeed); err != nil {
					t.Fatal(err)
				}
			}
			if err := openStore(t, otherDir).Update("theirs", succeed); err != nil {
				t.Fatal(err)
			}
			swapped, err := os.ReadFile(filepath.Join(otherDir, StateFile))
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, StateFile)
			if err := os.WriteFile(path, swapped, 0o600); err != nil {
				t.Fatal(err)
			}
			err = s.Update("mine2", succeed)
			var lerr *LineageError
			if !errors.As(err, &lerr) {
				t.Fatalf("write over another state = %v, want a *LineageError", err)
			}
			theirs := readState(t, otherDir).Lineage
			if lerr.Appeared != tt.appeared || lerr.Found != theirs || lerr.Read != s.Lineage() {
				t.Errorf("error = %+v, want found %q, read %q, appeared %v", lerr, theirs, s.Lineage(), tt.appeared)
			}
			frags := []string{path, theirs, "another plan may use this state directory"}
			if tt.before {
				frags = append(frags, s.Lineage())
			}
			for _, frag := range frags {
				if !strings.Contains(err.Error(), frag) {
					t.Errorf("error %q lacks %q", err, frag)
				}
			}
			if after, _ := os.ReadFile(path); string(after) != string(swapped) {
				t.Error("the other state's file was written over")
			}
		})
	}
}

// TestOldStateWithoutLineageGetsOneOnItsNextWrite: a state of an older
// mcplan is read, and its next write gives it a lineage and a higher
// serial, keeping its records.
func TestOldStateWithoutLineageGetsOneOnItsNextWrite(t *testing.T) {
	dir := t.TempDir()
	old := `{"version": 1, "serial": 7, "steps": {"old": {"kind": "ca/root", "status": "succeeded"}}}`
	if err := os.WriteFile(filepath.Join(dir, StateFile), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, dir)
	if s.Lineage() != "" || s.Serial() != 7 {
		t.Fatalf("old state read with lineage %q serial %d, want none and 7", s.Lineage(), s.Serial())
	}
	if err := s.Update("new", succeed); err != nil {
		t.Fatalf("first write of an old state: %v", err)
	}
	st := readState(t, dir)
	if !uuidV4.MatchString(st.Lineage) || st.Serial != 8 || st.Steps["old"] == nil || st.Steps["new"] == nil {
		t.Errorf("after the write: lineage %q serial %d steps %v; want a lineage, serial 8, both steps", st.Lineage, st.Serial, st.Steps)
	}
	if err := s.Update("newer", succeed); err != nil {
		t.Fatalf("second write: %v", err)
	}
	if again := readState(t, dir); again.Lineage != st.Lineage || again.Serial != 9 {
		t.Errorf("second write: lineage %q serial %d, want %q 9", again.Lineage, again.Serial, st.Lineage)
	}
}

// TestStoreRefusesAStateAnotherProcessWroteSince: a newer serial of the
// same lineage on disk means a second writer; writing would lose its
// change and make the serial go back.
func TestStoreRefusesAStateAnotherProcessWroteSince(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Update("a", succeed); err != nil {
		t.Fatal(err)
	}
	second := openStore(t, dir)
	if err := second.Update("b", succeed); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, StateFile))
	err := s.Update("c", succeed)
	if err == nil || !strings.Contains(err.Error(), "another process wrote serial 2 into it since this mcplan wrote serial 1") {
		t.Fatalf("write behind another writer = %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, StateFile)); string(after) != string(before) {
		t.Error("the other writer's state was written over")
	}
}

// TestStoreRefusesAStateDamagedSinceItWasRead: a state file that no
// longer parses is not one the Store read: it is left for the user.
func TestStoreRefusesAStateDamagedSinceItWasRead(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Update("a", succeed); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, StateFile)
	if err := os.WriteFile(path, []byte(`{"version": 1, "lineage": `), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Update("b", succeed); err == nil || !strings.Contains(err.Error(), "damaged now") {
		t.Fatalf("write over a damaged state = %v", err)
	}
	if after, _ := os.ReadFile(path); string(after) != `{"version": 1, "lineage": ` {
		t.Errorf("the damaged state was written over: %q", after)
	}
}
