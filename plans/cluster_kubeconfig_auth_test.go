package plans

import (
	"strings"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// TestCheckUserKubeconfigAuth: the methods kubectl users log in with
// pass; what turns TLS off, sends the credentials elsewhere, needs a
// terminal or is gone from client-go is refused, named by its field and
// never by its value.
func TestCheckUserKubeconfigAuth(t *testing.T) {
	ca := []byte("ca")
	cluster := func(mod func(*clientcmdapi.Cluster)) *clientcmdapi.Cluster {
		c := &clientcmdapi.Cluster{Server: "https://192.0.2.1:6443", CertificateAuthorityData: ca}
		if mod != nil {
			mod(c)
		}
		return c
	}
	exec := func(mode clientcmdapi.ExecInteractiveMode) *clientcmdapi.AuthInfo {
		return &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
			APIVersion: "client.authentication.k8s.io/v1", Command: "aws", InteractiveMode: mode}}
	}
	for _, tc := range []struct {
		name    string
		cluster *clientcmdapi.Cluster
		user    *clientcmdapi.AuthInfo
		refused string // "" accepted
	}{
		{"client certificate data", cluster(nil), &clientcmdapi.AuthInfo{ClientCertificateData: ca, ClientKeyData: ca}, ""},
		{"client certificate files", cluster(nil), &clientcmdapi.AuthInfo{ClientCertificate: "c.pem", ClientKey: "k.pem"}, ""},
		{"CA file", cluster(func(c *clientcmdapi.Cluster) { c.CertificateAuthorityData, c.CertificateAuthority = nil, "ca.pem" }), &clientcmdapi.AuthInfo{Token: "t"}, ""},
		{"token", cluster(nil), &clientcmdapi.AuthInfo{Token: "secret-token-value"}, ""},
		{"tokenFile", cluster(nil), &clientcmdapi.AuthInfo{TokenFile: "/var/run/token"}, ""},
		{"exec IfAvailable", cluster(nil), exec(clientcmdapi.IfAvailableExecInteractiveMode), ""},
		{"exec Never", cluster(nil), exec(clientcmdapi.NeverExecInteractiveMode), ""},
		{"exec v1beta1", cluster(nil), &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1beta1", Command: "gke-gcloud-auth-plugin"}}, ""},
		{"exec Always", cluster(nil), exec(clientcmdapi.AlwaysExecInteractiveMode), "interactiveMode Always"},
		{"exec v1alpha1", cluster(nil), &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1alpha1", Command: "x"}}, "exec apiVersion"},
		{"exec without command", cluster(nil), &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1"}}, "exec has no command"},
		{"insecure", cluster(func(c *clientcmdapi.Cluster) { c.InsecureSkipTLSVerify = true }), &clientcmdapi.AuthInfo{Token: "secret-token-value"}, "insecure-skip-tls-verify"},
		{"http server", cluster(func(c *clientcmdapi.Cluster) { c.Server = "http://192.0.2.1:8080" }), &clientcmdapi.AuthInfo{Token: "secret-token-value"}, "not an https URL"},
		{"proxy", cluster(func(c *clientcmdapi.Cluster) { c.ProxyURL = "socks5://127.0.0.1:1080" }), &clientcmdapi.AuthInfo{Token: "t"}, "proxy-url"},
		{"no CA", cluster(func(c *clientcmdapi.Cluster) { c.CertificateAuthorityData = nil }), &clientcmdapi.AuthInfo{Token: "t"}, "no certificate-authority"},
		{"auth-provider", cluster(nil), &clientcmdapi.AuthInfo{AuthProvider: &clientcmdapi.AuthProviderConfig{Name: "gcp"}}, "auth-provider"},
		{"basic auth", cluster(nil), &clientcmdapi.AuthInfo{Username: "admin", Password: "secret-password"}, "username/password"},
		{"impersonation", cluster(nil), &clientcmdapi.AuthInfo{Token: "t", Impersonate: "root"}, "act-as"},
		{"no credential", cluster(nil), &clientcmdapi.AuthInfo{}, "sets no credential"},
		{"certificate without key", cluster(nil), &clientcmdapi.AuthInfo{ClientCertificateData: ca}, "sets no credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUserKubeconfigAuth(tc.cluster, tc.user)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.refused) {
				t.Fatalf("error %v, want one about %q", err, tc.refused)
			}
			for _, secret := range []string{"secret-token-value", "secret-password"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error shows a secret: %v", err)
				}
			}
		})
	}
}
