package steps

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// byHandKubeconfig is a user's kubeconfig with two contexts: the plan
// names "mesh", whose server is not the current context's.
const byHandKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://192.0.2.20:6443
- name: prod
  cluster:
    certificate-authority-data: UFJPRC1DQQ==
    server: https://192.0.2.99:6443
users:
- name: lab-admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
- name: prod-admin
  user:
    token: prod-token
contexts:
- name: mesh
  context: {cluster: lab, user: lab-admin}
- name: prod
  context: {cluster: prod, user: prod-admin}
current-context: prod
`

// importPlan writes into dir a plan whose cluster2 is given by the
// kubeconfig file user.kubeconfig (holding kubeconfig) and context, and
// returns its import step and the user's file.
func importPlan(t *testing.T, dir, kubeconfig, context string) (*KubeconfigImport, string) {
	t.Helper()
	user := filepath.Join(dir, "user.kubeconfig")
	if err := os.WriteFile(user, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	plan := `apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: byhand}
clusters:
  - name: cluster2
    kubeconfig: {path: user.kubeconfig, context: ` + context + `}
    api: {meshAddress: 192.0.2.20}
`
	path := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(path, []byte(plan), 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := plans.LoadAndValidate(path)
	if err != nil {
		t.Fatal(err)
	}
	plans.ApplyDefaults(p)
	spec := plans.StepSpec{ID: plans.KubeconfigImportID("cluster2"), Kind: plans.KindKubeconfigImport, Cluster: "cluster2"}
	return NewKubeconfigImport(p, spec, nil), user
}

// TestKubeconfigImportKeepsACopy: apply keeps mcplan's copy of the plan's
// context (0600, renamed, only its entries) and leaves the user's file
// as it was, byte for byte and mtime; check is in sync after it and
// drifts when the user's file changes.
func TestKubeconfigImportKeepsACopy(t *testing.T) {
	s, user := importPlan(t, t.TempDir(), byHandKubeconfig, "mesh")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(user, old, old); err != nil {
		t.Fatal(err)
	}
	env := engine.NewEnv(plans.KubeconfigImportID("cluster2"), t.TempDir(), nil, nil, nil)
	ctx := context.Background()
	if d, err := s.Check(ctx, env); err != nil || d.InSync || d.Reason != "kubeconfig not imported yet" {
		t.Fatalf("check before apply: %+v, %v", d, err)
	}
	if err := s.Apply(ctx, env); err != nil {
		t.Fatal(err)
	}
	_, cfg := readImportedCopy(t, env.Dir)
	if cfg.CurrentContext != "context-cluster2" || len(cfg.Contexts) != 1 || len(cfg.Clusters) != 1 || len(cfg.AuthInfos) != 1 {
		t.Errorf("copy has current %q, %d contexts, %d clusters, %d users", cfg.CurrentContext, len(cfg.Contexts), len(cfg.Clusters), len(cfg.AuthInfos))
	}
	if c := cfg.Clusters["cluster2"]; c == nil || c.Server != "https://192.0.2.20:6443" || string(c.CertificateAuthorityData) != "CA-DATA" {
		t.Errorf("cluster entry %+v, want the mesh context's server and CA", c)
	}
	if u := cfg.AuthInfos["user-cluster2"]; u == nil || string(u.ClientKeyData) != "KEY" || u.Token != "" {
		t.Errorf("user entry %+v", u)
	}
	if got := env.Outputs()["meshServer"]; got != "https://192.0.2.20:6443" {
		t.Errorf("meshServer %q", got)
	}
	data, err := os.ReadFile(user)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(user); !bytes.Equal(data, []byte(byHandKubeconfig)) || !fi.ModTime().Equal(old) || fi.Mode().Perm() != 0o600 {
		t.Errorf("the user's kubeconfig changed: mtime %s (was %s), mode %s, content equal %v", fi.ModTime(), old, fi.Mode(), bytes.Equal(data, []byte(byHandKubeconfig)))
	}
	if d, err := s.Check(ctx, env); err != nil || !d.InSync {
		t.Errorf("check after apply: %+v, %v", d, err)
	}
	moved := strings.Replace(byHandKubeconfig, "https://192.0.2.20:6443", "https://192.0.2.21:6443", 1)
	if err := os.WriteFile(user, []byte(moved), 0o600); err != nil {
		t.Fatal(err)
	}
	if d, err := s.Check(ctx, env); err != nil || d.InSync || !strings.Contains(d.Reason, "changed") {
		t.Errorf("check after the user's server moved: %+v, %v", d, err)
	}
}

// TestKubeconfigImportReadsCertificateFiles: certificate files the
// user's context names, relative to the file, go into the copy inline.
func TestKubeconfigImportReadsCertificateFiles(t *testing.T) {
	withFiles := strings.NewReplacer(
		"certificate-authority-data: Q0EtREFUQQ==\n    server: https://192.0.2.20", "certificate-authority: pki/ca.crt\n    server: https://192.0.2.20",
		"client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ", "client-certificate: pki/admin.crt\n    client-key: /KEYDIR/admin.key",
	)
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{"ca.crt": "CA-FILE", "admin.crt": "CERT-FILE", "admin.key": "KEY-FILE"} {
		if err := os.WriteFile(filepath.Join(dir, "pki", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kc := strings.ReplaceAll(withFiles.Replace(byHandKubeconfig), "/KEYDIR", filepath.Join(dir, "pki"))
	s, _ := importPlan(t, dir, kc, "mesh")
	_, cfg, err := s.desired()
	if err != nil {
		t.Fatal(err)
	}
	c, u := cfg.Clusters["cluster2"], cfg.AuthInfos["user-cluster2"]
	if string(c.CertificateAuthorityData) != "CA-FILE" || c.CertificateAuthority != "" ||
		string(u.ClientCertificateData) != "CERT-FILE" || string(u.ClientKeyData) != "KEY-FILE" || u.ClientCertificate != "" || u.ClientKey != "" {
		t.Errorf("copy: cluster %+v, user %+v", c, u)
	}
}

// TestKubeconfigImportRefuses: a context that turns TLS off, sends the
// credentials through a proxy or in clear, uses the auth-provider gone
// from client-go or an exec plugin that needs a terminal is refused when
// the step runs (the user's file may change after validate), with what
// it sets; the exec plugin does not run and no copy is kept.
func TestKubeconfigImportRefuses(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "exec-ran")
	lab := "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n"
	tests := []struct {
		name, context, from, to string
	}{
		{"exec interactive", "mesh", lab, "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch " + marker + "\"]\n      interactiveMode: Always\n"},
		{"auth-provider", "mesh", lab, "    auth-provider:\n      name: gcp\n"},
		{"insecure", "mesh", "    server: https://192.0.2.20:6443\n", "    server: https://192.0.2.20:6443\n    insecure-skip-tls-verify: true\n"},
		{"proxy", "mesh", "    server: https://192.0.2.20:6443\n", "    server: https://192.0.2.20:6443\n    proxy-url: http://127.0.0.1:3128\n"},
		{"http", "mesh", "https://192.0.2.20:6443", "http://192.0.2.20:6443"},
	}
	var out strings.Builder
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kc := strings.Replace(byHandKubeconfig, tt.from, tt.to, 1)
			if kc == byHandKubeconfig {
				t.Fatal("the test's edit did not apply")
			}
			s, user := importPlan(t, t.TempDir(), byHandKubeconfig, tt.context)
			if err := os.WriteFile(user, []byte(kc), 0o600); err != nil {
				t.Fatal(err)
			}
			env := engine.NewEnv(plans.KubeconfigImportID("cluster2"), t.TempDir(), nil, nil, nil)
			err := s.Apply(context.Background(), env)
			if err == nil {
				t.Fatal("accepted")
			}
			if _, serr := os.Stat(statedir.Kubeconfig(env.Dir, "cluster2")); serr == nil {
				t.Error("a copy was kept")
			}
			out.WriteString(tt.name + ": " + strings.ReplaceAll(err.Error(), filepath.Dir(user), "$DIR") + "\n")
		})
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the exec plugin ran")
	}
	golden.Check(t, filepath.Join("testdata", "kubeconfig-import-refused.golden"), out.String())
}

// TestKubeconfigImportKeepsTheUserEntry: a context that logs in with a
// token, a tokenFile or an exec plugin is imported, and mcplan's copy
// (0600) carries the same stanza, the tokenFile and a relative exec
// command made absolute from the user's file, the context marked as the
// user's; the merged kubeconfig carries the same stanza. Importing runs
// no plugin, and the token is in no output and no
// log line.
func TestKubeconfigImportKeepsTheUserEntry(t *testing.T) {
	lab := "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n"
	tests := []struct {
		name, to string
		check    func(t *testing.T, dir string, u *clientcmdapi.AuthInfo)
	}{
		{"token", "    token: secret-inline-token\n", func(t *testing.T, _ string, u *clientcmdapi.AuthInfo) {
			if u.Token != "secret-inline-token" || u.Exec != nil || len(u.ClientKeyData) > 0 {
				t.Errorf("user entry %+v", u)
			}
		}},
		{"tokenFile", "    tokenFile: tokens/lab\n", func(t *testing.T, dir string, u *clientcmdapi.AuthInfo) {
			if u.TokenFile != filepath.Join(dir, "tokens", "lab") || u.Token != "" {
				t.Errorf("tokenFile %q, want it absolute from the user's file", u.TokenFile)
			}
		}},
		{"exec", "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: ./bin/get-token\n      args: [lab]\n      env: [{name: REGION, value: eu}]\n      interactiveMode: IfAvailable\n",
			func(t *testing.T, dir string, u *clientcmdapi.AuthInfo) {
				x := u.Exec
				if x == nil || x.Command != filepath.Join(dir, "bin", "get-token") || len(x.Args) != 1 || x.Args[0] != "lab" ||
					len(x.Env) != 1 || x.Env[0].Value != "eu" || x.APIVersion != "client.authentication.k8s.io/v1beta1" || x.InteractiveMode != clientcmdapi.IfAvailableExecInteractiveMode {
					t.Errorf("exec %+v", x)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "tokens", "lab"), []byte("secret-file-token"), 0o600); err != nil {
				t.Fatal(err)
			}
			kc := strings.Replace(byHandKubeconfig, lab, tt.to, 1)
			s, _ := importPlan(t, dir, kc, "mesh")
			var log strings.Builder
			env := engine.NewEnv(plans.KubeconfigImportID("cluster2"), t.TempDir(), nil, nil, func(e engine.Event) { fmt.Fprintf(&log, "%+v\n", e) })
			if err := s.Apply(context.Background(), env); err != nil {
				t.Fatal(err)
			}
			copyPath, cfg := readImportedCopy(t, env.Dir)
			tt.check(t, dir, cfg.AuthInfos["user-cluster2"])
			// The plan's merged kubeconfig carries the same stanza, as
			// kubectl users expect.
			out, err := MergeKubeconfigs(filepath.Join(t.TempDir(), "config"), []string{copyPath})
			if err != nil {
				t.Fatal(err)
			}
			merged, err := clientcmd.Load(out)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, dir, merged.AuthInfos["user-cluster2"])
			kept, err := kube.ReadKeptKubeconfig(copyPath)
			if err != nil || !kept.FromUser || kept.Server != "https://192.0.2.20:6443" {
				t.Errorf("the copy reads as %+v, %v; want the user's copy", kept, err)
			}
			if strings.Contains(fmt.Sprint(env.Outputs())+log.String(), "secret-inline-token") {
				t.Errorf("the token is in the outputs or log:\n%v\n%s", env.Outputs(), log.String())
			}
		})
	}
}

// readImportedCopy reads cluster2's copy in the state directory dir,
// which must be 0600.
func readImportedCopy(t *testing.T, dir string) (string, *clientcmdapi.Config) {
	t.Helper()
	copyPath := statedir.Kubeconfig(dir, "cluster2")
	if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy %s: %v, %v", copyPath, fi, err)
	}
	cfg, err := clientcmd.LoadFromFile(copyPath)
	if err != nil {
		t.Fatal(err)
	}
	return copyPath, cfg
}
