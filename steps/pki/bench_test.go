package pki

import (
	"context"
	"testing"
)

// BenchmarkMeshCA4096 makes what a two-cluster mesh needs with the
// defaults: a 4096-bit root and two 4096-bit intermediates.
func BenchmarkMeshCA4096(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		root, rootKey, err := NewRoot(ctx, Options{})
		if err != nil {
			b.Fatal(err)
		}
		for _, cluster := range []string{"cluster1", "cluster2"} {
			if _, _, err := NewIntermediate(ctx, root, rootKey, cluster, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkNewIntermediate2048 is the cost of one test-sized intermediate.
func BenchmarkNewIntermediate2048(b *testing.B) {
	ctx := context.Background()
	root, rootKey := newTestRoot(b)
	for b.Loop() {
		if _, _, err := NewIntermediate(ctx, root, rootKey, "cluster1", Options{KeySize: 2048}); err != nil {
			b.Fatal(err)
		}
	}
}
