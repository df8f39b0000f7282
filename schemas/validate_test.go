package schemas_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestExamplesValidate checks every plan in examples/ against the schema.
func TestExamplesValidate(t *testing.T) {
	s := compile(t)
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("found %d examples in ../examples, want at least 4", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Validate(instance(t, data)); err != nil {
				t.Errorf("%s does not match the schema:\n%v", f, err)
			}
		})
	}
}

// minimal is the smallest valid plan; the cases below break it one way each.
const minimal = `
apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: demo}
hosts:
  - {name: vm1, address: 192.0.2.1}
clusters:
  - {name: c1, servers: [vm1]}
`

func TestMinimalValidates(t *testing.T) {
	if err := compile(t).Validate(instance(t, []byte(minimal))); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaRejects proves the schema has teeth: each document is invalid,
// and the error names the reason.
func TestSchemaRejects(t *testing.T) {
	s := compile(t)
	tests := []struct {
		name, doc string
		at        string // instance location of the error
		want      string // text of the error
	}{
		{
			name: "unknown top-level field",
			at:   "",
			doc:  minimal + "extra: 1\n",
			want: "additional properties 'extra' not allowed",
		},
		{
			name: "unknown field in host (typo)",
			at:   "/hosts/0",
			doc: strings.Replace(minimal, "{name: vm1, address: 192.0.2.1}",
				"{name: vm1, address: 192.0.2.1, privateIp: 10.0.0.1}", 1),
			want: "additional properties 'privateIp' not allowed",
		},
		{
			name: "unknown field in free-form map's parent",
			at:   "/meshes/0/istio",
			doc: minimal + `meshes:
  - name: m
    clusters: [c1]
    istio: {meshConfig: {anything: goes}, valuez: {}}
`,
			want: "additional properties 'valuez' not allowed",
		},
		{
			name: "wrong apiVersion",
			at:   "/apiVersion",
			doc:  strings.Replace(minimal, "mcplan.io/v1alpha1", "mcplan.io/v1", 1),
			want: "value must be 'mcplan.io/v1alpha1'",
		},
		{
			name: "wrong kind",
			at:   "/kind",
			doc:  strings.Replace(minimal, "kind: Plan", "kind: Cluster", 1),
			want: "value must be 'Plan'",
		},
		{
			name: "wrong mesh model",
			at:   "/meshes/0/model",
			doc:  minimal + "meshes:\n  - {name: m, model: multi-master, clusters: [c1]}\n",
			want: "value must be one of",
		},
		{
			name: "wrong mirror",
			at:   "/clusters/0/k3s/mirror",
			doc:  strings.Replace(minimal, "servers: [vm1]}", "servers: [vm1], k3s: {mirror: us}}", 1),
			want: "value must be one of",
		},
		{
			name: "wrong key size",
			at:   "/meshes/0/ca/keySize",
			doc:  minimal + "meshes:\n  - {name: m, clusters: [c1], ca: {keySize: 1024}}\n",
			want: "value must be one of",
		},
		{
			name: "wrong sample",
			at:   "/meshes/0/verify/sample",
			doc:  minimal + "meshes:\n  - {name: m, clusters: [c1], verify: {sample: bookinfo}}\n",
			want: "value must be 'helloworld'",
		},
		{
			name: "missing metadata",
			at:   "",
			doc:  strings.Replace(minimal, "metadata: {name: demo}\n", "", 1),
			want: "missing property 'metadata'",
		},
		{
			name: "missing host address",
			at:   "/hosts/0",
			doc:  strings.Replace(minimal, "{name: vm1, address: 192.0.2.1}", "{name: vm1}", 1),
			want: "missing property 'address'",
		},
		{
			name: "missing cluster servers",
			at:   "/clusters/0",
			doc:  strings.Replace(minimal, "{name: c1, servers: [vm1]}", "{name: c1}", 1),
			want: "missing property 'servers'",
		},
		{
			name: "missing airgap binary",
			at:   "/clusters/0/k3s/airgap",
			doc: strings.Replace(minimal, "servers: [vm1]}",
				"servers: [vm1], k3s: {airgap: {installScript: ./install.sh}}}", 1),
			want: "missing property 'binary'",
		},
		{
			name: "empty servers",
			at:   "/clusters/0/servers",
			doc:  strings.Replace(minimal, "servers: [vm1]", "servers: []", 1),
			want: "minItems",
		},
		{
			name: "servers and kubeconfig",
			at:   "/clusters/0",
			doc:  strings.Replace(minimal, "servers: [vm1]", "servers: [vm1], kubeconfig: {path: k.yaml}", 1),
			want: "'oneOf' failed, subschemas 0, 1 matched",
		},
		{
			name: "port as string",
			at:   "/ssh/port",
			doc:  minimal + "ssh: {port: \"22\"}\n",
			want: "got string, want integer",
		},
		{
			name: "port out of range",
			at:   "/ssh/port",
			doc:  minimal + "ssh: {port: 70000}\n",
			want: "maximum",
		},
		{
			name: "requests zero",
			at:   "/meshes/0/verify/requests",
			doc:  minimal + "meshes:\n  - {name: m, clusters: [c1], verify: {requests: 0}}\n",
			want: "minimum",
		},
		{
			name: "hosts not a list",
			at:   "/hosts",
			doc:  strings.Replace(minimal, "hosts:\n  - {name: vm1, address: 192.0.2.1}", "hosts: {vm1: 192.0.2.1}", 1),
			want: "got object, want array",
		},
		{
			name: "useAgent as string",
			at:   "/ssh/useAgent",
			doc:  minimal + "ssh: {useAgent: \"yes\"}\n",
			want: "got string, want boolean",
		},
		{
			name: "meshConfig not an object",
			at:   "/meshes/0/istio/meshConfig",
			doc:  minimal + "meshes:\n  - {name: m, clusters: [c1], istio: {meshConfig: [a]}}\n",
			want: "got array, want object",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.doc == minimal {
				t.Fatal("test case does not change the minimal plan")
			}
			err := s.Validate(instance(t, []byte(tt.doc)))
			if err == nil {
				t.Fatalf("schema accepted:\n%s", tt.doc)
			}
			var ve *jsonschema.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("error is %T, want *jsonschema.ValidationError: %v", err, err)
			}
			if want := "at '" + tt.at + "': " + tt.want; !strings.Contains(err.Error(), want) {
				t.Errorf("error does not mention %q:\n%v", want, err)
			}
		})
	}
}
