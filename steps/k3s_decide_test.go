package steps

import (
	"slices"
	"testing"

	"mcplan.io/mcplan/plans"
)

// TestK3sDecide: what a k3s step reports and what it does follow from one
// decision.
func TestK3sDecide(t *testing.T) {
	s := &K3sNode{cluster: plans.Cluster{Name: "c1", K3s: plans.K3s{Version: "v1.31.4+k3s1"}}}
	ok := liveState{version: "v1.31.4+k3s1", binarySHA: "bin", configSHA: "cfg", active: "active", enabled: "enabled"}
	for _, tc := range []struct {
		name             string
		edit             func(*liveState)
		binarySHA        string
		install, restart bool
		reasons          []string
	}{
		{"matches", func(*liveState) {}, "", false, false, nil},
		{"not installed", func(l *liveState) { *l = liveState{} }, "", true, false, []string{"k3s not installed", "/etc/rancher/k3s/config.yaml differs from the plan"}},
		{"other version", func(l *liveState) { l.version = "v1.30.0+k3s1" }, "", true, false, []string{"k3s v1.30.0+k3s1 installed, plan wants v1.31.4+k3s1"}},
		{"other airgap binary", func(*liveState) {}, "other", true, false, []string{"k3s binary differs from airgap.binary"}},
		{"config only", func(l *liveState) { l.configSHA = "old" }, "", false, true, []string{"/etc/rancher/k3s/config.yaml differs from the plan"}},
		{"config written after the start", func(l *liveState) { l.configWritten, l.serviceStarted = 1001, 1000 }, "", false, true,
			[]string{"/etc/rancher/k3s/config.yaml was written after service k3s started (an apply was cut off before restarting it)"}},
		{"config written before the start", func(l *liveState) { l.configWritten, l.serviceStarted = 1000, 1000 }, "", false, false, nil},
		{"start time unknown", func(l *liveState) { l.configWritten = 1001 }, "", false, false, nil},
		{"stopped", func(l *liveState) { l.active = "inactive" }, "", false, true, []string{"service k3s is inactive"}},
		{"stopped, config written after its last start", func(l *liveState) { l.active, l.configWritten, l.serviceStarted = "inactive", 1001, 1000 }, "", false, true, []string{"service k3s is inactive"}},
		{"disabled", func(l *liveState) { l.enabled = "disabled" }, "", true, false, []string{"service k3s is not enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			tc.edit(&l)
			d := s.decide(l, "cfg", tc.binarySHA)
			if d.install != tc.install || d.restart != tc.restart || !slices.Equal(d.reasons, tc.reasons) {
				t.Errorf("decide = %+v, want install %v restart %v reasons %q", d, tc.install, tc.restart, tc.reasons)
			}
		})
	}
}
