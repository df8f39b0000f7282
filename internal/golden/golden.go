// Package golden compares test output with files under testdata/ and
// rewrites them when the test binary runs with -update.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

// update is registered on the test binary's flag set when a test package
// imports golden: go test ./... -update rewrites every golden file.
var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// Updating reports whether -update was given.
func Updating() bool { return *update }

// Check compares got with the file at path, or writes got there with -update.
func Check(t testing.TB, path, got string) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file (go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
