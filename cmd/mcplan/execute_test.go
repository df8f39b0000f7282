package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

// TestReportJSONDetails: -o json carries a step's details as data, one
// entry per object with its changed fields, and leaves them out when a
// step has none.
func TestReportJSONDetails(t *testing.T) {
	rep := &engine.Report{Steps: []engine.StepResult{
		{ID: "cluster/cluster1/istio/controlplane", Kind: "istio/controlplane", Outcome: engine.EventPlanned, Decision: engine.Decision{
			Action: engine.ActionUpdate, Reason: "drift: ~ Deployment istio-system/istiod; + Secret istio-system/cacerts",
			Details: []engine.Change{
				{Object: "~ Deployment istio-system/istiod", Fields: []string{"~ spec.replicas: 1 → 2", "+ spec.minReadySeconds: 5"}},
				{Object: "+ Secret istio-system/cacerts"},
			},
		}},
		{ID: "mesh/mesh1/ca/root", Kind: "ca/root", Outcome: engine.EventPlanned, Decision: engine.Decision{Action: engine.ActionNoChange}},
	}}
	var b bytes.Buffer
	if err := writeReportJSON(json.NewEncoder(&b), rep); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "report", "details.json"), b.String())
}
