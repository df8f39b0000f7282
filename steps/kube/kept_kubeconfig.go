package kube

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/plans"
)

// mcplan keeps one kubeconfig per cluster under its state directory
// (statedir.Kubeconfig), written by one of two steps:
//
//   - kubeconfig/fetch, from the k3s.yaml of a cluster mcplan installed:
//     foreign input, so it writes only the server, CA and client
//     certificate it parsed (ParseCertKubeconfig), and the copy is read
//     the same strict way;
//   - kubeconfig/import, from the user's own kubeconfig file the plan
//     names: the operator's input, so its user entry (client
//     certificate, token, tokenFile or exec plugin) is kept as it is and
//     the copy is read through client-go as kubectl reads it.
//
// ReadKeptKubeconfig is the one place that tells them apart: by the
// userKubeconfigExtension that only kubeconfig/import puts on the copy's
// context (MarkUserKubeconfig). A fetched copy never carries it, since
// fetch builds its copy from the parsed certificate fields alone
// (CertCredentials.Kubeconfig), whatever the host's k3s.yaml said.

// userKubeconfigExtension names the context extension that marks mcplan's
// copy of a user's own kubeconfig.
const userKubeconfigExtension = "mcplan.io/kubeconfig-source"

// userKubeconfigSource is its value.
const userKubeconfigSource = "user-kubeconfig"

// MarkUserKubeconfig marks a context of mcplan's copy of a user's
// kubeconfig (kubeconfig/import only): ReadKeptKubeconfig reads such a
// copy through client-go.
func MarkUserKubeconfig(kctx *clientcmdapi.Context) {
	if kctx.Extensions == nil {
		kctx.Extensions = map[string]runtime.Object{}
	}
	kctx.Extensions[userKubeconfigExtension] = &runtime.Unknown{Raw: []byte(`"` + userKubeconfigSource + `"`)}
}

// isUserKubeconfig says whether a context carries MarkUserKubeconfig's
// mark.
func isUserKubeconfig(kctx *clientcmdapi.Context) bool {
	u, ok := kctx.Extensions[userKubeconfigExtension].(*runtime.Unknown)
	return ok && string(u.Raw) == `"`+userKubeconfigSource+`"`
}

// IsUserKubeconfigCopy says whether data is a kubeconfig with a context
// marked as a copy of a user's kubeconfig (MarkUserKubeconfig): what the
// state backends never carry (statebackend's localOnly).
func IsUserKubeconfigCopy(data []byte) bool {
	cfg, err := clientcmd.Load(data)
	if err != nil {
		return false
	}
	for _, kctx := range cfg.Contexts {
		if isUserKubeconfig(kctx) {
			return true
		}
	}
	return false
}

// KeptKubeconfig is mcplan's copy of a cluster's kubeconfig, read the way
// its origin allows.
type KeptKubeconfig struct {
	// Server is the API's URL, CAData the CA its certificate chains to.
	Server string
	CAData []byte
	// Cert is the client certificate the copy logs in with; nil when
	// the copy of a user's kubeconfig logs in otherwise (token, exec).
	Cert *CertCredentials
	// FromUser says the copy is of the user's own kubeconfig
	// (kubeconfig/import), read through client-go.
	FromUser bool
	// REST is the client config the copy gives. Its warning handler and
	// retries are unset.
	REST *rest.Config
}

// ReadKeptKubeconfig reads mcplan's copy of a cluster's kubeconfig at
// path. A fetched copy must hold only a server, CA and client
// certificate (ParseCertKubeconfig); a user's copy must pass
// plans.CheckUserKubeconfigAuth and is turned into a client config by
// client-go, its exec plugin (run when a request needs a credential) told
// that no terminal is there.
func ReadKeptKubeconfig(path string) (*KeptKubeconfig, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	k, err := parseKeptKubeconfig(raw)
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
	}
	return k, nil
}

// parseKeptKubeconfig is ReadKeptKubeconfig on the file's content.
func parseKeptKubeconfig(raw []byte) (*KeptKubeconfig, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	if kctx := cfg.Contexts[cfg.CurrentContext]; kctx != nil && isUserKubeconfig(kctx) {
		return userKeptKubeconfig(cfg)
	}
	creds, err := ParseCertKubeconfig(raw)
	if err != nil {
		return nil, err
	}
	if err := CheckHTTPS(creds.Server); err != nil {
		return nil, err
	}
	return &KeptKubeconfig{Server: creds.Server, CAData: creds.CAData, Cert: creds, REST: creds.REST(creds.Server)}, nil
}

// userKeptKubeconfig reads the copy of a user's kubeconfig whose current
// context is marked.
func userKeptKubeconfig(cfg *clientcmdapi.Config) (*KeptKubeconfig, error) {
	kctx := cfg.Contexts[cfg.CurrentContext]
	cl, user := cfg.Clusters[kctx.Cluster], cfg.AuthInfos[kctx.AuthInfo]
	if cl == nil || user == nil {
		return nil, fmt.Errorf("context %q names a cluster or user the file does not have", cfg.CurrentContext)
	}
	if err := plans.CheckUserKubeconfigAuth(cl, user); err != nil {
		return nil, fmt.Errorf("context %q: %w", cfg.CurrentContext, err)
	}
	if len(cl.CertificateAuthorityData) == 0 {
		return nil, fmt.Errorf("cluster %q has no certificate-authority-data", kctx.Cluster)
	}
	rc, err := clientcmd.NewNonInteractiveClientConfig(*cfg, cfg.CurrentContext, &clientcmd.ConfigOverrides{}, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("context %q: %w", cfg.CurrentContext, err)
	}
	if rc.ExecProvider != nil {
		rc.ExecProvider.StdinUnavailable = true
		rc.ExecProvider.StdinUnavailableMessage = "mcplan runs exec plugins without a terminal"
	}
	k := &KeptKubeconfig{Server: cl.Server, CAData: cl.CertificateAuthorityData, FromUser: true, REST: rc}
	if len(user.ClientCertificateData) > 0 && len(user.ClientKeyData) > 0 {
		k.Cert = &CertCredentials{Server: cl.Server, CAData: cl.CertificateAuthorityData, CertData: user.ClientCertificateData, KeyData: user.ClientKeyData}
	}
	return k, nil
}
