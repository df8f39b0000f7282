package kube

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// foreignKubeconfig is a kubeconfig as a host or a cluster would hand it
// over, with edit applied to its only cluster and user.
func foreignKubeconfig(t *testing.T, edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cl := &clientcmdapi.Cluster{Server: "https://10.0.0.1:6443", CertificateAuthorityData: []byte("CA")}
	user := &clientcmdapi.AuthInfo{}
	edit(cl, user)
	cfg.Clusters["default"] = cl
	cfg.AuthInfos["default"] = user
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "default", AuthInfo: "default"}
	cfg.CurrentContext = "default"
	raw, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func certUser(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
	u.ClientCertificateData, u.ClientKeyData = []byte("CERT"), []byte("KEY")
}

func tokenUser(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Token = "TOKEN" }

func TestForeignKubeconfigsRefused(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "exec-ran")
	exec := &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh",
		Args: []string{"-c", "touch " + marker}, InteractiveMode: clientcmdapi.NeverExecInteractiveMode}
	both := func(more func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) [2]func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {
		return [2]func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo){
			func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { certUser(c, u); more(c, u) },
			func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { tokenUser(c, u); more(c, u) },
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)
		want string
	}{
		{"exec", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Exec = exec }, "user exec (a command to run)"},
		{"auth-provider", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "oidc"}
		}, "user auth-provider"},
		{"tokenFile", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.TokenFile = "/root/.vault-token" }, "user tokenFile (a file path)"},
		{"client-certificate path", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.ClientCertificate = "/etc/shadow" }, "user client-certificate (a file path)"},
		{"client-key path", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.ClientKey = "/etc/shadow" }, "user client-key (a file path)"},
		{"basic auth", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Username, u.Password = "a", "b" }, "user username/password"},
		{"impersonation", func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Impersonate = "system:admin" }, "user act-as"},
		{"insecure-skip-tls-verify", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) { c.InsecureSkipTLSVerify = true }, "cluster insecure-skip-tls-verify"},
		{"certificate-authority path", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) { c.CertificateAuthority = "/etc/ssl/ca.pem" }, "cluster certificate-authority (a file path)"},
		{"proxy-url", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) { c.ProxyURL = "http://10.9.9.9:3128" }, "cluster proxy-url"},
		{"tls-server-name", func(c *clientcmdapi.Cluster, _ *clientcmdapi.AuthInfo) { c.TLSServerName = "other" }, "cluster tls-server-name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			edits := both(tc.edit)
			if _, err := ParseCertKubeconfig(foreignKubeconfig(t, edits[0])); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("cert kubeconfig: err %v, want it to name %q", err, tc.want)
			}
			if _, err := ParseTokenKubeconfig(foreignKubeconfig(t, edits[1])); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("token kubeconfig: err %v, want it to name %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("an exec plugin ran")
	}
}

func TestForeignKubeconfigsShape(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token bool
		edit  func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)
		want  string // "" for accepted
	}{
		{"cert", false, certUser, ""},
		{"token", true, tokenUser, ""},
		{"token where a cert is wanted", false, tokenUser, "user token"},
		{"cert where a token is wanted", true, certUser, "user client-certificate-data/client-key-data"},
		{"no CA", true, func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			tokenUser(c, u)
			c.CertificateAuthorityData = nil
		}, "no certificate-authority-data"},
		{"plain http", true, func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			tokenUser(c, u)
			c.Server = "http://10.0.0.1:6443"
		}, "not an https URL"},
		{"no credentials", false, func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {}, "no client-certificate-data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := foreignKubeconfig(t, tc.edit)
			var err error
			if tc.token {
				_, err = ParseTokenKubeconfig(raw)
			} else {
				_, err = ParseCertKubeconfig(raw)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("err %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// TestCertKubeconfigCarriesOnlyItsCredentials: what mcplan writes from a
// k3s.yaml has the server, CA, certificate and key, and nothing else of it.
func TestCertKubeconfigCarriesOnlyItsCredentials(t *testing.T) {
	raw := foreignKubeconfig(t, certUser)
	creds, err := ParseCertKubeconfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := clientcmd.Write(*creds.Kubeconfig("https://192.0.2.1:6443", "c1", "user-c1", "context-c1"))
	if err != nil {
		t.Fatal(err)
	}
	want := `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0E=
    server: https://192.0.2.1:6443
  name: c1
contexts:
- context:
    cluster: c1
    user: user-c1
  name: context-c1
current-context: context-c1
kind: Config
users:
- name: user-c1
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`
	if string(out) != want {
		t.Errorf("kubeconfig:\n%s\nwant:\n%s", out, want)
	}
	rc := creds.REST("https://192.0.2.1:6443")
	if rc.ExecProvider != nil || rc.AuthProvider != nil || rc.BearerTokenFile != "" || rc.Insecure || rc.Proxy != nil {
		t.Errorf("REST config carries more than the credentials: %+v", rc)
	}
}
