package kube

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/internal/golden"
)

// keptKubeconfig is a copy as kubeconfig/fetch or kubeconfig/import keeps
// it, with edit applied to its cluster and user; user marks it as the
// copy of a user's kubeconfig.
func keptKubeconfig(t *testing.T, user bool, edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)) []byte {
	t.Helper()
	cfg, err := clientcmd.Load(foreignKubeconfig(t, edit))
	if err != nil {
		t.Fatal(err)
	}
	if user {
		MarkUserKubeconfig(cfg.Contexts[cfg.CurrentContext])
	}
	raw, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestReadKeptKubeconfig: only a copy marked as the user's is read
// through client-go, with its token, tokenFile or exec plugin (which
// does not run until a request needs it, and is told there is no
// terminal); an unmarked copy, as kubeconfig/fetch writes it from a
// host's k3s.yaml, is read strictly and refused if it carries anything
// but a client certificate. Errors name fields, never a token.
func TestReadKeptKubeconfig(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "exec-ran")
	exec := func(mode clientcmdapi.ExecInteractiveMode) func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo) {
		return func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.Exec = &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: "/bin/sh",
				Args: []string{"-c", "touch " + marker}, InteractiveMode: mode}
		}
	}
	secretToken := func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.Token = "secret-token-value" }
	insecure := func(c *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
		secretToken(c, u)
		c.InsecureSkipTLSVerify = true
	}
	tokenFile := func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) { u.TokenFile = "/nonexistent/token" }
	var out strings.Builder
	for _, tc := range []struct {
		name string
		user bool
		edit func(*clientcmdapi.Cluster, *clientcmdapi.AuthInfo)
	}{
		{"fetched cert", false, certUser},
		{"fetched exec", false, exec(clientcmdapi.NeverExecInteractiveMode)},
		{"fetched token", false, secretToken},
		{"fetched tokenFile", false, tokenFile},
		{"user cert", true, certUser},
		{"user token", true, secretToken},
		{"user exec", true, exec(clientcmdapi.IfAvailableExecInteractiveMode)},
		{"user exec Always", true, exec(clientcmdapi.AlwaysExecInteractiveMode)},
		{"user insecure", true, insecure},
		{"user auth-provider", true, func(_ *clientcmdapi.Cluster, u *clientcmdapi.AuthInfo) {
			u.AuthProvider = &clientcmdapi.AuthProviderConfig{Name: "gcp"}
		}},
	} {
		k, err := parseKeptKubeconfig(keptKubeconfig(t, tc.user, tc.edit))
		var got string
		if err != nil {
			got = "refused: " + err.Error()
		} else {
			r := k.REST
			got = fmt.Sprintf("server %s, from user %v, cert %v, token %v, exec %v", k.Server, k.FromUser, k.Cert != nil, r.BearerToken != "", r.ExecProvider != nil)
			if r.ExecProvider != nil && !r.ExecProvider.StdinUnavailable {
				t.Errorf("%s: the exec plugin may read stdin", tc.name)
			}
			if tc.name == "user token" && r.BearerToken != "secret-token-value" {
				t.Errorf("%s: bearer token %q", tc.name, r.BearerToken)
			}
		}
		if strings.Contains(got, "secret-token-value") {
			t.Errorf("%s: shows the token: %s", tc.name, got)
		}
		fmt.Fprintf(&out, "%s: %s\n", tc.name, got)
	}
	if m, _ := filepath.Glob(marker); len(m) > 0 {
		t.Error("an exec plugin ran")
	}
	golden.Check(t, filepath.Join("testdata", "kept-kubeconfig.golden"), out.String())
}
