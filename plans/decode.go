package plans

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/goccy/go-yaml/ast"

	"mcplan.io/mcplan/internal/printable"
)

// maxNodes bounds the nodes one decode visits, so that aliases cannot blow
// up ("billion laughs").
const maxNodes = 100_000

// maxDepth bounds nesting (through aliases too).
const maxDepth = 200

// decoder strictly decodes a YAML AST into the plan types, recording the
// position of every field path and collecting every problem it meets.
type decoder struct {
	src     *source
	errs    Errors
	anchors map[string]ast.Node
	budget  int
	depth   int
}

func reflectValue(p *Plan) reflect.Value { return reflect.ValueOf(p).Elem() }

func (d *decoder) fail(n ast.Node, path, msg, hint string) {
	line, col := nodePos(n)
	if path == "" {
		path = RootPath
	}
	d.errs = append(d.errs, &Error{File: d.src.file, Line: line, Column: col, Path: path, Message: msg, Hint: hint})
}

// nodePos is where n starts in the file: for a block mapping, its first key.
func nodePos(n ast.Node) (int, int) {
	switch x := n.(type) {
	case nil:
		return 0, 0
	case *ast.MappingNode:
		if !x.IsFlowStyle && len(x.Values) > 0 && x.Values[0].Key != nil {
			return nodePos(x.Values[0].Key)
		}
	case *ast.MappingValueNode:
		if x.Key != nil {
			return nodePos(x.Key)
		}
	}
	return tokenPos(n.GetToken())
}

// resolve strips anchors and tags and follows aliases. It returns the
// node holding the value and the explicit tag, if any.
func (d *decoder) resolve(n ast.Node, path string) (ast.Node, string, bool) {
	tag := ""
	for hops := 0; ; hops++ {
		if hops > maxDepth {
			d.fail(n, path, "too many nested anchors, aliases or tags", "")
			return nil, "", false
		}
		switch x := n.(type) {
		case *ast.AnchorNode:
			if x.Name != nil {
				d.anchors[x.Name.GetToken().Value] = x.Value
			}
			n = x.Value
		case *ast.AliasNode:
			name := ""
			if x.Value != nil {
				name = x.Value.GetToken().Value
			}
			target, ok := d.anchors[name]
			if !ok {
				d.fail(n, path, fmt.Sprintf("alias *%s refers to no anchor defined before it", name), "")
				return nil, "", false
			}
			n = target
		case *ast.TagNode:
			if x.Start != nil && tag == "" {
				tag = x.Start.Value
			}
			n = x.Value
		default:
			return n, tag, true
		}
		if n == nil {
			return nil, tag, true
		}
	}
}

