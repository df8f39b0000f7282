package printable

import (
	"bytes"
	"testing"
)

func TestEscapesControlCharacters(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain text\nnext\tline", "plain text\nnext\tline"},
		{"pod \x1b[2J\x1b]0;pwned\x07name", `pod \x1b[2J\x1b]0;pwned\aname`},
		{"over\rwrite", `over\rwrite`},
		{"del\x7f", `del\x7f`},
		{"c1 \u009b31m", `c1 \u009b31m`},
		{"ünïcode ok", "ünïcode ok"},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.in == "c1 \u009b31m" {
			continue // C1 is a rune, not a byte: String only
		}
		var buf bytes.Buffer
		w := Writer(&buf)
		// Split inside the sequence: each byte is escaped on its own.
		for i := 0; i < len(tc.in); i += 3 {
			n, err := w.Write([]byte(tc.in[i:min(i+3, len(tc.in))]))
			if err != nil || n != min(3, len(tc.in)-i) {
				t.Fatalf("Write: %d %v", n, err)
			}
		}
		if buf.String() != tc.want {
			t.Errorf("Writer(%q) wrote %q, want %q", tc.in, buf.String(), tc.want)
		}
	}
}

func TestLineEscapesNewlinesToo(t *testing.T) {
	if got, want := Line("alias *a\n b\tc\x1b"), `alias *a\n b\tc\x1b`; got != want {
		t.Errorf("Line = %q, want %q", got, want)
	}
}
