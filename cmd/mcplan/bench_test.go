package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/engine/progress"
)

// bigPlan writes a plan of n one-server clusters on two networks, all in
// one multi-primary mesh: n*(n-1) remote secrets.
func bigPlan(b *testing.B, n int) string {
	var buf bytes.Buffer
	buf.WriteString("apiVersion: mcplan.io/v1alpha1\nkind: Plan\nmetadata: {name: big}\nhosts:\n")
	for i := range n {
		fmt.Fprintf(&buf, "  - {name: vm%d, address: 10.%d.%d.10}\n", i, i/250, i%250)
	}
	buf.WriteString("networks: [{name: network1}, {name: network2}]\nclusters:\n")
	for i := range n {
		fmt.Fprintf(&buf, "  - {name: cluster%d, servers: [vm%d], network: network%d}\n", i, i, 1+i%2)
	}
	buf.WriteString("meshes:\n  - name: mesh1\n    clusters: [")
	for i := range n {
		if i > 0 {
			buf.WriteString(", ")
		}
		fmt.Fprintf(&buf, "cluster%d", i)
	}
	buf.WriteString("]\n")
	path := filepath.Join(b.TempDir(), "big.yaml")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkPlanOffline100Clusters is mcplan plan --offline on a 100-cluster
// mesh: load, validate, build the graph (9,900 remote secrets), decide
// every step and render the plan. Targets: under 0.5 s and 200 MiB per op.
func BenchmarkPlanOffline100Clusters(b *testing.B) {
	path := bigPlan(b, 100)
	c := &cli{stdout: io.Discard, stderr: io.Discard}
	var peak uint64
	for b.Loop() {
		p, err := c.loadPlan(path)
		if err != nil {
			b.Fatal(err)
		}
		g, err := offlineGraph(p)
		if err != nil {
			b.Fatal(err)
		}
		rep := engine.Run(context.Background(), g, engine.Options{DryRun: true, Dir: p.StateDir()})
		if rep.Err != nil || rep.Count(engine.ActionCreate) != g.Len() {
			b.Fatalf("err %v", rep.Err)
		}
		progress.WritePlan(io.Discard, rep, progress.PlanView{Offline: true})
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		if g.Len() < 9900 {
			b.Fatalf("graph has %d steps", g.Len())
		}
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}
