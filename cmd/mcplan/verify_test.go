package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/steps/verify"
)

// TestVerifyWithoutKubeconfigs runs verify --xds on the walkthrough before
// any apply: no kubeconfig yet, so every check says so, and the xDS check
// stops at the sample it cannot deploy. Nothing is contacted.
func TestVerifyWithoutKubeconfigs(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			r := mcplan(t, "verify", "--xds", "-o", output, plan)
			if r.code != exitError {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitError, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "Error: verify: 4 of 4 checks failed") {
				t.Errorf("stderr: %s", r.stderr)
			}
			out := strings.ReplaceAll(r.stdout, dir, "$DIR")
			if output == "json" {
				var doc verify.Document
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, r.stdout)
				}
				if doc.Checks != 4 || doc.Failed != 4 || len(doc.Meshes) != 1 || len(doc.Meshes[0].Checks) != 4 {
					t.Errorf("document %+v", doc)
				}
			}
			golden.Check(t, filepath.Join("testdata", "verify", "no-kubeconfigs."+output), out)
		})
	}
	if r := mcplan(t, "verify", "-o", "yaml", plan); r.code != exitError || !strings.Contains(r.stderr, `--output "yaml": want text or json`) {
		t.Errorf("-o yaml: exit %d: %s", r.code, r.stderr)
	}
}