// decode decodes n into v, a value of a plan type, at field path path.
func (d *decoder) decode(n ast.Node, v reflect.Value, path string) {
	if n == nil {
		return
	}
	d.budget--
	d.depth++
	defer func() { d.depth-- }()
	if d.budget < 0 || d.depth > maxDepth {
		if d.budget == -1 || d.depth == maxDepth+1 {
			d.fail(n, path, "document too large or too deeply nested", "")
		}
		return
	}
	line, col := nodePos(n)
	d.src.pos[path] = position{line, col}
	orig := n
	n, tag, ok := d.resolve(n, path)
	if !ok || n == nil {
		return
	}
	if n.Type() == ast.NullType && tag == "" {
		return // null leaves the zero value
	}
	switch v.Kind() {
	case reflect.Pointer:
		nv := reflect.New(v.Type().Elem())
		d.decode(orig, nv.Elem(), path)
		v.Set(nv)
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		seq, ok := n.(*ast.SequenceNode)
		if !ok {
			d.typeError(n, path, "a list", tag)
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, len(seq.Values))
		for i, item := range seq.Values {
			ev := reflect.New(v.Type().Elem()).Elem()
			d.decode(item, ev, indexPath(path, i))
			out = reflect.Append(out, ev)
		}
		v.Set(out)
	case reflect.String:
		s, ok := scalarString(n, tag)
		if !ok {
			d.typeError(n, path, "a string", tag)
			return
		}
		if r, ok := firstRune(s, unicode.IsControl); ok {
			d.fail(n, path, fmt.Sprintf("contains the control character %s: no field of a plan takes one", strconv.QuoteRune(r)), "")
			return
		}
		v.SetString(s)
	case reflect.Int:
		in, ok := n.(*ast.IntegerNode)
		if !ok || (tag != "" && tag != "!!int") {
			d.typeError(n, path, "an integer", tag)
			return
		}
		i, ok := intValue(in)
		if !ok {
			d.fail(n, path, fmt.Sprintf("integer %s is out of range", in.GetToken().Value), "")
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		b, ok := n.(*ast.BoolNode)
		if !ok || (tag != "" && tag != "!!bool") {
			d.typeError(n, path, "a boolean (true or false)", tag)
			return
		}
		v.SetBool(b.Value)
	case reflect.Map:
		m, ok := n.(*ast.MappingNode)
		if !ok {
			d.typeError(n, path, "a mapping", tag)
			return
		}
		if v.Type().Elem().Kind() == reflect.String {
			d.decodeStringMap(m, v, path)
			return
		}
		if m, ok := d.generic(n, path).(map[string]any); ok {
			v.Set(reflect.ValueOf(m))
		}
	case reflect.Interface:
		if g := d.generic(n, path); g != nil {
			v.Set(reflect.ValueOf(g))
		}
	default:
		d.fail(n, path, fmt.Sprintf("cannot decode into %s", v.Type()), "")
	}
}

// decodeStruct decodes a mapping into a struct, rejecting unknown fields
// and duplicate keys.
func (d *decoder) decodeStruct(n ast.Node, v reflect.Value, path string) {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		d.typeError(n, path, "a mapping", "")
		return
	}
	fields := yamlFields(v.Type())
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sortStrings(names)
	seen := map[string]position{}
	for _, mv := range m.Values {
		key, ok := d.key(mv, path)
		if !ok {
			continue
		}
		child := fieldPath(path, key)
		kl, kc := nodePos(mv.Key)
		if first, dup := seen[key]; dup {
			d.fail(mv.Key, child, fmt.Sprintf("duplicate key %q (first set at line %d)", key, first.Line), "")
			continue
		}
		seen[key] = position{kl, kc}
		idx, ok := fields[key]
		if !ok {
			d.fail(mv.Key, child, fmt.Sprintf("unknown field %q", key), didYouMean(key, names))
			continue
		}
		d.src.keyPos[child] = position{kl, kc}
		d.decode(mv.Value, v.Field(idx), child)
	}
}

// decodeStringMap decodes a mapping of strings (timeouts), rejecting
// duplicate keys and values that are not strings, each at its position.
func (d *decoder) decodeStringMap(m *ast.MappingNode, v reflect.Value, path string) {
	out := reflect.MakeMapWithSize(v.Type(), len(m.Values))
	seen := map[string]position{}
	for _, mv := range m.Values {
		key, ok := d.key(mv, path)
		if !ok {
			continue
		}
		child := fieldPath(path, key)
		kl, kc := nodePos(mv.Key)
		if first, dup := seen[key]; dup {
			d.fail(mv.Key, child, fmt.Sprintf("duplicate key %q (first set at line %d)", key, first.Line), "")
			continue
		}
		seen[key] = position{kl, kc}
		d.src.keyPos[child] = position{kl, kc}
		val := reflect.New(v.Type().Elem()).Elem()
		d.decode(mv.Value, val, child)
		out.SetMapIndex(reflect.ValueOf(key), val)
	}
	v.Set(out)
}

// key returns the string key of a mapping entry, reporting keys that are
// not plain scalars and merge keys.
func (d *decoder) key(mv *ast.MappingValueNode, path string) (string, bool) {
	if mv == nil || mv.Key == nil {
		return "", false
	}
	if mv.Key.Type() == ast.MergeKeyType {
		d.fail(mv.Key, path, "merge keys (<<) are not supported in a plan", "repeat the fields instead")
		return "", false
	}
	k, _, ok := d.resolve(mv.Key, path)
	if !ok {
		return "", false
	}
	s, ok := scalarString(k, "")
	if !ok {
		if sc, isScalar := k.(ast.ScalarNode); isScalar {
			return fmt.Sprint(sc.GetValue()), true
		}
		d.fail(mv.Key, path, fmt.Sprintf("mapping key must be a scalar, not %s", kindOf(k)), "")
		return "", false
	}
	return s, true
}

