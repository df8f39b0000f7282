package steps

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/resource"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
)

// readManifests reads the objects of the user's manifest sources as
// kubectl apply -f (or -k) reads them, through cli-runtime's resource
// builder: a file, a directory's .yaml, .yml and .json files (its
// subdirectories too when recursive), or a kustomization directory
// built by kustomize; Lists are flattened. Paths are relative to dir
// (the plan's). Nothing is asked of a cluster: a namespaced object that
// names no namespace gets one when it is applied (see
// kube.Client.DefaultNamespace). An object read twice is an error: two
// sources would fight over it.
func readManifests(dir string, sources []plans.ManifestSource) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	from := map[kube.Ref]string{}
	for _, src := range sources {
		opts := &resource.FilenameOptions{Recursive: src.Recursive}
		if src.Kustomize {
			opts.Kustomize = plans.ResolvePath(dir, src.Path)
		} else {
			opts.Filenames = []string{plans.ResolvePath(dir, src.Path)}
		}
		infos, err := resource.NewLocalBuilder().Unstructured().FilenameParam(false, opts).Flatten().Do().Infos()
		if err != nil {
			return nil, fmt.Errorf("manifests %s: %w", src.Path, err)
		}
		for _, info := range infos {
			o, ok := info.Object.(*unstructured.Unstructured)
			if !ok {
				return nil, fmt.Errorf("manifests %s: %s: not an object (%T)", src.Path, info.Source, info.Object)
			}
			ref := kube.RefOf(o)
			if ref.Kind == "" || ref.Name == "" {
				return nil, fmt.Errorf("manifests %s: %s: an object needs a kind and a name", src.Path, info.Source)
			}
			key := ref
			key.Version = "" // the same object in another version is the same object
			if first, dup := from[key]; dup {
				return nil, fmt.Errorf("manifests %s: %s is also in %s", src.Path, ref, first)
			}
			from[key] = strings.TrimPrefix(info.Source, dir+"/")
			objs = append(objs, o)
		}
	}
	return objs, nil
}
