package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/internal/golden"
)

// TestExistingClusterImportAndDestroy applies the import of the cluster
// existing-cluster.yaml gives by kubeconfig (it reads only the local
// file): mcplan's copy is kept and the user's file is untouched; plan
// --destroy lists the copy's removal and no k3s uninstall; destroy
// removes the copy and still leaves the user's file as it was.
func TestExistingClusterImportAndDestroy(t *testing.T) {
	plan := copyExample(t, "existing-cluster")
	dir := filepath.Dir(plan)
	user := filepath.Join(dir, "existing-cluster.kubeconfig")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(user, old, old); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(user)
	if err != nil {
		t.Fatal(err)
	}
	untouched := func(when string) {
		t.Helper()
		got, err := os.ReadFile(user)
		fi, serr := os.Stat(user)
		if err != nil || serr != nil || string(got) != string(want) || !fi.ModTime().Equal(old) {
			t.Errorf("%s: the user's kubeconfig changed (%v, %v)", when, err, serr)
		}
	}
	if r := mcplan(t, "apply", "--target", "cluster/cluster2/kubeconfig/import", plan); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	copyPath := filepath.Join(dir, ".mcplan", "kubeconfig", "cluster2.yaml")
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mcplan's copy: %v, %v", fi, err)
	}
	untouched("after apply")

	r := mcplan(t, "plan", "--destroy", "--offline", "--detailed-exitcode", plan)
	if r.code != exitChanges {
		t.Errorf("plan --destroy: exit %d, want %d\n%s%s", r.code, exitChanges, r.stdout, r.stderr)
	}
	golden.Check(t, filepath.Join("testdata", "plan", "destroy-existing-cluster.txt"), strings.ReplaceAll(r.stdout, dir, "$DIR"))

	if r := mcplan(t, "destroy", "--auto-approve", plan); r.code != 0 || !strings.Contains(r.stdout, "Destroy complete: 1 removed") {
		t.Fatalf("destroy: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
		t.Errorf("mcplan's copy is still there (%v)", err)
	}
	untouched("after destroy")
}
