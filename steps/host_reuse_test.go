package steps

import (
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

func TestCheckHostReuse(t *testing.T) {
	p, err := plans.Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts:
  - {name: h1, address: 192.0.2.1}
  - {name: h5, address: 192.0.2.3}
  - {name: h6, address: 192.0.2.6}
clusters:
  - {name: cluster1, servers: [h1], agents: [h5]}
`))
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	rec := func(kind, addr string, status engine.Status) engine.StepRecord {
		return engine.StepRecord{Kind: kind, Status: status, Outputs: map[string]string{K3sOutputAddress: addr}}
	}
	for _, tt := range []struct {
		name    string
		records map[string]engine.StepRecord
		want    string // "" for no error
	}{
		{"nothing leaves", map[string]engine.StepRecord{"host/h1/k3s/server": rec(plans.KindK3sServer, "192.0.2.1", engine.StatusSucceeded)}, ""},
		{"h3 leaves, h5 takes its address", map[string]engine.StepRecord{"host/h3/k3s/join": rec(plans.KindK3sJoin, "192.0.2.3", engine.StatusSucceeded)},
			"plan.yaml: hosts[h5] has the address 192.0.2.3 of host h3, whose k3s is being removed (host/h3/k3s/join)"},
		{"h3's removal failed earlier", map[string]engine.StepRecord{"host/h3/k3s/join": rec(plans.KindK3sJoin, "192.0.2.3", engine.StatusRemoving)},
			"hosts[h5] has the address 192.0.2.3 of host h3"},
		{"h6 leaves its cluster and moves", map[string]engine.StepRecord{"host/h6/k3s/join": rec(plans.KindK3sJoin, "192.0.2.60", engine.StatusSucceeded)},
			"hosts[h6] is now at 192.0.2.6, but its k3s at 192.0.2.60 is being removed"},
		{"a record of an older mcplan (no address)", map[string]engine.StepRecord{"host/h3/k3s/join": {Kind: plans.KindK3sJoin}}, ""},
	} {
		err := CheckHostReuse(p, tt.records)
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.want)
		}
	}
}
