package statedir

import "testing"

// TestLayout: the paths are part of every user's state directory; they
// must not move.
func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		CARoot("/s", "m"):              "/s/ca/m",
		CACluster("/s", "m", "c"):      "/s/ca/m/c",
		Kubeconfig("/s", "c"):          "/s/kubeconfig/c.yaml",
		Inventory("/s", "c", "expose"): "/s/inventory/c/expose.json",
		AgentToken("/s", "c"):          "/s/k3s/c/agent-token",
		Pins("/s"):                     "/s/known_hosts",
	} {
		if got != want {
			t.Errorf("%s, want %s", got, want)
		}
	}
	if DirMode != 0o700 || KeyMode != 0o600 || CertMode != 0o644 {
		t.Errorf("modes %o %o %o", DirMode, KeyMode, CertMode)
	}
}
