// Package printable keeps text from hosts and clusters (command output,
// Secret names, object fields, error messages) from driving the terminal:
// control characters other than newline and tab are shown as Go escapes
// (ESC as \x1b), so a value cannot move the cursor, retitle the window,
// rewrite earlier lines or hide what follows.
package printable

import (
	"io"
	"strconv"
	"strings"
	"unicode"
)

// String returns s with every control character but newline and tab
// escaped.
func String(s string) string { return escape(s, IsUnsafe) }

// Line returns s with every control character escaped, newline and tab
// too: text that must stay on one line.
func Line(s string) string { return escape(s, unicode.IsControl) }

// IsUnsafe reports whether r is a control character other than newline
// and tab: what String escapes.
func IsUnsafe(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }

// escape writes the runes of s for which unsafe is true as Go escapes.
func escape(s string, unsafe func(rune) bool) string {
	if !strings.ContainsFunc(s, unsafe) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafe(r) {
			b.WriteString(escaped(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// escaped is r as a Go escape, without quotes: \x1b, \n, \u009b.
func escaped(r rune) string {
	q := strconv.QuoteRune(r)
	return q[1 : len(q)-1]
}

// Writer escapes, as String does, the C0 control bytes (but newline and
// tab) and DEL of everything written to w. It works byte by byte, so a
// sequence split across writes is escaped too.
func Writer(w io.Writer) io.Writer { return writer{w} }

type writer struct{ w io.Writer }

func (w writer) Write(p []byte) (int, error) {
	clean := true
	for _, c := range p {
		if unsafeByte(c) {
			clean = false
			break
		}
	}
	if clean {
		return w.w.Write(p)
	}
	out := make([]byte, 0, len(p)+16)
	for _, c := range p {
		if unsafeByte(c) {
			out = append(out, escaped(rune(c))...)
			continue
		}
		out = append(out, c)
	}
	if _, err := w.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

func unsafeByte(c byte) bool { return (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f }
