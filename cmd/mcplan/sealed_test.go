package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestSealedLocalState: with state.encryption, the walkthrough's CA steps
// applied over a plain state seal it: the state directory then holds the
// sealed file alone (and its .gitignore), no PEM in clear; the state is
// read with the passphrase and refused with a wrong one, never taken for
// an empty state.
func TestSealedLocalState(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Join(filepath.Dir(plan), ".mcplan")
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != 0 {
		t.Fatalf("plain apply: exit %d\n%s", r.code, r.stderr)
	}
	data, err := os.ReadFile(plan)
	if err != nil {
		t.Fatal(err)
	}
	data = append(data, []byte("state:\n  encryption: {passphraseEnv: MCPLAN_TEST_PASSPHRASE}\n")...)
	if err := os.WriteFile(plan, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...); r.code != exitError || !strings.Contains(r.stderr, "MCPLAN_TEST_PASSPHRASE, which is not set") {
		t.Fatalf("apply without the passphrase: exit %d\n%s", r.code, r.stderr)
	}
	t.Setenv("MCPLAN_TEST_PASSPHRASE", "correct horse battery staple")
	r := mcplan(t, append(append([]string{"apply"}, caTargets...), plan)...)
	if r.code != 0 || !strings.Contains(r.stdout, "state.sealed (sealed)") || !strings.Contains(r.stderr, "sealed the state") {
		t.Fatalf("sealing apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{".gitignore", "state.sealed"}) {
		t.Errorf("the state directory holds %v, want the sealed file and .gitignore", names)
	}
	sealed, _ := os.ReadFile(filepath.Join(dir, "state.sealed"))
	if bytes.Contains(sealed, []byte("BEGIN")) || bytes.Contains(sealed, []byte("mesh/mesh1/ca/root")) {
		t.Error("the sealed file holds a PEM block or a step ID in clear")
	}
	if r := mcplan(t, "plan", "--offline", "--detailed-exitcode", "--target", "mesh/*/ca/*", "--target", "cluster/*/ca/*", plan); r.code != 0 {
		t.Errorf("plan with the passphrase: exit %d (want no changes)\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := mcplan(t, "state", "list", plan); r.code != 0 || !strings.Contains(r.stdout, "mesh/mesh1/ca/root") {
		t.Errorf("state list: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Setenv("MCPLAN_TEST_PASSPHRASE", "wrong")
	for _, args := range [][]string{{"state", "list", plan}, append(append([]string{"apply"}, caTargets...), plan)} {
		if r := mcplan(t, args...); r.code != exitError || !strings.Contains(r.stderr, "the passphrase does not open the state") {
			t.Errorf("%s with a wrong passphrase: exit %d\n%s", args[0], r.code, r.stderr)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "state.sealed")); !bytes.Equal(after, sealed) {
		t.Error("a run with a wrong passphrase changed the sealed state")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".open-*")); len(left) != 0 {
		t.Errorf("opened copies left behind: %v", left)
	}
}
