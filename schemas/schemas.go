// Package schemas holds the JSON Schema of the mcplan plan format. The
// schema is generated from the Go types in package plans (see Generate) and
// checked in as plan.schema.json; a test fails when the two drift apart.
package schemas

//go:generate go run ./gen

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/invopop/jsonschema"

	"mcplan.io/mcplan/plans"
)

// ID is the $id of the plan schema.
const ID = "https://mcplan.io/schemas/plan-v1alpha1.json"

// Title is the title of the plan schema.
const Title = "mcplan Plan (mcplan.io/v1alpha1)"

const description = "An mcplan plan: hosts reached by SSH, the k3s clusters built on them, " +
	"the networks they sit on and the Istio meshes that join them."

//go:embed plan.schema.json
var planSchema []byte

// JSON returns the checked-in plan schema (plan.schema.json). The caller may
// modify the returned slice.
func JSON() []byte {
	return bytes.Clone(planSchema)
}

// freeForm are the JSON paths (type.field) of maps whose content mcplan does
// not interpret: they are passed through to Istio and accept any keys.
var freeForm = map[string]bool{
	"Istio.meshConfig": true,
	"Istio.values":     true,
}

// Generate reflects plans.Plan into a JSON Schema (draft 2020-12) and
// returns it as indented JSON with a trailing newline. The output is
// deterministic: properties follow the Go field order, $defs are sorted.
//
// What comes from where:
//   - property names from the json tags; a property is required when its
//     json tag has no omitempty;
//   - description, enum, minimum, maximum, minItems from the jsonschema tags;
//   - additionalProperties is false on every object, except the free-form
//     maps meshes[].istio.meshConfig and meshes[].istio.values;
//   - apiVersion and kind are constants (plans.APIVersion, plans.Kind).
func Generate() ([]byte, error) {
	r := &jsonschema.Reflector{
		BaseSchemaID:   jsonschema.ID(ID),
		ExpandedStruct: true, // the root is the Plan object itself, not a $ref
	}
	s := r.Reflect(&plans.Plan{})
	s.ID = jsonschema.ID(ID)
	s.Title = Title
	s.Description = description

	// Every struct type, by the name used in $defs; the root is Plan.
	types := map[string]*jsonschema.Schema{"Plan": s}
	for name, def := range s.Definitions {
		types[name] = def
	}

	if err := fixFields(reflect.TypeOf(plans.Plan{}), types, map[reflect.Type]bool{}); err != nil {
		return nil, err
	}

	for _, p := range []struct{ name, value string }{
		{"apiVersion", plans.APIVersion},
		{"kind", plans.Kind},
	} {
		prop, ok := s.Properties.Get(p.name)
		if !ok {
			return nil, fmt.Errorf("schemas: Plan has no property %q", p.name)
		}
		prop.Const = p.value
	}

	// timeouts is keyed by step kind: editors complete and check the keys.
	timeouts, ok := s.Properties.Get("timeouts")
	if !ok {
		return nil, fmt.Errorf("schemas: Plan has no property %q", "timeouts")
	}
	kinds := make([]any, 0, len(plans.Kinds()))
	for _, k := range plans.Kinds() {
		kinds = append(kinds, k)
	}
	timeouts.PropertyNames = &jsonschema.Schema{Enum: kinds}

	// A cluster is installed by mcplan (servers) or given by kubeconfig:
	// one of the two.
	cluster, ok := types["Cluster"]
	if !ok {
		return nil, fmt.Errorf("schemas: no Cluster definition")
	}
	one := uint64(1)
	servers := jsonschema.NewProperties()
	servers.Set("servers", &jsonschema.Schema{MinItems: &one})
	cluster.OneOf = []*jsonschema.Schema{
		{Required: []string{"servers"}, Properties: servers},
		{Required: []string{"kubeconfig"}},
	}

	if err := checkClosed(types); err != nil {
		return nil, err
	}

	raw, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("schemas: marshal: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, raw, "", "  "); err != nil {
		return nil, fmt.Errorf("schemas: indent: %w", err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// fixFields walks the struct types reachable from t and, for each field,
// repairs what the reflector cannot get from the tags alone:
//
//   - descriptions holding a comma: invopop splits jsonschema tags on every
//     unescaped comma, so "description=a, b" would end at "a". The full text
//     is taken back from the tag (see tagDescription).
//   - free-form maps: additionalProperties is made explicitly true.
func fixFields(t reflect.Type, types map[string]*jsonschema.Schema, seen map[reflect.Type]bool) error {
	t = deref(t)
	if t.Kind() != reflect.Struct || seen[t] {
		return nil
	}
	seen[t] = true
	def, ok := types[t.Name()]
	if !ok || def.Properties == nil {
		return fmt.Errorf("schemas: no definition for %s", t.Name())
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "-" || !f.IsExported() {
			continue
		}
		prop, ok := def.Properties.Get(name)
		if !ok {
			return fmt.Errorf("schemas: %s has no property %q", t.Name(), name)
		}
		if d, ok := tagDescription(f.Tag.Get("jsonschema")); ok {
			prop.Description = d
		}
		if freeForm[t.Name()+"."+name] {
			if f.Type.Kind() != reflect.Map {
				return fmt.Errorf("schemas: free-form %s.%s is not a map", t.Name(), name)
			}
			prop.AdditionalProperties = jsonschema.TrueSchema
		}
		elem := deref(f.Type)
		if elem.Kind() == reflect.Slice || elem.Kind() == reflect.Map {
			elem = deref(elem.Elem())
		}
		if err := fixFields(elem, types, seen); err != nil {
			return err
		}
	}
	return nil
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// tagKeyword matches a jsonschema tag element that is a keyword
// ("minimum=1", "required"), as opposed to the rest of a sentence after a
// comma (" or 'pin' to trust ...").
var tagKeyword = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(=|$)`)

// tagDescription returns the description= value of a jsonschema tag,
// including any text after unescaped commas up to the next keyword.
func tagDescription(tag string) (string, bool) {
	parts := splitTag(tag)
	for i, p := range parts {
		d, ok := strings.CutPrefix(p, "description=")
		if !ok {
			continue
		}
		for _, next := range parts[i+1:] {
			if tagKeyword.MatchString(next) {
				break
			}
			d += "," + next
		}
		return d, true
	}
	return "", false
}

// splitTag splits a jsonschema tag on commas not escaped with a backslash,
// removing the escapes, as invopop/jsonschema does.
func splitTag(tag string) []string {
	var parts []string
	var cur strings.Builder
	for i := 0; i < len(tag); i++ {
		switch {
		case tag[i] == '\\' && i+1 < len(tag) && tag[i+1] == ',':
			cur.WriteByte(',')
			i++
		case tag[i] == ',':
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(tag[i])
		}
	}
	return append(parts, cur.String())
}

// checkClosed verifies that every object schema with properties forbids
// unknown properties, so a typo in a plan is an error.
func checkClosed(types map[string]*jsonschema.Schema) error {
	for name, def := range types {
		if def.Properties == nil {
			continue
		}
		if def.AdditionalProperties != jsonschema.FalseSchema {
			return fmt.Errorf("schemas: %s allows additional properties", name)
		}
	}
	return nil
}
