package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInstalledClusterGivenByKubeconfigRefused: when the state records
// k3s that mcplan installed on hosts of a cluster the plan now gives by
// kubeconfig, plan and apply refuse before anything runs, naming the
// cluster and its hosts; the records stay.
func TestInstalledClusterGivenByKubeconfigRefused(t *testing.T) {
	plan := copyExample(t, "existing-cluster")
	dir := filepath.Dir(plan)
	if r := mcplan(t, "apply", "--target", "cluster/cluster2/kubeconfig/import", plan); r.code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	statePath := filepath.Join(dir, ".mcplan", "state.json")
	raw, err := os.ReadFile(statePath)
	if err != nil {
		t.Fatal(err)
	}
	var state map[string]any
	if err := json.Unmarshal(raw, &state); err != nil {
		t.Fatal(err)
	}
	// As an earlier apply that installed cluster2 on h8 and h9 left them.
	steps := state["steps"].(map[string]any)
	steps["host/h8/k3s/server"] = map[string]any{"kind": "k3s/server", "status": "succeeded", "outputs": map[string]string{"cluster": "cluster2"}}
	steps["host/h9/k3s/join"] = map[string]any{"kind": "k3s/join", "status": "succeeded", "outputs": map[string]string{"cluster": "cluster2"}}
	if raw, err = json.MarshalIndent(state, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(statePath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"plan", "--offline", plan},
		{"apply", "--target", "cluster/cluster2/kubeconfig/import", plan},
	} {
		r := mcplan(t, args...)
		if r.code == 0 {
			t.Errorf("%s: accepted\n%s", args[0], r.stdout)
		}
		for _, want := range []string{"existing-cluster.yaml:52:7: clusters[1].kubeconfig: cluster cluster2 is given by kubeconfig, but mcplan installed it", "hosts h8, h9", "destroy the cluster first"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: stderr lacks %q:\n%s", args[0], want, r.stderr)
			}
		}
	}
	after, err := os.ReadFile(statePath)
	if err != nil || !strings.Contains(string(after), "host/h8/k3s/server") {
		t.Errorf("the k3s records are gone from the state (%v)", err)
	}
}
