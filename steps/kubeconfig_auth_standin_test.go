package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/testbed"
)

// TestUserKubeconfigAuthOnStandin: against a real kube-apiserver (the k3s
// stand-in), a cluster given by the user's kubeconfig logs in with a
// ServiceAccount's token given (a) inline, (b) as a tokenFile and (c) by
// an exec plugin (a shell script printing an ExecCredential): each is
// imported by kubeconfig/import, and the client later steps build from
// mcplan's copy (kube.FromKubeconfig) lists namespaces. The strict path
// of kubeconfigs fetched from hosts still refuses (c): as a k3s.yaml, and
// as a copy without the user's mark; the plugin runs only for the
// user's copy. A wrong token is refused by the API, so the others passed
// on their own.
func TestUserKubeconfigAuthOnStandin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := testbed.StandinBinary(t)
	testbed.HoldMachineLock(t, "kubeauth-standin")
	s := testbed.StartStandinServer(t, ctx, bin, "kubeauth", "127.0.0.52")
	admin := s.AdminClient(t, ctx)
	token := serviceAccountAdminToken(t, ctx, admin)

	k3s, err := clientcmd.LoadFromFile(s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	server := k3s.Clusters[k3s.Contexts[k3s.CurrentContext].Cluster]
	if !strings.HasPrefix(server.Server, "https://127.0.0.") {
		t.Fatalf("the stand-in's server is %s, want it on loopback", server.Server)
	}

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sa.token"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	runs := filepath.Join(dir, "exec-runs")
	script := "#!/bin/sh\necho run >> " + runs + "\n" +
		`printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"%s"}}' "$(cat ` + filepath.Join(dir, "sa.token") + `)"` + "\n"
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "get-token"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	user := clientcmdapi.NewConfig()
	user.Clusters["standin"] = &clientcmdapi.Cluster{Server: server.Server, CertificateAuthorityData: server.CertificateAuthorityData}
	user.AuthInfos["inline"] = &clientcmdapi.AuthInfo{Token: token}
	user.AuthInfos["file"] = &clientcmdapi.AuthInfo{TokenFile: "sa.token"}
	user.AuthInfos["wrong"] = &clientcmdapi.AuthInfo{Token: "not-a-token"}
	user.AuthInfos["exec"] = &clientcmdapi.AuthInfo{Exec: &clientcmdapi.ExecConfig{
		APIVersion: "client.authentication.k8s.io/v1", Command: "./bin/get-token", InteractiveMode: clientcmdapi.IfAvailableExecInteractiveMode}}
	for _, name := range []string{"inline", "file", "exec", "wrong"} {
		user.Contexts[name] = &clientcmdapi.Context{Cluster: "standin", AuthInfo: name}
	}
	user.CurrentContext = "inline"
	raw, err := clientcmd.Write(*user)
	if err != nil {
		t.Fatal(err)
	}

	copies := map[string]string{}
	stateDir := t.TempDir() // outlives the subtests: the exec copy is read again below
	for _, name := range []string{"inline", "file", "exec", "wrong"} {
		t.Run(name, func(t *testing.T) {
			step, _ := importPlan(t, dir, string(raw), name)
			var log strings.Builder
			env := engine.NewEnv(plans.KubeconfigImportID("cluster2"), filepath.Join(stateDir, name), nil, nil, func(e engine.Event) { fmt.Fprintf(&log, "%+v\n", e) })
			if err := step.Apply(ctx, env); err != nil {
				t.Fatal(err)
			}
			copies[name] = statedir.Kubeconfig(env.Dir, "cluster2")
			c, err := kube.FromKubeconfig("cluster2", copies[name], t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			list, err := c.Typed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			if name == "wrong" {
				// The API checks the token: the others passed by it.
				if !apierrors.IsUnauthorized(err) {
					t.Errorf("list namespaces with a wrong token: %v, want Unauthorized", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("list namespaces with the %s credential: %v", name, err)
			}
			if !hasNamespace(list.Items, "kube-system") {
				t.Errorf("namespaces %v lack kube-system", list.Items)
			}
			if strings.Contains(log.String()+fmt.Sprint(env.Outputs()), token) {
				t.Error("the token is in the step's log or outputs")
			}
		})
	}
	ran := func() int {
		data, _ := os.ReadFile(runs)
		return strings.Count(string(data), "run")
	}
	if ran() == 0 {
		t.Error("the exec plugin never ran for the user's copy")
	}

	before := ran()
	execOnly, err := clientcmd.Load(raw)
	if err != nil {
		t.Fatal(err)
	}
	execOnly.CurrentContext = "exec"
	delete(execOnly.AuthInfos, "inline")
	delete(execOnly.AuthInfos, "file")
	delete(execOnly.Contexts, "inline")
	delete(execOnly.Contexts, "file")
	execRaw, err := clientcmd.Write(*execOnly)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RenameK3sKubeconfig(execRaw, server.Server, plans.KubeconfigNames{Cluster: "c", User: "u", Context: "x"}); err == nil {
		t.Error("a k3s.yaml with an exec plugin was accepted")
	}
	if copies["exec"] != "" {
		unmarked, err := clientcmd.LoadFromFile(copies["exec"])
		if err != nil {
			t.Fatal(err)
		}
		for _, kctx := range unmarked.Contexts {
			kctx.Extensions = nil
		}
		path := filepath.Join(t.TempDir(), "unmarked.yaml")
		if err := clientcmd.WriteToFile(*unmarked, path); err != nil {
			t.Fatal(err)
		}
		if _, err := kube.FromKubeconfig("cluster2", path, t.Logf); err == nil || !strings.Contains(err.Error(), "user exec (a command to run)") {
			t.Errorf("a copy with an exec plugin and no user's mark: %v, want it refused", err)
		}
	}
	if ran() != before {
		t.Error("the exec plugin ran on the strict path")
	}
}

// serviceAccountAdminToken makes a ServiceAccount bound to cluster-admin
// and returns a token of it (TokenRequest).
func serviceAccountAdminToken(t *testing.T, ctx context.Context, admin kubernetes.Interface) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kubeauth", Namespace: "default"}}
	if _, err := admin.CoreV1().ServiceAccounts("default").Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "kubeauth-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "kubeauth", Namespace: "default"}},
	}
	if _, err := admin.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ttl := int64(3600)
	tr, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "kubeauth",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("TokenRequest: %v", err)
	}
	return tr.Status.Token
}

func hasNamespace(items []corev1.Namespace, name string) bool {
	for _, ns := range items {
		if ns.Name == name {
			return true
		}
	}
	return false
}
