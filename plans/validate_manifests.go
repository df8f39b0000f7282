package plans

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// kustomizationFiles are the file names kustomize reads a
// kustomization from.
var kustomizationFiles = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// manifests checks the manifest sources at path (clusters[i].manifests or
// meshes[i].manifests): each names a path that can be read, a kustomize
// source a directory holding a kustomization, and recursive goes with a
// directory read as files.
func (v *validator) manifests(sources []ManifestSource, path string) {
	for i, m := range sources {
		mp := indexPath(path, i)
		if m.Path == "" {
			v.add(fieldPath(mp, "path"), "required field missing: a manifest source needs a path", "a file or directory, relative to the plan")
			continue
		}
		resolved := v.p.Resolve(m.Path)
		info, err := os.Stat(resolved)
		if err != nil {
			v.add(fieldPath(mp, "path"), fmt.Sprintf("cannot read %s: %v", quote(m.Path), unwrapPathError(err)), "")
			continue
		}
		switch {
		case m.Kustomize && !info.IsDir():
			v.add(fieldPath(mp, "kustomize"), fmt.Sprintf("%s is not a directory: kustomize builds a directory holding a kustomization.yaml", quote(m.Path)), "")
		case m.Kustomize && !hasKustomization(resolved):
			v.add(fieldPath(mp, "kustomize"), fmt.Sprintf("%s holds no kustomization.yaml", quote(m.Path)), "")
		case m.Kustomize && m.Recursive:
			v.add(fieldPath(mp, "recursive"), "recursive reads a directory of files; a kustomization names its own resources", "set one of kustomize and recursive")
		case !m.Kustomize && info.IsDir() && hasKustomization(resolved):
			v.add(fieldPath(mp, "path"), fmt.Sprintf("%s is a kustomization directory", quote(m.Path)), "set kustomize: true to build it as kubectl apply -k does")
		}
	}
}

// hasKustomization reports whether dir holds a kustomization file.
func hasKustomization(dir string) bool {
	for _, name := range kustomizationFiles {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return true
		}
	}
	return false
}

// unwrapPathError drops the path an *os.PathError repeats.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
