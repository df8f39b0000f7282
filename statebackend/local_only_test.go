package statebackend

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/steps/kube"
)

// userKubeconfig is a kubeconfig with an exec plugin, its context marked
// as mcplan's copy of a user's kubeconfig when marked.
func userKubeconfig(t *testing.T, command string, marked bool) []byte {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["c"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:6443", CertificateAuthorityData: []byte("ca")}
	cfg.AuthInfos["u"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{APIVersion: "client.authentication.k8s.io/v1", Command: command}}
	kctx := &clientcmdapi.Context{Cluster: "c", AuthInfo: "u"}
	if marked {
		kube.MarkUserKubeconfig(kctx)
	}
	cfg.Contexts["x"], cfg.CurrentContext = kctx, "x"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestUserKubeconfigCopiesStayLocal: mcplan's copy of a user's
// kubeconfig (which may hold an exec plugin) is never sent to a backend,
// and one that a backend's snapshot holds is never written to the state
// directory, nor does it remove the local one: what a cluster holds
// cannot make mcplan run a command.
func TestUserKubeconfigCopiesStayLocal(t *testing.T) {
	dir := t.TempDir()
	local := userKubeconfig(t, "/usr/local/bin/aws", true)
	fetched := userKubeconfig(t, "/bin/true", false) // unmarked: the strict reader refuses its exec; it is state like any other
	for name, data := range map[string][]byte{"kubeconfig/mine.yaml": local, "kubeconfig/fetched.yaml": fetched, "state.json": []byte("{}")} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s, err := ReadSnapshot(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s["kubeconfig/mine.yaml"]; ok {
		t.Error("the snapshot carries mcplan's copy of the user's kubeconfig")
	}
	if _, ok := s["kubeconfig/fetched.yaml"]; !ok {
		t.Error("the snapshot lacks an unmarked kubeconfig")
	}

	planted := userKubeconfig(t, "/tmp/evil", true)
	remote := Snapshot{"state.json": []byte("{}"), "kubeconfig/mine.yaml": planted, "kubeconfig/other.yaml": planted}
	if err := remote.WriteTo(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "kubeconfig", "mine.yaml")); err != nil || !bytes.Equal(got, local) {
		t.Errorf("the local copy was replaced or removed by the backend's (err %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig", "other.yaml")); !os.IsNotExist(err) {
		t.Errorf("a marked kubeconfig from the backend was written: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "kubeconfig", "fetched.yaml")); !os.IsNotExist(err) {
		t.Errorf("an unmarked kubeconfig the backend lacks was kept: %v", err)
	}
}
