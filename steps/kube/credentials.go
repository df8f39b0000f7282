package kube

import (
	"fmt"
	"net/url"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// A kubeconfig read from a host (k3s.yaml) or from a cluster (a remote
// secret) is foreign: whoever controls that host or can write a Secret in
// that cluster wrote it. Handed to client-go as it is, its exec or
// auth-provider entries would run a command on the operator's machine, its
// tokenFile or client-certificate paths would read the operator's files,
// and insecure-skip-tls-verify or proxy-url would turn TLS off or send the
// credentials elsewhere. So mcplan never does that: it takes the few
// fields it needs from the current context, refuses a kubeconfig that sets
// any other auth or transport field, and builds its own config from them.

// CertCredentials are what mcplan takes from a k3s.yaml: the CA of the API
// server and the admin's client certificate and key (all inline data).
type CertCredentials struct {
	Server   string
	CAData   []byte
	CertData []byte
	KeyData  []byte
}

// TokenCredentials are what mcplan takes from a remote secret's
// kubeconfig: the server, its CA and a bearer token.
type TokenCredentials struct {
	Server string
	CAData []byte
	Token  string
}

// ParseCertKubeconfig takes CertCredentials from a kubeconfig whose current
// context authenticates with inline client certificate data, refusing any
// other auth or transport field.
func ParseCertKubeconfig(raw []byte) (*CertCredentials, error) {
	cl, user, err := currentEntries(raw)
	if err != nil {
		return nil, err
	}
	if err := refuseFields(cl, user, false); err != nil {
		return nil, err
	}
	if len(user.ClientCertificateData) == 0 || len(user.ClientKeyData) == 0 {
		return nil, fmt.Errorf("user has no client-certificate-data and client-key-data")
	}
	return &CertCredentials{Server: cl.Server, CAData: cl.CertificateAuthorityData,
		CertData: user.ClientCertificateData, KeyData: user.ClientKeyData}, nil
}

// ParseTokenKubeconfig takes TokenCredentials from a kubeconfig whose
// current context authenticates with an inline token, refusing any other
// auth or transport field, a server that is not an https URL, and a
// cluster without certificate-authority-data.
func ParseTokenKubeconfig(raw []byte) (*TokenCredentials, error) {
	cl, user, err := currentEntries(raw)
	if err != nil {
		return nil, err
	}
	if err := refuseFields(cl, user, true); err != nil {
		return nil, err
	}
	if user.Token == "" {
		return nil, fmt.Errorf("user has no token")
	}
	if err := CheckHTTPS(cl.Server); err != nil {
		return nil, err
	}
	return &TokenCredentials{Server: cl.Server, CAData: cl.CertificateAuthorityData, Token: user.Token}, nil
}

// currentEntries decodes raw (decoding reads no file and runs nothing) and
// returns the cluster and user of its current context.
func currentEntries(raw []byte) (*clientcmdapi.Cluster, *clientcmdapi.AuthInfo, error) {
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("not a kubeconfig: %w", err)
	}
	kctx := cfg.Contexts[cfg.CurrentContext]
	if kctx == nil {
		return nil, nil, fmt.Errorf("current context %q is missing", cfg.CurrentContext)
	}
	cl := cfg.Clusters[kctx.Cluster]
	if cl == nil {
		return nil, nil, fmt.Errorf("context %q names cluster %q, which is missing", cfg.CurrentContext, kctx.Cluster)
	}
	user := cfg.AuthInfos[kctx.AuthInfo]
	if user == nil {
		return nil, nil, fmt.Errorf("context %q names user %q, which is missing", cfg.CurrentContext, kctx.AuthInfo)
	}
	if len(cl.CertificateAuthorityData) == 0 {
		return nil, nil, fmt.Errorf("cluster %q has no certificate-authority-data", kctx.Cluster)
	}
	return cl, user, nil
}

// refuseFields names every field of the cluster and user entries that
// mcplan does not take: with token, a token is the one credential
// allowed; otherwise client certificate and key data are.
func refuseFields(cl *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo, token bool) error {
	var set []string
	flag := func(on bool, field string) {
		if on {
			set = append(set, field)
		}
	}
	flag(cl.InsecureSkipTLSVerify, "cluster insecure-skip-tls-verify")
	flag(cl.CertificateAuthority != "", "cluster certificate-authority (a file path)")
	flag(cl.TLSServerName != "", "cluster tls-server-name")
	flag(cl.ProxyURL != "", "cluster proxy-url")
	flag(cl.DisableCompression, "cluster disable-compression")
	flag(user.Exec != nil, "user exec (a command to run)")
	flag(user.AuthProvider != nil, "user auth-provider")
	flag(user.TokenFile != "", "user tokenFile (a file path)")
	flag(user.ClientCertificate != "", "user client-certificate (a file path)")
	flag(user.ClientKey != "", "user client-key (a file path)")
	flag(user.Username != "" || user.Password != "", "user username/password")
	flag(user.Impersonate != "" || user.ImpersonateUID != "" || len(user.ImpersonateGroups) > 0 || len(user.ImpersonateUserExtra) > 0, "user act-as (impersonation)")
	takes := "client-certificate-data and client-key-data"
	if token {
		takes = "token"
		flag(len(user.ClientCertificateData) > 0 || len(user.ClientKeyData) > 0, "user client-certificate-data/client-key-data")
	} else {
		flag(user.Token != "", "user token")
	}
	if len(set) > 0 {
		return fmt.Errorf("sets %s: refused (mcplan takes only server, certificate-authority-data and %s from it)",
			strings.Join(set, ", "), takes)
	}
	return nil
}

// CheckHTTPS refuses a server that is not a plain https URL: a cert
// kubeconfig's server must be one before a client is built on it.
func CheckHTTPS(server string) error {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("server %q is not an https URL (https://host:port)", server)
	}
	return nil
}

// REST is a client config for the API at server (an https URL) with these
// credentials.
func (c *CertCredentials) REST(server string) *rest.Config {
	return &rest.Config{Host: server, TLSClientConfig: rest.TLSClientConfig{
		CAData: c.CAData, CertData: c.CertData, KeyData: c.KeyData}}
}

// Kubeconfig is a kubeconfig with one cluster, user and context under the
// given names, holding only these credentials, its server at server.
func (c *CertCredentials) Kubeconfig(server, clusterName, userName, contextName string) *clientcmdapi.Config {
	out := clientcmdapi.NewConfig()
	out.Clusters[clusterName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: c.CAData}
	out.AuthInfos[userName] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData}
	out.Contexts[contextName] = &clientcmdapi.Context{Cluster: clusterName, AuthInfo: userName}
	out.CurrentContext = contextName
	return out
}

// REST is a client config for the server with the token.
func (c *TokenCredentials) REST() *rest.Config {
	return &rest.Config{Host: c.Server, BearerToken: c.Token, TLSClientConfig: rest.TLSClientConfig{CAData: c.CAData}}
}
