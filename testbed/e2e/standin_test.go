package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/testbed"
)

// installByHand installs the stand-in on a host the way the walkthrough
// installs k3s, without mcplan: upload, config.yaml, install script.
func (w *world) installByHand(h testbed.Host, config string, exec string) {
	w.t.Helper()
	bin, err := os.Open(w.k3s)
	if err != nil {
		w.t.Fatal(err)
	}
	defer bin.Close()
	w.sshIn(h, "mkdir -p /usr/local/bin && cat > /usr/local/bin/k3s && chmod 0755 /usr/local/bin/k3s", bin)
	script, err := os.Open(w.installScript())
	if err != nil {
		w.t.Fatal(err)
	}
	defer script.Close()
	w.sshIn(h, "cat > /root/install.sh", script)
	w.sshIn(h, "mkdir -p /etc/rancher/k3s && cat > /etc/rancher/k3s/config.yaml", strings.NewReader(config))
	w.ssh(h, "INSTALL_K3S_SKIP_DOWNLOAD=true INSTALL_K3S_EXEC="+exec+" sh /root/install.sh")
}

// clusterClient reads k3s.yaml from a server and points it at the host.
func (w *world) clusterClient(h testbed.Host) (*kubernetes.Clientset, *rest.Config) {
	w.t.Helper()
	var raw string
	for i := 0; i < 120; i++ {
		if raw = w.ssh(h, "cat /etc/rancher/k3s/k3s.yaml 2>/dev/null || true"); raw != "" {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig([]byte(raw))
	if err != nil {
		w.t.Fatalf("k3s.yaml of %s: %v", h.Name, err)
	}
	cfg.Host = "https://" + h.Address + ":6443"
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		w.t.Fatal(err)
	}
	return client, cfg
}

// eventually retries f until it returns nil or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s: %v", what, err)
}

// TestStandinByHand is issue 4's check of the test world: the stand-in
// installed by hand over SSH as server on h1, server on h2 and agent on h3
// joining h2, then used from the root namespace with client-go.
func TestStandinByHand(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h1, h2, h3 := w.bed.Hosts[0], w.bed.Hosts[1], w.bed.Hosts[2]
	start := time.Now()
	server := func(h testbed.Host, cidr string) string {
		return fmt.Sprintf("node-ip: %s\nadvertise-address: %s\ntls-san: [%s]\ncluster-cidr: %s\n", h.Address, h.Address, h.Address, cidr)
	}
	w.installByHand(h1, server(h1, "10.42.0.0/16"), "server")
	w.installByHand(h2, server(h2, "10.52.0.0/16"), "server")
	c1, _ := w.clusterClient(h1)
	c2, cfg2 := w.clusterClient(h2)
	token := strings.TrimSpace(w.ssh(h2, "cat /var/lib/rancher/k3s/server/node-token"))
	w.installByHand(h3, fmt.Sprintf("node-ip: %s\nserver: https://%s:6443\ntoken: %s\n", h3.Address, h2.Address, token), "agent")

	readyNodes := func(c *kubernetes.Clientset, want ...string) error {
		nodes, err := c.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var ready []string
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready = append(ready, n.Name)
				}
			}
		}
		slices.Sort(ready)
		if !slices.Equal(ready, want) {
			return fmt.Errorf("Ready nodes %v, want %v", ready, want)
		}
		return nil
	}
	eventually(t, 2*time.Minute, "cluster 1 nodes", func() error { return readyNodes(c1, h1.Name) })
	eventually(t, 2*time.Minute, "cluster 2 nodes", func() error { return readyNodes(c2, h2.Name, h3.Name) })
	t.Logf("3 hosts, 2 clusters up and Ready in %s (after the hosts came up)", time.Since(start).Round(time.Millisecond))

	t.Run("hosts reach nothing beyond the bridge", func(t *testing.T) {
		// Pod IPs are made up: an API server dialling one (a webhook) must
		// fail on the host, not send packets off the machine.
		out := w.ssh(h2, "ip route get 10.52.0.9 2>&1 || true; ip route get 198.51.100.1 2>&1 || true")
		if strings.Count(out, "No route to host") < 2 {
			t.Errorf("routes off the bridge exist on %s:\n%s", h2.Name, out)
		}
	})

	t.Run("deployment pods become ready", func(t *testing.T) {
		replicas := int32(2)
		labels := map[string]string{"app": "hello"}
		_, err := c2.AppsV1().Deployments("default").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: "hello"},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "hello", Image: "example.invalid/hello:1"}}}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "deployment ready", func() error {
			d, err := c2.AppsV1().Deployments("default").Get(ctx, "hello", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if d.Status.ReadyReplicas != 2 {
				return fmt.Errorf("%d/2 ready", d.Status.ReadyReplicas)
			}
			return nil
		})
		pods, err := c2.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=hello"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if !strings.HasPrefix(p.Status.PodIP, "10.52.") {
				t.Errorf("pod %s IP %q not in cluster 2's CIDR", p.Name, p.Status.PodIP)
			}
		}
	})

	t.Run("load balancer gets the node IP", func(t *testing.T) {
		_, err := c2.CoreV1().Services("default").Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "hello-lb"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: map[string]string{"app": "hello"},
				Ports: []corev1.ServicePort{{Name: "http", Port: 5000}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, time.Minute, "load balancer address", func() error {
			s, err := c2.CoreV1().Services("default").Get(ctx, "hello-lb", metav1.GetOptions{})
			if err != nil {
				return err
			}
			for _, in := range s.Status.LoadBalancer.Ingress {
				if in.IP == h2.Address || in.IP == h3.Address {
					return nil
				}
			}
			return fmt.Errorf("ingress %v", s.Status.LoadBalancer.Ingress)
		})
	})

	t.Run("service account tokens", func(t *testing.T) {
		sa, err := c2.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c2.CoreV1().Secrets("default").Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "reader-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: sa.Name}},
			Type:       corev1.SecretTypeServiceAccountToken,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var token string
		eventually(t, time.Minute, "token controller fills the secret", func() error {
			s, err := c2.CoreV1().Secrets("default").Get(ctx, "reader-token", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if token = string(s.Data[corev1.ServiceAccountTokenKey]); token == "" {
				return fmt.Errorf("no token yet")
			}
			return nil
		})
		as := rest.AnonymousClientConfig(cfg2)
		as.BearerToken = token
		saClient, err := kubernetes.NewForConfig(as)
		if err != nil {
			t.Fatal(err)
		}
		review, err := saClient.AuthorizationV1().SelfSubjectAccessReviews().Create(ctx, &authv1.SelfSubjectAccessReview{
			Spec: authv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &authv1.ResourceAttributes{Verb: "list", Resource: "secrets", Namespace: "kube-system"}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("request with the service account's token: %v", err)
		}
		if review.Status.Allowed {
			t.Error("RBAC lets a fresh service account list kube-system secrets")
		}
	})
}
