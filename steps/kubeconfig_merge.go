package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/statedir"
)

// KubeconfigMerge writes every cluster's kubeconfig into the plan's
// kubeconfig file, keeping the entries of other clusters already there:
// KUBECONFIG=a:b kubectl config view --flatten, done safely (0600, atomic).
type KubeconfigMerge struct {
	target   string
	clusters []string
}

// NewKubeconfigMerge returns the kubeconfig/merge step of a plan.
func NewKubeconfigMerge(p *plans.Plan, _ plans.StepSpec, _ *Runtime) *KubeconfigMerge {
	m := &KubeconfigMerge{target: p.KubeconfigPath()}
	for _, c := range p.Clusters {
		m.clusters = append(m.clusters, c.Name)
	}
	return m
}

// MergeKubeconfigs merges kubeconfig files into the kubeconfig at target
// (which may not exist; "" for none) and returns the result: entries of the sources
// replace same-named ones, others stay, and the current context is kept
// or, when unset, becomes the first source's.
func MergeKubeconfigs(target string, sources []string) ([]byte, error) {
	merged, err := clientcmd.LoadFromFile(target)
	switch {
	case target == "" || errors.Is(err, fs.ErrNotExist):
		merged = clientcmdapi.NewConfig()
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", target, err)
	}
	for _, src := range sources {
		cfg, err := clientcmd.LoadFromFile(src)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", src, err)
		}
		for name, c := range cfg.Clusters {
			merged.Clusters[name] = c
		}
		for name, u := range cfg.AuthInfos {
			merged.AuthInfos[name] = u
		}
		for name, c := range cfg.Contexts {
			merged.Contexts[name] = c
		}
		if merged.CurrentContext == "" {
			merged.CurrentContext = cfg.CurrentContext
		}
	}
	return clientcmd.Write(*merged)
}

func (s *KubeconfigMerge) desired(env *engine.Env) ([]byte, error) {
	var sources []string
	for _, c := range s.clusters {
		sources = append(sources, statedir.Kubeconfig(env.Dir, c))
	}
	out, err := MergeKubeconfigs(s.target, sources)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig merge: %w", err)
	}
	return out, nil
}

// Check says whether the target already holds every cluster's entries.
func (s *KubeconfigMerge) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	want, err := s.desired(env)
	if err != nil {
		return engine.Drift{}, err
	}
	have, err := os.ReadFile(s.target)
	if err != nil || !bytes.Equal(have, want) {
		return engine.Drifted(s.target + " lacks the current entries"), nil
	}
	if fi, err := os.Stat(s.target); err == nil && fi.Mode().Perm() != 0o600 {
		return engine.Drifted(fmt.Sprintf("%s has mode %#o, want 0600", s.target, fi.Mode().Perm())), nil
	}
	return engine.InSync(), nil
}

// Apply writes the merged kubeconfig.
func (s *KubeconfigMerge) Apply(ctx context.Context, env *engine.Env) error {
	want, err := s.desired(env)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.target, want, 0o600); err != nil {
		return fmt.Errorf("kubeconfig merge: %w", err)
	}
	env.SetOutput("file", s.target)
	env.Logf("wrote %s with contexts of %d clusters", s.target, len(s.clusters))
	return nil
}
