package plans

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// The kubeconfig file a plan names for a cluster mcplan did not install
// is the operator's own input on the operator's machine, as for kubectl:
// mcplan reads its context through client-go as kubectl does, so a client
// certificate (inline or a file), a token, a tokenFile or an exec plugin
// (aws eks get-token, gke-gcloud-auth-plugin, kubelogin) authenticate.
// Kubeconfigs read from a host or a cluster (a k3s.yaml, a remote secret)
// are never read this way (see steps/kube's credentials.go).
//
// Still refused, in the user's file too:
//   - insecure-skip-tls-verify: it turns off the check of the API's
//     certificate, so the credentials go to whoever answers;
//   - a server that is not https: the credentials would cross in clear;
//   - proxy-url: every call and its credentials would go through a hop
//     the plan does not show and mcplan's messages would not name;
//   - auth-provider: removed from client-go (use the provider's exec
//     plugin, as kubectl does);
//   - an exec plugin with interactiveMode Always: it needs a terminal,
//     and steps run in parallel with no one to answer its prompt, so it
//     would hang;
//   - username/password (removed from Kubernetes) and impersonation
//     (act-as): not among the methods mcplan takes;
//   - a cluster with no certificate-authority(-data): mcplan hands the
//     API's CA to the other clusters' istiods in remote secrets.

// execAPIVersions are the exec credential API versions client-go runs.
var execAPIVersions = []string{"client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"}

// CheckUserKubeconfigAuth says what of the cluster and user entries of a
// user's kubeconfig context mcplan refuses (nil when none). The entries
// are only looked at: no file is read and nothing runs. The error names
// fields, never their values (a token stays out of messages).
func CheckUserKubeconfigAuth(cl *clientcmdapi.Cluster, user *clientcmdapi.AuthInfo) error {
	var refused []string
	refuse := func(on bool, why string) {
		if on {
			refused = append(refused, why)
		}
	}
	refuse(cl.InsecureSkipTLSVerify, "cluster insecure-skip-tls-verify: true turns off the check of the API's certificate")
	if err := checkHTTPSServer(cl.Server); err != nil {
		refused = append(refused, err.Error())
	}
	refuse(cl.ProxyURL != "", "cluster proxy-url: mcplan reaches the API directly, not through a proxy")
	refuse(cl.CertificateAuthority == "" && len(cl.CertificateAuthorityData) == 0,
		"cluster has no certificate-authority or certificate-authority-data: mcplan needs the API's CA (it gives it to the other clusters' istiods)")
	refuse(user.AuthProvider != nil, "user auth-provider: removed from client-go; use the provider's exec plugin instead, as kubectl does")
	refuse(user.Username != "" || user.Password != "", "user username/password: not accepted (use a client certificate, token, tokenFile or exec plugin)")
	refuse(user.Impersonate != "" || user.ImpersonateUID != "" || len(user.ImpersonateGroups) > 0 || len(user.ImpersonateUserExtra) > 0,
		"user act-as (impersonation): not accepted")
	if x := user.Exec; x != nil {
		refuse(x.Command == "", "user exec has no command")
		refuse(x.APIVersion != "" && !slices.Contains(execAPIVersions, x.APIVersion),
			fmt.Sprintf("user exec apiVersion %s: mcplan runs %s", quote(x.APIVersion), strings.Join(execAPIVersions, " or ")))
		refuse(x.InteractiveMode == clientcmdapi.AlwaysExecInteractiveMode,
			"user exec interactiveMode Always: the plugin needs a terminal and would hang mcplan's steps; make it IfAvailable or Never (log in first, e.g. with the provider's CLI)")
	}
	refuse(user.AuthProvider == nil && !hasCredential(user), "user sets no credential: mcplan takes a client certificate, token, tokenFile or exec plugin")
	if len(refused) > 0 {
		return fmt.Errorf("refused: %s", strings.Join(refused, "; "))
	}
	return nil
}

// hasCredential says whether a user entry sets one of the accepted
// methods.
func hasCredential(user *clientcmdapi.AuthInfo) bool {
	cert := (user.ClientCertificate != "" || len(user.ClientCertificateData) > 0) && (user.ClientKey != "" || len(user.ClientKeyData) > 0)
	return cert || user.Token != "" || user.TokenFile != "" || user.Exec != nil
}

// checkHTTPSServer refuses a server that is not an https URL.
func checkHTTPSServer(server string) error {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
		return fmt.Errorf("cluster server %s is not an https URL (https://host[:port])", quote(server))
	}
	return nil
}