// generic decodes a free-form node (meshConfig, values) into maps, lists
// and scalars, still rejecting duplicate keys.
func (d *decoder) generic(n ast.Node, path string) any {
	if n == nil {
		return nil
	}
	d.budget--
	d.depth++
	defer func() { d.depth-- }()
	if d.budget < 0 || d.depth > maxDepth {
		if d.budget == -1 || d.depth == maxDepth+1 {
			d.fail(n, path, "document too large or too deeply nested", "")
		}
		return nil
	}
	line, col := nodePos(n)
	d.src.pos[path] = position{line, col}
	n, tag, ok := d.resolve(n, path)
	if !ok || n == nil {
		return nil
	}
	switch x := n.(type) {
	case *ast.MappingNode:
		out := make(map[string]any, len(x.Values))
		seen := map[string]int{}
		for _, mv := range x.Values {
			key, ok := d.key(mv, path)
			if !ok {
				continue
			}
			child := fieldPath(path, key)
			if first, dup := seen[key]; dup {
				d.fail(mv.Key, child, fmt.Sprintf("duplicate key %q (first set at line %d)", key, first), "")
				continue
			}
			kl, _ := nodePos(mv.Key)
			seen[key] = kl
			out[key] = d.generic(mv.Value, child)
		}
		return out
	case *ast.SequenceNode:
		out := make([]any, 0, len(x.Values))
		for i, item := range x.Values {
			out = append(out, d.generic(item, indexPath(path, i)))
		}
		return out
	case *ast.IntegerNode:
		if tag == "!!str" {
			return x.GetToken().Value
		}
		if i, ok := intValue(x); ok {
			return i
		}
		return x.GetValue()
	case *ast.NullNode:
		if tag == "!!str" {
			return ""
		}
		return nil
	case ast.ScalarNode:
		if s, ok := scalarString(n, tag); ok {
			// Free-form values may hold text blocks, nothing else.
			if r, ok := firstRune(s, printable.IsUnsafe); ok {
				d.fail(n, path, fmt.Sprintf("contains the control character %s", strconv.QuoteRune(r)), "")
				return nil
			}
			if tag == "!!str" {
				return s
			}
		}
		return x.GetValue()
	}
	d.fail(n, path, fmt.Sprintf("unsupported YAML node %s", n.Type()), "")
	return nil
}

// scalarString returns the string of a string node, or of any scalar
// tagged !!str.
func scalarString(n ast.Node, tag string) (string, bool) {
	switch x := n.(type) {
	case *ast.StringNode:
		return x.Value, true
	case *ast.LiteralNode:
		if x.Value == nil {
			return "", true
		}
		return x.Value.Value, true
	}
	if tag == "!!str" {
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

// firstRune is the first rune of s for which f is true.
func firstRune(s string, f func(rune) bool) (rune, bool) {
	for _, r := range s {
		if f(r) {
			return r, true
		}
	}
	return 0, false
}

// intValue returns an integer node's value as an int if it fits.
func intValue(n *ast.IntegerNode) (int, bool) {
	switch v := n.Value.(type) {
	case int64:
		if v < math.MinInt || v > math.MaxInt {
			return 0, false
		}
		return int(v), true
	case uint64:
		if v > math.MaxInt {
			return 0, false
		}
		return int(v), true
	}
	return 0, false
}

// typeError reports n where a value of kind want was expected.
func (d *decoder) typeError(n ast.Node, path, want, tag string) {
	got := kindOf(n)
	hint := ""
	if tk := n.GetToken(); tk != nil && isScalarNode(n) && n.Type() != ast.NullType {
		got += " " + quote(tk.Value)
		switch {
		case want == "a string":
			hint = "quote it: " + quote(tk.Value)
		case want == "an integer" && n.Type() == ast.StringType && isDigits(tk.Value):
			hint = "remove the quotes: " + tk.Value
		}
	}
	if tag != "" {
		got += " tagged " + tag
	}
	d.fail(n, path, fmt.Sprintf("expected %s, got %s", want, got), hint)
}

func isScalarNode(n ast.Node) bool {
	_, ok := n.(ast.ScalarNode)
	return ok
}

// kindOf names a node's kind for messages.
func kindOf(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode:
		return "null"
	}
	return strings.ToLower(n.Type().String())
}

// yamlFields maps the yaml names of t's fields to their indices.
func yamlFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = i
	}
	return out
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}
