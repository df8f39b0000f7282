package plans

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/lexer"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// Load reads and strictly parses the plan file at path. It neither applies
// defaults nor validates; see LoadAndValidate.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load plan: %w", err)
	}
	return Parse(path, data)
}

// Parse strictly parses one plan document. filename is used in error
// messages and to resolve relative paths (Dir). Unknown fields, wrong types,
// duplicate keys, a second document and an empty document are errors; all
// such problems are returned together as Errors.
func Parse(filename string, data []byte) (*Plan, error) {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		dir = filepath.Dir(filename)
	}
	src := newSource(filename, dir)
	file, err := parseYAML(data)
	if err != nil {
		return nil, Errors{syntaxError(filename, err)}
	}

	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || doc.Body == nil {
			continue
		}
		if body != nil {
			tk := doc.Body.GetToken()
			if doc.Start != nil {
				tk = doc.Start
			}
			e := &Error{File: filename, Path: RootPath,
				Message: "a second YAML document starts here; a plan file holds exactly one document"}
			e.Line, e.Column = tokenPos(tk)
			return nil, Errors{e}
		}
		body = doc.Body
	}
	if body == nil || body.Type() == ast.NullType {
		e := &Error{File: filename, Line: 1, Column: 1, Path: RootPath,
			Message: "empty document: expected a plan (apiVersion, kind, metadata, hosts, clusters...)"}
		return nil, Errors{e}
	}

	p := &Plan{src: src}
	d := &decoder{src: src, anchors: map[string]ast.Node{}, budget: maxNodes}
	d.decode(body, reflectValue(p), "")
	if err := d.errs.err(); err != nil {
		return nil, err
	}
	return p, nil
}

// parseYAML runs goccy's parser, turning a panic in it into an error.
// Duplicate keys are allowed here: the decoder reports them with a field path.
// The tokens are checked for flow nesting deeper than maxDepth first: the
// lexer is linear in the input, the parser is not on deep flow collections
// (32,000 brackets took it over a second), and no plan nests that deep.
func parseYAML(data []byte) (file *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			file, err = nil, fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	tokens := lexer.Tokenize(string(data))
	if tk := tooDeep(tokens); tk != nil {
		return nil, &yaml.SyntaxError{Message: fmt.Sprintf("flow collections ([ ], { }) nested deeper than %d", maxDepth), Token: tk}
	}
	return parser.Parse(tokens, 0, parser.AllowDuplicateMapKey())
}

// tooDeep returns the first token that opens a flow collection nested
// deeper than maxDepth, or nil.
func tooDeep(tokens token.Tokens) *token.Token {
	depth := 0
	for _, tk := range tokens {
		switch tk.Type {
		case token.SequenceStartType, token.MappingStartType:
			depth++
			if depth > maxDepth {
				return tk
			}
		case token.SequenceEndType, token.MappingEndType:
			depth = max(depth-1, 0)
		}
	}
	return nil
}

// syntaxError maps a goccy parse error to one positioned Error.
func syntaxError(filename string, err error) *Error {
	e := &Error{File: filename, Path: RootPath}
	var se *yaml.SyntaxError
	var msg string
	if errors.As(err, &se) {
		// Not se.Error(): it prints the source around the token, in time
		// quadratic in the line's length.
		msg = se.Message
		e.Line, e.Column = tokenPos(se.Token)
	} else {
		msg, _, _ = strings.Cut(err.Error(), "\n")
	}
	if strings.Contains(msg, "\t") || strings.Contains(msg, `'\t'`) {
		msg = "found a tab character where YAML does not allow one"
		e.Hint = "indent with spaces, not tabs"
	}
	e.Message = "invalid YAML: " + oneLine(msg)
	return e
}

// tokenPos is the line and column of tk, or 0, 0.
func tokenPos(tk *token.Token) (int, int) {
	if tk == nil || tk.Position == nil {
		return 0, 0
	}
	return tk.Position.Line, tk.Position.Column
}

// oneLine collapses whitespace runs containing newlines.
func oneLine(s string) string {
	if !strings.ContainsAny(s, "\r\n") {
		return s
	}
	return strings.Join(strings.Fields(s), " ")
}

// LoadAndValidate loads the plan at path, validates it as written (so that
// messages point at what the user wrote and no default hides a mistake),
// then applies the defaults. On error the plan is nil.
func LoadAndValidate(path string) (*Plan, error) {
	p, err := Load(path)
	if err != nil {
		return nil, err
	}
	if err := Validate(p); err != nil {
		return nil, err
	}
	ApplyDefaults(p)
	return p, nil
}
