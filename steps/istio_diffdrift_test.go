package steps

import (
	"fmt"
	"reflect"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/kube"
)

// TestDiffDrift: the reason names the first objects and counts the rest;
// the details are every object with its fields, as kube's Diff gave them.
func TestDiffDrift(t *testing.T) {
	objects := func(n int) []kube.ObjectDiff {
		var out []kube.ObjectDiff
		for i := range n {
			out = append(out, kube.ObjectDiff{Object: fmt.Sprintf("+ ConfigMap istio-system/c%d", i)})
		}
		return out
	}
	tests := []struct {
		name        string
		diffs       []kube.ObjectDiff
		wantReason  string
		wantDetails []engine.Change
	}{
		{
			name: "objects with and without fields",
			diffs: []kube.ObjectDiff{
				{Object: "~ Deployment istio-system/istiod", Fields: []string{"~ spec.replicas: 1 → 2", "+ spec.paused: true"}},
				{Object: "- Service istio-system/old (no longer rendered)"},
			},
			wantReason: "~ Deployment istio-system/istiod; - Service istio-system/old (no longer rendered)",
			wantDetails: []engine.Change{
				{Object: "~ Deployment istio-system/istiod", Fields: []string{"~ spec.replicas: 1 → 2", "+ spec.paused: true"}},
				{Object: "- Service istio-system/old (no longer rendered)"},
			},
		},
		{
			name:       "fields stay out of the reason",
			diffs:      []kube.ObjectDiff{{Object: "~ ConfigMap istio-system/istio", Fields: []string{"~ data.mesh: 1 → 2"}}},
			wantReason: "~ ConfigMap istio-system/istio",
			wantDetails: []engine.Change{
				{Object: "~ ConfigMap istio-system/istio", Fields: []string{"~ data.mesh: 1 → 2"}},
			},
		},
		{
			name:       "more than five objects are counted",
			diffs:      objects(7),
			wantReason: "+ ConfigMap istio-system/c0; + ConfigMap istio-system/c1; + ConfigMap istio-system/c2; + ConfigMap istio-system/c3; + ConfigMap istio-system/c4; and 2 more",
			wantDetails: []engine.Change{
				{Object: "+ ConfigMap istio-system/c0"}, {Object: "+ ConfigMap istio-system/c1"}, {Object: "+ ConfigMap istio-system/c2"},
				{Object: "+ ConfigMap istio-system/c3"}, {Object: "+ ConfigMap istio-system/c4"}, {Object: "+ ConfigMap istio-system/c5"},
				{Object: "+ ConfigMap istio-system/c6"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diffDrift(tt.diffs)
			if d.InSync {
				t.Error("a drift of differing objects is in sync")
			}
			if d.Reason != tt.wantReason {
				t.Errorf("reason %q, want %q", d.Reason, tt.wantReason)
			}
			if !reflect.DeepEqual(d.Details, tt.wantDetails) {
				t.Errorf("details\n%q\nwant\n%q", d.Details, tt.wantDetails)
			}
		})
	}
}
