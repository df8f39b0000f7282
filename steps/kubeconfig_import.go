package steps

import (
	"context"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// KubeconfigImport keeps mcplan's copy of the kubeconfig of a cluster it
// did not install (clusters[].kubeconfig): the plan's context of the
// user's file, its entries renamed as the plan says, kept where
// kubeconfig/fetch keeps a fetched one, so every later step reads the
// cluster the same way. The user's file is only read.
//
// The user's file is the operator's own input on the operator's machine,
// as for kubectl: its context logs in with a client certificate (inline
// or files, read relative to the file), a token, a tokenFile or an exec
// plugin (aws eks get-token...), and mcplan's copy keeps that user entry
// as it is: a tokenFile stays a path (re-read as it rotates), an exec
// plugin is run by client-go when a request needs a credential, as
// kubectl runs it. What plans.CheckUserKubeconfigAuth refuses
// (insecure-skip-tls-verify, http, proxy-url, auth-provider, an exec
// plugin that needs a terminal) fails the step as it fails validate. The
// copy is marked as the user's (kube.MarkUserKubeconfig): only such a
// copy is read through client-go; one fetched from a host never is.
type KubeconfigImport struct {
	cluster plans.Cluster
	file    string
	names   plans.KubeconfigNames
}

// NewKubeconfigImport returns the kubeconfig/import step of spec.Cluster.
func NewKubeconfigImport(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *KubeconfigImport {
	c := *p.Cluster(spec.Cluster)
	return &KubeconfigImport{cluster: c, file: p.ClusterKubeconfigFile(c), names: p.KubeconfigNames(c.Name)}
}

// desired reads the user's file and makes mcplan's copy of its context.
// The result holds secrets.
func (s *KubeconfigImport) desired() ([]byte, *clientcmdapi.Config, error) {
	cfg, err := ImportKubeconfig(s.file, *s.cluster.Kubeconfig, s.names)
	if err != nil {
		return nil, nil, fmt.Errorf("clusters[%s].kubeconfig: %w", s.cluster.Name, err)
	}
	out, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, nil, err
	}
	return out, cfg, nil
}

// ImportKubeconfig turns the context ck names of the kubeconfig file into
// a kubeconfig with one cluster, user and context under names: the
// cluster's server, CA (inline) and TLS settings, the user entry as it
// is with its certificate files inlined, the context marked as the
// user's (see KubeconfigImport). The file is only read; nothing runs.
// The result may hold a token or key: never log it.
func ImportKubeconfig(file string, ck plans.ClusterKubeconfig, names plans.KubeconfigNames) (*clientcmdapi.Config, error) {
	cfg, context, _, err := plans.LoadClusterKubeconfig(file, ck)
	if err != nil {
		return nil, err
	}
	one, err := contextOnly(cfg, context, file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	kctx := one.Contexts[context]
	cl, user := one.Clusters[kctx.Cluster].DeepCopy(), one.AuthInfos[kctx.AuthInfo].DeepCopy()
	if len(cl.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("%s, context %s: cluster %s has no certificate-authority-data", file, context, kctx.Cluster)
	}
	cl.LocationOfOrigin, user.LocationOfOrigin = "", ""
	out := clientcmdapi.NewConfig()
	out.Clusters[names.Cluster] = cl
	out.AuthInfos[names.User] = user
	copied := &clientcmdapi.Context{Cluster: names.Cluster, AuthInfo: names.User}
	kube.MarkUserKubeconfig(copied)
	out.Contexts[names.Context] = copied
	out.CurrentContext = names.Context
	return out, nil
}

// contextOnly is the one context of cfg (read from file) with its cluster
// and user as its current context, the certificate files they name read
// into inline data.
func contextOnly(cfg *clientcmdapi.Config, context, file string) (*clientcmdapi.Config, error) {
	kctx := cfg.Contexts[context]
	cl, user := cfg.Clusters[kctx.Cluster].DeepCopy(), cfg.AuthInfos[kctx.AuthInfo].DeepCopy()
	cl.LocationOfOrigin, user.LocationOfOrigin = file, file
	one := clientcmdapi.NewConfig()
	one.Clusters[kctx.Cluster] = cl
	one.AuthInfos[kctx.AuthInfo] = user
	one.Contexts[context] = &clientcmdapi.Context{Cluster: kctx.Cluster, AuthInfo: kctx.AuthInfo}
	one.CurrentContext = context
	if err := clientcmd.ResolveLocalPaths(one); err != nil {
		return nil, err
	}
	if err := clientcmdapi.FlattenConfig(one); err != nil {
		return nil, err
	}
	return one, nil
}

// Check compares mcplan's copy with what the user's file gives now.
func (s *KubeconfigImport) Check(_ context.Context, env *engine.Env) (engine.Drift, error) {
	want, _, err := s.desired()
	if err != nil {
		return engine.Drift{}, err
	}
	return keptKubeconfigDrift(statedir.Kubeconfig(env.Dir, s.cluster.Name), want, "kubeconfig not imported yet",
		"the credentials or server of "+s.file+" changed")
}

// Apply reads the user's file and keeps mcplan's copy (0600).
func (s *KubeconfigImport) Apply(_ context.Context, env *engine.Env) error {
	want, cfg, err := s.desired()
	if err != nil {
		return err
	}
	path := statedir.Kubeconfig(env.Dir, s.cluster.Name)
	if err := atomicfile.Write(path, want, 0o600); err != nil {
		return err
	}
	server := cfg.Clusters[s.names.Cluster].Server
	env.SetOutput("file", path)
	env.SetOutput("context", s.names.Context)
	env.SetOutput("server", server)
	env.SetOutput("meshServer", apiURL(s.cluster.API.MeshAddress, s.cluster.API.Port))
	env.SetOutput("caSHA256", digest.SHA256Hex(cfg.Clusters[s.names.Cluster].CertificateAuthorityData))
	env.Logf("kubeconfig of %s imported from %s: context %s, server %s", s.cluster.Name, s.file, s.names.Context, server)
	return nil
}
