package plans

import (
	"fmt"
	"strings"
	"testing"
)

// loadShapes are inputs of a given size, each of a shape that once made
// loading superlinear (deep flow nesting in goccy's parser, the printing of
// a syntax error on a long line) or that a large plan has (many hosts).
// Loading must stay linear in the input's size: ns/byte (shown by
// b.SetBytes as MB/s) should not fall from 16 KiB to 256 KiB.
var loadShapes = map[string]func(size int) string{
	"deep-flow": func(size int) string {
		return "a: " + strings.Repeat("[", size/2) + strings.Repeat("]", size/2)
	},
	"syntax-error-long-line": func(size int) string {
		return "hosts:\n- name: " + strings.Repeat("x", size) + "\n\tb: ["
	},
	"many-hosts": func(size int) string {
		var b strings.Builder
		b.WriteString("apiVersion: mcplan.io/v1alpha1\nkind: Plan\nmetadata: {name: big}\nhosts:\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "- {name: h%d, address: 10.%d.%d.%d}\n", i, i/65536%256, i/256%256, i%256)
		}
		return b.String()
	},
	"aliases": func(size int) string {
		var b strings.Builder
		b.WriteString("meshes:\n- name: m\n  istio:\n    values:\n      a:\n")
		for b.Len() < size {
			b.WriteString("      - &x [*x, *x]\n")
		}
		return b.String()
	},
}

// BenchmarkLoadShapes runs what FuzzParse runs on each shape at two sizes.
func BenchmarkLoadShapes(b *testing.B) {
	for name, gen := range loadShapes {
		for _, size := range []int{16 << 10, 256 << 10} {
			data := []byte(gen(size))
			b.Run(fmt.Sprintf("%s/%dKiB", name, size>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				for b.Loop() {
					p, err := Parse("bench.yaml", data)
					if err != nil {
						continue
					}
					_ = Validate(p)
					ApplyDefaults(p)
				}
			})
		}
	}
}
