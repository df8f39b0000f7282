package plans

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
)

// FuzzParse feeds arbitrary bytes to Parse: it must not panic, and every
// error must be a non-empty message starting with the file name. A plan
// that parses must survive Validate, Warnings, ApplyDefaults and
// MarshalEffective, and its effective YAML must parse again; when the plan
// was valid, its effective YAML is valid too and its step graph (every
// step's fingerprint, unique IDs, known dependencies, no cycle) validates.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	const name = "fuzz.yaml"
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(name, data)
		if err != nil {
			checkErr(t, name, err)
			return
		}
		verr := Validate(p)
		if verr != nil {
			checkErr(t, name, verr)
		}
		valid := verr == nil
		_ = Warnings(p)
		out, err := MarshalEffective(p)
		if err != nil {
			t.Fatalf("MarshalEffective: %v", err)
		}
		ApplyDefaults(p)
		q, err := Parse(name, out)
		if err != nil {
			t.Fatalf("effective plan does not parse: %v\n%s", err, out)
		}
		if !valid {
			return
		}
		if err := Validate(q); err != nil {
			t.Fatalf("a valid plan's effective form is invalid: %v\n%s", err, out)
		}
		// A mesh of n clusters has n² remote secrets: a large plan's graph
		// would take each exec seconds (BenchmarkPlanOffline100Clusters
		// covers scale); the rules are the same for a small one.
		if len(p.Clusters) <= fuzzGraphClusters && len(p.Hosts) <= fuzzGraphClusters {
			checkStepGraph(t, p)
		}
	})
}

// fuzzGraphClusters bounds the plans whose step graph the fuzz target
// builds.
const fuzzGraphClusters = 16

// checkStepGraph builds the engine's graph of a valid plan's steps, as
// steps.Graph does, and validates it.
func checkStepGraph(t *testing.T, p *Plan) {
	t.Helper()
	g := engine.NewGraph()
	for _, s := range Steps(p) {
		fp, err := engine.Fingerprint(s.Kind, s.Inputs)
		if err != nil {
			t.Fatalf("step %s: fingerprint: %v", s.ID, err)
		}
		if err := g.Add(engine.Node{ID: s.ID, Kind: s.Kind, DependsOn: s.DependsOn, Fingerprint: fp}); err != nil {
			t.Fatalf("step graph: %v", err)
		}
	}
	if err := g.Validate(); err != nil {
		t.Fatalf("step graph: %v", err)
	}
}

func checkErr(t *testing.T, name string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" {
		t.Fatal("empty error message")
	}
	for _, line := range strings.Split(msg, "\n") {
		if !strings.HasPrefix(line, name+":") {
			t.Fatalf("error line does not start with %q: %q", name, line)
		}
	}
}
