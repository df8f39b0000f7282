package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// TestAirgapPinnedSumRefusedBeforeUpload: a file whose sha256 is not the
// plan's pinned one stops the step before any connection is used (the
// step gets no SSH client at all here).
func TestAirgapPinnedSumRefusedBeforeUpload(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"k3s": "binary", "install.sh": "#!/bin/sh\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	p, err := plans.Parse(filepath.Join(dir, "plan.yaml"), []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts: [{name: h1, address: 192.0.2.1}]
clusters:
  - name: c1
    servers: [h1]
    k3s:
      airgap:
        binary: ./k3s
        installScript: ./install.sh
        installScriptSHA256: "0000000000000000000000000000000000000000000000000000000000000000"
`))
	if err != nil {
		t.Fatal(err)
	}
	if err := plans.Validate(p); err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	s := NewK3sServer(p, plans.StepSpec{Host: "h1", Cluster: p.Clusters[0].Name}, NewRuntime(p, nil))
	// No host client: writeFiles must refuse before it writes anything,
	// config.yaml included (a nil client would panic).
	_, _, err = s.writeFiles(context.Background(), engine.NewEnv("host/h1/k3s/server", dir, nil, nil, nil), nil, []byte("config"))
	if err == nil || !strings.Contains(err.Error(), "airgap.installScriptSHA256 pins 0000") || !strings.Contains(err.Error(), "nothing was uploaded") {
		t.Fatalf("err %v", err)
	}
}
