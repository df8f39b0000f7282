package steps

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/plans"
)

// TestReadManifests reads manifest sources as kubectl apply -f/-k does:
// a file, a directory (its manifests only, not its subdirectories), a
// directory with recursive, a kustomization whose labels transformer adds
// a label to every object (and one that names files outside its
// directory, which kustomize refuses as kubectl does), a List with a document after it; an object
// read twice is an error.
func TestReadManifests(t *testing.T) {
	dir := filepath.Join("testdata", "manifests")
	for _, tt := range []struct {
		name    string
		sources []plans.ManifestSource
	}{
		{"file", []plans.ManifestSource{{Path: "app/deployment.yaml"}}},
		{"directory", []plans.ManifestSource{{Path: "app"}}},
		{"recursive", []plans.ManifestSource{{Path: "app", Recursive: true}}},
		{"kustomize", []plans.ManifestSource{{Path: "kustomized", Kustomize: true}}},
		{"kustomize-outside", []plans.ManifestSource{{Path: "outside", Kustomize: true}}},
		{"list", []plans.ManifestSource{{Path: "list/list.yaml"}}},
		{"twice", []plans.ManifestSource{{Path: "app/namespace.yaml"}, {Path: "dup"}}},
		{"missing", []plans.ManifestSource{{Path: "nowhere.yaml"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			objs, err := readManifests(dir, tt.sources)
			golden.Check(t, filepath.Join(dir, "golden", tt.name+".golden"), manifestsText(t, objs, err))
		})
	}
}

// manifestsText is the objects read as YAML documents, or the error.
func manifestsText(t *testing.T, objs []*unstructured.Unstructured, err error) string {
	t.Helper()
	if err != nil {
		// The error names paths under the test's working directory.
		return "error: " + strings.ReplaceAll(err.Error(), mustAbs(t, "."), "$PWD") + "\n"
	}
	var docs []string
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(data))
	}
	return strings.Join(docs, "---\n")
}

func mustAbs(t *testing.T, path string) string {
	t.Helper()
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}
