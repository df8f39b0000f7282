package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/testbed"
)

// TestMeshOverAClusterInstalledByHand is issue 20's cluster mcplan did
// not install: the stand-in k3s installed by hand on h2 (as the
// walkthrough does, without mcplan), its k3s.yaml copied to the
// operator's side with the server set to h2's address and given to the
// plan as cluster2's kubeconfig; cluster1 on h1 is mcplan's. Apply builds
// the mesh over both and `verify --xds` passes; destroy removes mcplan's
// objects from cluster2 and leaves its k3s running; mcplan never ran a
// command on h2, and the user's kubeconfig file is as it was.
func TestMeshOverAClusterInstalledByHand(t *testing.T) {
	w := newWorld(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	h1, h2 := w.bed.Hosts[0], w.bed.Hosts[1]
	w.installByHand(h2, fmt.Sprintf("node-ip: %s\nadvertise-address: %s\ntls-san: [%s]\ncluster-cidr: 10.52.0.0/16\nservice-cidr: 10.53.0.0/16\n",
		h2.Address, h2.Address, h2.Address), "server")
	user := w.byHandKubeconfig(h2)
	userBefore, err := os.ReadFile(user)
	if err != nil {
		t.Fatal(err)
	}
	userInfo, err := os.Stat(user)
	if err != nil {
		t.Fatal(err)
	}
	byHand := byHandClient(t, user)
	eventually(t, 2*time.Minute, "the by-hand cluster answers", func() error {
		_, err := byHand.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
		return err
	})
	w.writeExistingClusterPlan(h1.Address, h2.Address)
	marks := w.sshLogMarks()

	r := w.mustApply(t, ctx, "apply")
	for id, outcome := range r.outcomes {
		if strings.HasPrefix(id, "host/"+h2.Name+"/") {
			t.Errorf("a step on the by-hand cluster's host: %s %s", id, outcome)
		}
	}
	if got := r.outcomes["cluster/cluster2/kubeconfig/import"]; got != "succeeded" {
		t.Errorf("cluster/cluster2/kubeconfig/import: %s %s", got, r.errors["cluster/cluster2/kubeconfig/import"])
	}
	networkOf := map[string]string{"cluster1": "network1", "cluster2": "network2"}
	w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, networkOf)

	before, err := byHand.AppsV1().Deployments("istio-system").List(ctx, metav1.ListOptions{})
	if err != nil || len(before.Items) == 0 {
		t.Fatalf("no Deployments of mcplan's in cluster2's istio-system before destroy (%v)", err)
	}

	w.destroy(t, ctx, nil)
	deployments, err := byHand.AppsV1().Deployments("istio-system").List(ctx, metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	if err == nil && len(deployments.Items) > 0 {
		t.Errorf("destroy left %d Deployments in cluster2's istio-system (first %s)", len(deployments.Items), deployments.Items[0].Name)
	}
	eventually(t, time.Minute, "cluster2's istio-system removed", func() error {
		ns, err := byHand.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && ns.DeletionTimestamp != nil {
			return nil
		}
		return fmt.Errorf("istio-system is still there (%v)", err)
	})
	secrets, err := byHand.CoreV1().Secrets("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "istio/multiCluster=true"})
	if err == nil && len(secrets.Items) > 0 {
		t.Errorf("destroy left remote secret %s in cluster2", secrets.Items[0].Name)
	}
	if cmds := w.sshCommandsSince(marks)[h2.Name]; len(cmds) > 0 {
		t.Errorf("mcplan ran commands on the by-hand cluster's host: %q", cmds)
	}
	if out := strings.TrimSpace(w.ssh(h2, "systemctl is-active k3s")); out != "active" {
		t.Errorf("k3s on %s after destroy: %s", h2.Name, out)
	}
	if _, err := byHand.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{}); err != nil {
		t.Errorf("the by-hand cluster after destroy: %v", err)
	}
	userAfter, err := os.ReadFile(user)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(user); err != nil || string(userAfter) != string(userBefore) || !info.ModTime().Equal(userInfo.ModTime()) {
		t.Errorf("the user's kubeconfig changed (%v)", err)
	}
}

// byHandKubeconfig copies k3s.yaml of a server installed by hand to the
// operator's side with its server set to the host's address, as a user
// does, and returns its path.
func (w *world) byHandKubeconfig(h testbed.Host) string {
	w.t.Helper()
	var raw string
	for range 120 {
		if raw = w.ssh(h, "cat /etc/rancher/k3s/k3s.yaml 2>/dev/null || true"); raw != "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	cfg, err := clientcmd.Load([]byte(raw))
	if err != nil {
		w.t.Fatalf("k3s.yaml of %s: %v", h.Name, err)
	}
	for _, c := range cfg.Clusters {
		c.Server = "https://" + h.Address + ":6443"
	}
	path := filepath.Join(w.dir, "by-hand.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		w.t.Fatal(err)
	}
	return path
}

// byHandClient is a client of the current context of a kubeconfig file.
func byHandClient(t *testing.T, path string) *kubernetes.Clientset {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// writeExistingClusterPlan writes plan.yaml: cluster1 = server h1,
// installed by mcplan; cluster2 = the cluster by-hand.kubeconfig reaches,
// its API at h2's address for cluster1's istiod; the walkthrough's mesh.
func (w *world) writeExistingClusterPlan(h1, h2 string) {
	w.t.Helper()
	plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: e2e}
ssh: {user: root, identityFile: %q, knownHosts: %q, connectTimeout: 3s}
hosts:
  - {name: h1, address: %s}
networks: [{name: network1}, {name: network2}]
clusters:
  - name: cluster1
    network: network1
    servers: [h1]
    k3s:
      args: ["--cluster-cidr=10.42.0.0/16", "--service-cidr=10.43.0.0/16"]
      airgap: {binary: %q, installScript: %q}
  - name: cluster2
    network: network2
    kubeconfig: {path: by-hand.kubeconfig}
    api: {meshAddress: %s}
kubeconfig: {path: ./kubeconfig}
%s`, w.bed.ClientKeyPath, w.knownHosts, h1, w.k3s, w.installScript(), h2, meshSection)
	if err := os.WriteFile(filepath.Join(w.dir, "plan.yaml"), []byte(plan), 0o644); err != nil {
		w.t.Fatal(err)
	}
}
