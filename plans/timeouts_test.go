package plans

import (
	"testing"
	"time"
)

func TestStepTimeout(t *testing.T) {
	p, err := Parse("plan.yaml", []byte(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: p}
hosts: [{name: h1, address: 192.0.2.1}]
clusters: [{name: c1, servers: [h1]}]
timeouts: {k3s/server: 40m}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		kind string
		want time.Duration
	}{
		{KindK3sServer, 40 * time.Minute},         // the plan's
		{KindK3sJoin, 15 * time.Minute},           // the default
		{KindIstioControlPlane, 10 * time.Minute}, // the default
		{"no/such-kind", 0},
	} {
		if got := p.StepTimeout(tt.kind); got != tt.want {
			t.Errorf("StepTimeout(%s) = %s, want %s", tt.kind, got, tt.want)
		}
	}
	for _, kind := range Kinds() {
		if DefaultTimeouts()[kind] <= 0 {
			t.Errorf("kind %s has no default timeout", kind)
		}
	}
}
