package plans

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"mcplan.io/mcplan/internal/printable"
)

// RootPath is the field path of the plan document itself.
const RootPath = "(root)"

// Error is one problem in a plan, positioned at the offending YAML node.
// Line and Column are 1-based; both are 0 when the position is unknown
// (for example for a plan built in Go code).
type Error struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Error formats the problem as "<file>:<line>:<col>: <path>: <message> (<hint>)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
		}
		b.WriteString(": ")
	}
	path := e.Path
	if path == "" {
		path = RootPath
	}
	// A key or an alias name can hold a newline: every problem stays on
	// one line that starts with its position.
	b.WriteString(printable.Line(path))
	b.WriteString(": ")
	b.WriteString(printable.Line(e.Message))
	if e.Hint != "" {
		b.WriteString(" (")
		b.WriteString(printable.Line(e.Hint))
		b.WriteString(")")
	}
	return b.String()
}

// Errors is a list of plan problems. It is the error returned by Parse,
// Load, Validate and LoadAndValidate; get it back with errors.As.
type Errors []*Error

// Error prints one problem per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// err returns es as an error, or nil when it is empty. Problems are sorted by
// position (unpositioned ones keep their order, first).
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	sorted := slices.Clone(es)
	slices.SortStableFunc(sorted, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return sorted
}

// Warning is something legal but probably not what the user wants. It has
// the same fields and format as Error.
type Warning Error

// String formats the warning like an Error.
func (w Warning) String() string {
	e := Error(w)
	return e.Error()
}
