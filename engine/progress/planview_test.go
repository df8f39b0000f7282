package progress

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// TestDetailLines: each object's line, its fields indented under it, at
// most fieldsShown of them per object unless --full.
func TestDetailLines(t *testing.T) {
	fields := func(n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("~ data.key%d: 1 → 2", i+1))
		}
		return out
	}
	tests := []struct {
		name    string
		details []engine.Change
		full    bool
	}{
		{name: "no-details"},
		{
			name:    "object-without-fields",
			details: []engine.Change{{Object: "+ Secret istio-system/cacerts"}},
		},
		{
			name:    "fields-up-to-the-limit",
			details: []engine.Change{{Object: "~ ConfigMap istio-system/istio", Fields: fields(fieldsShown)}},
		},
		{
			name:    "fields-over-the-limit",
			details: []engine.Change{{Object: "~ ConfigMap istio-system/istio", Fields: fields(fieldsShown + 2)}},
		},
		{
			name:    "fields-over-the-limit-full",
			details: []engine.Change{{Object: "~ ConfigMap istio-system/istio", Fields: fields(fieldsShown + 2)}},
			full:    true,
		},
		{
			name: "several-objects",
			details: []engine.Change{
				{Object: "~ ConfigMap istio-system/istio", Fields: fields(fieldsShown + 1)},
				{Object: "+ Secret istio-system/cacerts"},
				{Object: "~ Deployment istio-system/istiod", Fields: []string{"~ spec.replicas: 1 → 2"}},
				{Object: "- Service istio-system/old (no longer rendered)"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			for _, line := range detailLines(tt.details, tt.full) {
				b.WriteString(line + "\n")
			}
			golden.Check(t, filepath.Join("testdata", "details", tt.name+".txt"), b.String())
		})
	}
}
