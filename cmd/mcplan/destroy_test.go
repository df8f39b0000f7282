package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// TestDestroyCA destroys what an apply of the walkthrough's CA steps
// made: refused off a terminal without --auto-approve (nothing changes),
// previewed by plan --destroy, then done: the intermediates are deleted,
// the root is moved aside, not deleted, and the state is empty.
func TestDestroyCA(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	state := filepath.Join(dir, ".mcplan")
	before := fileSums(t, caFiles(dir))
	stateBefore, err := os.ReadFile(filepath.Join(state, "state.json"))
	if err != nil {
		t.Fatal(err)
	}

	r := mcplan(t, "destroy", plan)
	if r.code != exitError || !strings.Contains(r.stderr, "pass --auto-approve") {
		t.Errorf("destroy off a terminal: exit %d\n%s", r.code, r.stderr)
	}
	stateAfter, _ := os.ReadFile(filepath.Join(state, "state.json"))
	if after := fileSums(t, caFiles(dir)); !maps.Equal(before, after) || string(stateAfter) != string(stateBefore) {
		t.Error("a refused destroy changed the CA files or the state")
	}

	r = mcplan(t, "plan", "--destroy", "--offline", "--detailed-exitcode", plan)
	if r.code != exitChanges {
		t.Errorf("plan --destroy: exit %d, want %d\n%s%s", r.code, exitChanges, r.stdout, r.stderr)
	}
	golden.Check(t, filepath.Join("testdata", "plan", "destroy-ca.txt"), strings.ReplaceAll(r.stdout, dir, "$DIR"))

	r = mcplan(t, "destroy", "--auto-approve", plan)
	if r.code != 0 || !strings.Contains(r.stdout, "Destroy complete: 3 removed, 0 forgotten") {
		t.Fatalf("destroy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, f := range caFiles(dir) {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there (%v)", f, err)
		}
	}
	moved, _ := filepath.Glob(filepath.Join(state, "removed", "*", "ca", "mesh1", "root-*.pem"))
	if len(moved) != 2 {
		t.Fatalf("the root was not moved aside: %v", moved)
	}
	rootCert := filepath.Join(state, "ca", "mesh1", "root-cert.pem")
	movedCert := filepath.Join(filepath.Dir(moved[0]), "root-cert.pem")
	if fileSums(t, []string{movedCert})[movedCert] != before[rootCert] {
		t.Error("the moved root is not the one apply made")
	}
	store, err := engine.OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	if ids := store.IDs(); len(ids) != 0 {
		t.Errorf("state holds %v after destroy", ids)
	}
	// A new apply builds it again, with a new root.
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("apply after destroy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if fileSums(t, []string{rootCert})[rootCert] == before[rootCert] {
		t.Error("apply after destroy reused the old root")
	}
}
