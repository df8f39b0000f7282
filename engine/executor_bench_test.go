package engine

import (
	"context"
	"fmt"
	"testing"
)

type noopStep struct{}

func (noopStep) Check(context.Context, *Env) (Drift, error) { return InSync(), nil }
func (noopStep) Apply(context.Context, *Env) error          { return nil }

// noopGraph is n no-op steps shaped like a plan: a layer of 100 roots, and
// every further step depending on two steps of the layer before it.
func noopGraph(b *testing.B, n int) *Graph {
	g := NewGraph()
	const width = 100
	for i := range n {
		var deps []string
		if i >= width {
			second := i - width + 1
			if (i+1)%width == 0 {
				second = i - 2*width + 1 // stay in the previous layer
			}
			deps = []string{fmt.Sprint(i - width), fmt.Sprint(second)}
		}
		if err := g.Add(Node{ID: fmt.Sprint(i), Kind: "noop", DependsOn: deps, Fingerprint: "x", Step: noopStep{}}); err != nil {
			b.Fatal(err)
		}
	}
	if err := g.Validate(); err != nil {
		b.Fatal(err)
	}
	return g
}

// BenchmarkExecutorNoopSteps measures the executor's own overhead: 10,000
// no-op steps applied with state kept in memory. Target: under 100 ms.
func BenchmarkExecutorNoopSteps(b *testing.B) {
	g := noopGraph(b, 10_000)
	b.ResetTimer()
	for b.Loop() {
		rep := Run(context.Background(), g, Options{})
		if rep.Err != nil || len(rep.Steps) != 10_000 {
			b.Fatalf("err %v, %d steps", rep.Err, len(rep.Steps))
		}
	}
}
