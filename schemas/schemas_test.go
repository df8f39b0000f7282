package schemas_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/schemas"
)

var update = flag.Bool("update", false, "rewrite plan.schema.json from the Go types")

const schemaFile = "plan.schema.json"

func TestSchemaUpToDate(t *testing.T) {
	got, err := schemas.Generate()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(schemaFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("schemas/plan.schema.json is stale: run go generate ./schemas\n%s", firstDiff(want, got))
	}
}

// firstDiff shows the first differing line of the checked-in and the
// generated schema, to say what drifted.
func firstDiff(old, gen []byte) string {
	a, b := strings.Split(string(old), "\n"), strings.Split(string(gen), "\n")
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			return "line " + strconv.Itoa(i+1) + ":\n  checked in: " + x + "\n  generated:  " + y
		}
	}
	return ""
}

func TestGenerateIsDeterministic(t *testing.T) {
	a, err := schemas.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, err := schemas.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two Generate calls differ")
		}
	}
	if !bytes.HasSuffix(a, []byte("}\n")) || bytes.HasSuffix(a, []byte("\n\n")) {
		t.Error("schema does not end with exactly one newline")
	}
}

func TestJSONIsEmbeddedFile(t *testing.T) {
	want, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	got := schemas.JSON()
	if !bytes.Equal(got, want) && !*update {
		t.Error("JSON() differs from plan.schema.json (rebuild after go generate)")
	}
	got[0] = 'X' // callers get a copy
	if schemas.JSON()[0] == 'X' {
		t.Error("JSON() returns the embedded slice itself")
	}
}

// compile compiles the generated schema (not the file, so the tests below
// test the Go types even when the file is stale).
func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	data, err := schemas.Generate()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(schemas.ID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(schemas.ID)
	if err != nil {
		t.Fatalf("compile schema: %v", err)
	}
	return s
}

// instance converts a YAML document to the JSON value the validator takes.
func instance(t *testing.T, y []byte) any {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("yaml to json: %v", err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatalf("unmarshal json: %v", err)
	}
	return v
}

func TestSchemaMetadata(t *testing.T) {
	data, err := schemas.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"$schema": "https://json-schema.org/draft/2020-12/schema",
		"$id":     "https://mcplan.io/schemas/plan-v1alpha1.json",
		"title":   schemas.Title,
	} {
		if doc[k] != want {
			t.Errorf("%s = %v, want %q", k, doc[k], want)
		}
	}
	props := doc["properties"].(map[string]any)
	for k, want := range map[string]string{"apiVersion": plans.APIVersion, "kind": plans.Kind} {
		if got := props[k].(map[string]any)["const"]; got != want {
			t.Errorf("properties.%s.const = %v, want %q", k, got, want)
		}
	}
	// A description holding a comma must survive the tag parsing.
	ssh := doc["$defs"].(map[string]any)["SSH"].(map[string]any)["properties"].(map[string]any)
	if d := ssh["knownHosts"].(map[string]any)["description"].(string); !strings.Contains(d, "'pin'") {
		t.Errorf("SSH.knownHosts description truncated: %q", d)
	}
}

// TestSchemaMatchesTypes walks the Go types and the schema together: each
// struct is a closed object whose properties are the json names, required
// exactly when the json tag has no omitempty; the free-form maps are open.
func TestSchemaMatchesTypes(t *testing.T) {
	data, err := schemas.Generate()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	defs := doc["$defs"].(map[string]any)
	resolve := func(s map[string]any) map[string]any {
		if ref, ok := s["$ref"].(string); ok {
			return defs[strings.TrimPrefix(ref, "#/$defs/")].(map[string]any)
		}
		return s
	}
	openMaps := 0
	seen := map[reflect.Type]bool{}
	var walk func(path string, typ reflect.Type, s map[string]any)
	walk = func(path string, typ reflect.Type, s map[string]any) {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		s = resolve(s)
		switch typ.Kind() {
		case reflect.Slice:
			if s["type"] != "array" {
				t.Errorf("%s: type %v, want array", path, s["type"])
				return
			}
			walk(path+"[]", typ.Elem(), s["items"].(map[string]any))
			return
		case reflect.Map:
			if typ.Elem().Kind() == reflect.String {
				// A map of strings keyed by step kind (timeouts).
				names, _ := s["propertyNames"].(map[string]any)
				values, _ := s["additionalProperties"].(map[string]any)
				if s["type"] != "object" || values["type"] != "string" || len(names["enum"].([]any)) != len(plans.Kinds()) {
					t.Errorf("%s: a map of strings by step kind, got %v", path, s)
				}
				return
			}
			if s["type"] != "object" || s["additionalProperties"] != true {
				t.Errorf("%s: free-form map must be an open object, got %v", path, s)
			}
			openMaps++
			return
		case reflect.Struct:
		default:
			return
		}
		if seen[typ] {
			return
		}
		seen[typ] = true
		if s["additionalProperties"] != false {
			t.Errorf("%s (%s): additionalProperties = %v, want false", path, typ.Name(), s["additionalProperties"])
		}
		props, _ := s["properties"].(map[string]any)
		var required []string
		reqs, _ := s["required"].([]any)
		for _, r := range reqs {
			required = append(required, r.(string))
		}
		var wantRequired []string
		fields := 0
		for f := range typ.Fields() {
			tag := strings.Split(f.Tag.Get("json"), ",")
			name := tag[0]
			if !f.IsExported() || name == "-" {
				continue // not part of the document
			}
			fields++
			if !slices.Contains(tag[1:], "omitempty") {
				wantRequired = append(wantRequired, name)
			}
			p, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: no property %q", path, name)
				continue
			}
			walk(path+"."+name, f.Type, p)
		}
		if len(props) != fields {
			t.Errorf("%s: %d properties, %s has %d fields", path, len(props), typ.Name(), fields)
		}
		slices.Sort(required)
		slices.Sort(wantRequired)
		if !slices.Equal(required, wantRequired) {
			t.Errorf("%s: required %v, want %v", path, required, wantRequired)
		}
	}
	walk("plan", reflect.TypeOf(plans.Plan{}), doc)
	if openMaps != 2 {
		t.Errorf("found %d free-form maps, want 2 (istio.meshConfig, istio.values)", openMaps)
	}
}
