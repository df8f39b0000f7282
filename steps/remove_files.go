package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/steps/statedir"
)

// kubeconfigRemoval removes a cluster's admin kubeconfig from the state
// directory and the cluster's context, cluster and user entries from the
// merged kubeconfig (the others stay). It runs after every removal that
// reaches the cluster: they all depend on kubeconfig/fetch (or, for a
// cluster mcplan did not install, kubeconfig/import).
type kubeconfigRemoval struct {
	cluster string
	merged  *mergedKubeconfig
	// imported: the kubeconfig is mcplan's copy of the plan's file of a
	// cluster it did not install; that file is left alone.
	imported bool
}

// mergedKubeconfig is the plan's merged kubeconfig, edited by one removal
// at a time.
type mergedKubeconfig struct {
	path string
	mu   sync.Mutex
}

func (r kubeconfigRemoval) Describe(env *engine.Env) string {
	context, _ := env.Previous("context")
	if r.imported {
		return fmt.Sprintf("deletes mcplan's copy of its kubeconfig (the plan's kubeconfig file stays) and context %s in %s", context, r.merged.path)
	}
	return fmt.Sprintf("deletes its admin kubeconfig and context %s in %s", context, r.merged.path)
}

func (r kubeconfigRemoval) Remove(_ context.Context, env *engine.Env) error {
	if context, ok := env.Previous("context"); ok && context != "" {
		r.merged.mu.Lock()
		err := removeContext(r.merged.path, context)
		r.merged.mu.Unlock()
		if err != nil {
			return err
		}
	}
	path := statedir.Kubeconfig(env.Dir, r.cluster)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	env.Logf("removed %s and the %s entries of %s", path, r.cluster, r.merged.path)
	return nil
}

// removeContext deletes a context and the cluster and user it names from
// a kubeconfig file; a missing file or context is nothing to do.
func removeContext(path, context string) error {
	cfg, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	c, ok := cfg.Contexts[context]
	if !ok {
		return nil
	}
	delete(cfg.Clusters, c.Cluster)
	delete(cfg.AuthInfos, c.AuthInfo)
	delete(cfg.Contexts, context)
	if cfg.CurrentContext == context {
		cfg.CurrentContext = ""
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return err
	}
	return atomicfile.Write(path, out, statedir.KeyMode)
}

// caIntermediateRemoval deletes a cluster's intermediate CA directory.
type caIntermediateRemoval struct {
	cluster string
}

func (r caIntermediateRemoval) dir(env *engine.Env) string {
	d, _ := env.Previous(CAOutputDir)
	return d
}

func (r caIntermediateRemoval) Describe(env *engine.Env) string {
	return "deletes its intermediate CA " + r.dir(env)
}

func (r caIntermediateRemoval) Remove(_ context.Context, env *engine.Env) error {
	dir := r.dir(env)
	// Only a directory of the state directory's CA tree: the path comes
	// from the state file.
	if dir == "" || filepath.Dir(filepath.Dir(dir)) != filepath.Join(env.Dir, "ca") {
		env.Logf("no intermediate CA directory recorded under %s; nothing removed", filepath.Join(env.Dir, "ca"))
		return nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	env.Logf("removed %s", dir)
	return nil
}

// caRootRemoval moves a mesh's root CA directory aside, to
// .mcplan/removed/<time>/ca/<mesh>: a root is never deleted by accident.
// With purge it is deleted.
type caRootRemoval struct {
	mesh  string
	purge bool
}

func (r caRootRemoval) Describe(env *engine.Env) string {
	if r.purge {
		return "deletes the mesh's root CA (--purge-ca)"
	}
	return "moves the mesh's root CA to " + filepath.Join(env.Dir, "removed", "<time>") + " (never deleted without --purge-ca)"
}

func (r caRootRemoval) Remove(_ context.Context, env *engine.Env) error {
	dir := statedir.CARoot(env.Dir, r.mesh)
	if _, err := os.Stat(filepath.Join(dir, statedir.RootCertFile)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if r.purge {
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		env.Logf("deleted the root CA of mesh %s (%s)", r.mesh, dir)
		return nil
	}
	to := filepath.Join(env.Dir, "removed", time.Now().UTC().Format("20060102T150405Z"), "ca", r.mesh)
	if err := os.MkdirAll(filepath.Dir(to), statedir.DirMode); err != nil {
		return err
	}
	if err := os.Rename(dir, to); err != nil {
		return err
	}
	env.Logf("moved the root CA of mesh %s to %s (delete it yourself when no cluster trusts it)", r.mesh, to)
	return nil
}
