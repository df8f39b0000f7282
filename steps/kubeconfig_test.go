package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
)

// k3sYAML is shaped like /etc/rancher/k3s/k3s.yaml (fake key material).
const k3sYAML = `apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: Q0EtREFUQQ==
    server: https://127.0.0.1:6443
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
kind: Config
preferences: {}
users:
- name: default
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
`

func TestRenameAndMergeAsTheWalkthrough(t *testing.T) {
	dir := t.TempDir()
	var sources []string
	for _, c := range []struct{ name, ip string }{{"cluster1", "192.168.60.113"}, {"cluster2", "192.168.60.9"}} {
		cfg, err := RenameK3sKubeconfig([]byte(k3sYAML), apiURL(c.ip, 6443),
			plans.KubeconfigNames{Cluster: c.name, User: "user-" + c.name, Context: "context-" + c.name})
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, c.name+".yaml")
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			t.Fatal(err)
		}
		sources = append(sources, path)
	}
	// An existing kubeconfig with an unrelated context and a stale entry.
	target := filepath.Join(dir, "config")
	existing := clientcmdapi.NewConfig()
	existing.Clusters["prod"] = &clientcmdapi.Cluster{Server: "https://prod.example:6443"}
	existing.AuthInfos["prod-admin"] = &clientcmdapi.AuthInfo{Token: "t"}
	existing.Contexts["prod"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "prod-admin"}
	existing.Clusters["cluster1"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443"}
	existing.CurrentContext = "prod"
	if err := clientcmd.WriteToFile(*existing, target); err != nil {
		t.Fatal(err)
	}
	out, err := MergeKubeconfigs(target, sources)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := clientcmd.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	if merged.CurrentContext != "prod" {
		t.Errorf("current context %q, want the user's prod kept", merged.CurrentContext)
	}
	if merged.Contexts["prod"] == nil {
		t.Error("unrelated context dropped")
	}
	for name, server := range map[string]string{"cluster1": "https://192.168.60.113:6443", "cluster2": "https://192.168.60.9:6443"} {
		if got := merged.Clusters[name].Server; got != server {
			t.Errorf("%s server %q, want %q", name, got, server)
		}
		ctx := merged.Contexts["context-"+name]
		if ctx == nil || ctx.Cluster != name || ctx.AuthInfo != "user-"+name {
			t.Errorf("context-%s = %+v", name, ctx)
		}
		if string(merged.AuthInfos["user-"+name].ClientKeyData) != "KEY" {
			t.Errorf("user-%s lost its key", name)
		}
	}
	fresh, err := MergeKubeconfigs("", sources)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := clientcmd.Load(fresh)
	if cfg.CurrentContext != "context-cluster1" || len(cfg.Contexts) != 2 {
		t.Errorf("fresh merge: current %q, %d contexts", cfg.CurrentContext, len(cfg.Contexts))
	}
	if _, err := os.Stat(target); err != nil {
		t.Fatal(err)
	}
}

// TestK3sKubeconfigWithExecRefused: a k3s.yaml a host hands over with an
// exec plugin and insecure-skip-tls-verify is refused with both named;
// the plugin does not run.
func TestK3sKubeconfigWithExecRefused(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "exec-ran")
	planted := strings.Replace(k3sYAML, "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n",
		"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch "+marker+"\"]\n      interactiveMode: Never\n", 1)
	planted = strings.Replace(planted, "    server: https://127.0.0.1:6443\n", "    server: https://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n", 1)
	if planted == k3sYAML {
		t.Fatal("the test's edit did not apply")
	}
	_, err := RenameK3sKubeconfig([]byte(planted), "https://192.0.2.1:6443", plans.KubeconfigNames{Cluster: "c", User: "u", Context: "x"})
	if err == nil {
		t.Fatal("a k3s.yaml with an exec plugin was accepted")
	}
	for _, want := range []string{"cluster insecure-skip-tls-verify", "user exec (a command to run)", "refused"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the exec plugin ran")
	}
}

// TestK3sKubeconfigCannotClaimToBeTheUsers: a k3s.yaml a host hands over
// that carries the mark of mcplan's copy of a user's kubeconfig gains
// nothing by it: with an exec plugin it is still refused (the plugin
// does not run), and with a client certificate the copy kubeconfig/fetch
// keeps is unmarked, so later steps read it strictly (the client-go path
// is for the plan's own kubeconfig files alone).
func TestK3sKubeconfigCannotClaimToBeTheUsers(t *testing.T) {
	marked := strings.Replace(k3sYAML, "    cluster: default\n    user: default\n",
		"    cluster: default\n    user: default\n    extensions:\n    - name: mcplan.io/kubeconfig-source\n      extension: user-kubeconfig\n", 1)
	if marked == k3sYAML {
		t.Fatal("the test's edit did not apply")
	}
	marker := filepath.Join(t.TempDir(), "exec-ran")
	withExec := strings.Replace(marked, "    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ\n",
		"    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: /bin/sh\n      args: [\"-c\", \"touch "+marker+"\"]\n      interactiveMode: Never\n", 1)
	names := plans.KubeconfigNames{Cluster: "c", User: "u", Context: "x"}
	if _, err := RenameK3sKubeconfig([]byte(withExec), "https://192.0.2.1:6443", names); err == nil || !strings.Contains(err.Error(), "user exec (a command to run)") {
		t.Errorf("a marked k3s.yaml with an exec plugin: %v, want it refused", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the exec plugin ran")
	}
	cfg, err := RenameK3sKubeconfig([]byte(marked), "https://192.0.2.1:6443", names)
	if err != nil {
		t.Fatal(err)
	}
	if ext := cfg.Contexts["x"].Extensions; len(ext) > 0 {
		t.Errorf("the fetched copy carries extensions %v", ext)
	}
	path := filepath.Join(t.TempDir(), "c.yaml")
	raw, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	kept, err := kube.ReadKeptKubeconfig(path)
	if err != nil || kept.FromUser {
		t.Errorf("the fetched copy reads as %+v, %v; want it read strictly", kept, err)
	}
}
