package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// result is what one mcplan command line did.
type result struct {
	code           int
	stdout, stderr string
}

// mcplan runs the CLI in-process with the given arguments.
func mcplan(t *testing.T, args ...string) result {
	t.Helper()
	return mcplanBuilt(t, readBuild(), args...)
}

// mcplanBuilt runs the CLI in-process as if it were build.
func mcplanBuilt(t *testing.T, build build, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	c := &cli{stdout: &out, stderr: &errOut, drain: make(chan struct{}), build: build}
	code := c.execute(context.Background(), args)
	return result{code, out.String(), errOut.String()}
}

// copyExample copies examples/<name>.yaml, and the kubeconfig
// <name>.kubeconfig it may name, into a fresh directory, so its state
// directory is the test's own, and returns the plan path.
func copyExample(t *testing.T, name string) string {
	t.Helper()
	dir := t.TempDir()
	for _, file := range []string{name + ".yaml", name + ".kubeconfig"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "examples", file))
		if errors.Is(err, fs.ErrNotExist) && file != name+".yaml" {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, name+".yaml")
}

func examples(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.yaml"))
	if err != nil || len(files) < 4 {
		t.Fatalf("examples: %v, %v", files, err)
	}
	var names []string
	for _, f := range files {
		names = append(names, strings.TrimSuffix(filepath.Base(f), ".yaml"))
	}
	return names
}

func TestGraphOfEveryExample(t *testing.T) {
	for _, name := range examples(t) {
		for _, format := range []string{"dot", "mermaid"} {
			t.Run(name+"/"+format, func(t *testing.T) {
				r := mcplan(t, "graph", "--format", format, copyExample(t, name))
				if r.code != 0 {
					t.Fatalf("exit %d: %s", r.code, r.stderr)
				}
				golden.Check(t, filepath.Join("testdata", "graph", name+"."+format), r.stdout)
			})
		}
	}
}

func TestOfflinePlanOfEveryExample(t *testing.T) {
	for _, name := range examples(t) {
		t.Run(name, func(t *testing.T) {
			r := mcplan(t, "plan", "--offline", "--detailed-exitcode", copyExample(t, name))
			if r.code != exitChanges {
				t.Fatalf("exit %d, want %d (changes): %s", r.code, exitChanges, r.stderr)
			}
			golden.Check(t, filepath.Join("testdata", "plan", name+".txt"), r.stdout)
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		plan     string
		wantCode int
		want     []string // fragments of stdout+stderr
	}{
		{"walkthrough", "", 0, []string{`valid plan "walkthrough": 2 hosts, 2 clusters, 1 meshes, 23 steps`}},
		{"misspelt field", `apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: bad}
hosts:
  - {name: vm1, address: 192.0.2.1}
clusters:
  - {name: cluster1, servers: [vm1], netwrk: network1}
`, 1, []string{"invalid plan, 1 problem", ":7:38: clusters[0].netwrk", `did you mean "network"`}},
		{"two problems", `apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: bad}
hosts:
  - {name: VM1, address: 192.0.2.1}
clusters:
  - {name: cluster1, servers: [vm9]}
`, 1, []string{"invalid plan, 2 problems", ":5:12: hosts[0].name", ":7:32: clusters[0].servers[0]", "vm9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := copyExample(t, "walkthrough")
			if tt.plan != "" {
				path = filepath.Join(t.TempDir(), "plan.yaml")
				if err := os.WriteFile(path, []byte(tt.plan), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := mcplan(t, "validate", path)
			if r.code != tt.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, tt.wantCode, r.stdout, r.stderr)
			}
			for _, frag := range tt.want {
				if !strings.Contains(r.stdout+r.stderr, frag) {
					t.Errorf("output lacks %q:\n%s%s", frag, r.stdout, r.stderr)
				}
			}
		})
	}
}

func TestShowDefaultsFillsDefaults(t *testing.T) {
	r := mcplan(t, "validate", "--show-defaults", copyExample(t, "walkthrough"))
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, frag := range []string{"port: 6443", "rootValidityDays: 3650", "context: context-{cluster}", "model: multi-primary"} {
		if !strings.Contains(r.stdout, frag) {
			t.Errorf("--show-defaults lacks %q", frag)
		}
	}
}

func TestTargetMatchingNothingIsAnError(t *testing.T) {
	r := mcplan(t, "plan", "--offline", "--target", "cluster/nope/*", copyExample(t, "walkthrough"))
	if r.code != exitError || !strings.Contains(r.stderr, `target "cluster/nope/*" matches no step`) {
		t.Fatalf("exit %d, stderr %s", r.code, r.stderr)
	}
}

func TestSchemaAndVersion(t *testing.T) {
	if r := mcplan(t, "schema"); r.code != 0 || !strings.Contains(r.stdout, `"$id": "https://mcplan.io/schemas/plan-v1alpha1.json"`) {
		t.Errorf("schema: exit %d, output starts %.80q", r.code, r.stdout)
	}
	if r := mcplan(t, "version"); r.code != 0 || !strings.Contains(r.stdout, "plan format: mcplan.io/v1alpha1, state format: 1") {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
	if r := mcplan(t, "completion", "bash"); r.code != 0 || !strings.Contains(r.stdout, "__start_mcplan") {
		t.Errorf("completion bash: exit %d", r.code)
	}
}
