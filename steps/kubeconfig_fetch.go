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
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// KubeconfigFetch reads a cluster's admin kubeconfig from its first server
// (/etc/rancher/k3s/k3s.yaml: server 127.0.0.1, names "default"), points
// it at the address the operator reaches the API by and renames its
// entries as the plan says: what the walkthrough does with sed and vim.
type KubeconfigFetch struct {
	rt      *Runtime
	cluster plans.Cluster
	names   plans.KubeconfigNames
}

// NewKubeconfigFetch returns the kubeconfig/fetch step of spec.Cluster.
func NewKubeconfigFetch(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *KubeconfigFetch {
	return &KubeconfigFetch{rt: rt, cluster: *p.Cluster(spec.Cluster), names: p.KubeconfigNames(spec.Cluster)}
}

// desired fetches k3s.yaml and rewrites it. The result holds secrets.
func (s *KubeconfigFetch) desired(ctx context.Context, env *engine.Env) ([]byte, *clientcmdapi.Config, error) {
	c, err := s.rt.Host(ctx, s.cluster.Servers[0], env.Logf)
	if err != nil {
		return nil, nil, err
	}
	raw, err := readK3sKubeconfig(ctx, c)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := RenameK3sKubeconfig(raw, apiURL(s.cluster.API.OperatorAddress, s.cluster.API.Port), s.names)
	if err != nil {
		return nil, nil, fmt.Errorf("%s on %s: %w", k3sKubeconfigPath, s.cluster.Servers[0], err)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, nil, err
	}
	return out, cfg, nil
}

// RenameK3sKubeconfig turns k3s.yaml into a kubeconfig with one cluster,
// user and context under the given names, whose server is server. It
// carries only the CA and the client certificate and key of k3s.yaml's
// current context; a k3s.yaml with any other auth or transport field
// (exec, tokenFile, insecure-skip-tls-verify, proxy-url, file paths...) is
// refused (see kube.ParseCertKubeconfig).
func RenameK3sKubeconfig(raw []byte, server string, names plans.KubeconfigNames) (*clientcmdapi.Config, error) {
	creds, err := kube.ParseCertKubeconfig(raw)
	if err != nil {
		return nil, err
	}
	return creds.Kubeconfig(server, names.Cluster, names.User, names.Context), nil
}

// Check compares the kept kubeconfig with a fresh fetch, read-only.
func (s *KubeconfigFetch) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	want, _, err := s.desired(ctx, env)
	if err != nil {
		return engine.Drift{}, err
	}
	return keptKubeconfigDrift(statedir.Kubeconfig(env.Dir, s.cluster.Name), want, "kubeconfig not fetched yet", "the cluster's credentials or address changed")
}

// keptKubeconfigDrift compares mcplan's copy of a cluster's kubeconfig
// at path with want: missing is said by notYet, another content by
// changed.
func keptKubeconfigDrift(path string, want []byte, notYet, changed string) (engine.Drift, error) {
	have, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return engine.Drifted(notYet), nil
	case err != nil:
		return engine.Drift{}, err
	case !bytes.Equal(have, want):
		return engine.Drifted(changed), nil
	}
	return engine.InSync(), nil
}

// Apply fetches, rewrites and keeps the kubeconfig (0600).
func (s *KubeconfigFetch) Apply(ctx context.Context, env *engine.Env) error {
	want, cfg, err := s.desired(ctx, env)
	if err != nil {
		return err
	}
	path := statedir.Kubeconfig(env.Dir, s.cluster.Name)
	if err := atomicfile.Write(path, want, 0o600); err != nil {
		return err
	}
	env.SetOutput("file", path)
	env.SetOutput("context", s.names.Context)
	env.SetOutput("server", cfg.Clusters[s.names.Cluster].Server)
	env.SetOutput("meshServer", apiURL(s.cluster.API.MeshAddress, s.cluster.API.Port))
	env.SetOutput("caSHA256", digest.SHA256Hex(cfg.Clusters[s.names.Cluster].CertificateAuthorityData))
	env.Logf("kubeconfig of %s: context %s, server %s", s.cluster.Name, s.names.Context, cfg.Clusters[s.names.Cluster].Server)
	return nil
}
