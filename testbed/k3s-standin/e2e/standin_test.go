// Package e2e runs the built stand-in binary; it does not import the
// stand-in's packages, so its test binary stays small.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"
)

// buildStandin builds (or finds in the cache) the binary via build.sh;
// TestMain has built it already.
func buildStandin(t *testing.T) string {
	t.Helper()
	if bin := os.Getenv(envStandinBin); bin != "" {
		return bin
	}
	start := time.Now()
	cmd := exec.Command("bash", "../build.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh: %v", err)
	}
	t.Logf("build.sh took %s", time.Since(start).Round(time.Millisecond))
	return strings.TrimSpace(string(out))
}

// freePortPair finds p such that p and p+1 are free on 127.0.0.1.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		l2, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+1))
		if err != nil {
			continue
		}
		l2.Close()
		return p
	}
	t.Fatal("no free port pair")
	return 0
}

type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// start runs the stand-in with a clean environment; it is stopped with
// SIGTERM at cleanup and its log shown on failure.
func start(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	return startEnv(t, bin, name, nil, args...)
}

// startEnv is start with extra environment variables ("K=V").
func startEnv(t *testing.T, bin, name string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	// systemd's default PATH (the CNI bridge plugin needs /usr/sbin/iptables).
	p.cmd.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + t.TempDir()}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			log := p.output()
			if len(log) > 20000 {
				log = log[len(log)-20000:]
			}
			t.Logf("---- %s log (tail) ----\n%s", name, log)
		}
	})
	return p
}

// waitKubeconfig waits until the server srv has written its admin
// kubeconfig at path, failing the test when srv exits first.
func waitKubeconfig(t *testing.T, ctx context.Context, srv *proc, path string) {
	t.Helper()
	poll(t, ctx, path+" written", 3*time.Minute, func(context.Context) (bool, error) {
		select {
		case <-srv.done:
			t.Fatalf("server exited: %v", srv.err)
		default:
		}
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

func poll(t *testing.T, ctx context.Context, what string, timeout time.Duration, f func(ctx context.Context) (bool, error)) {
	t.Helper()
	start := time.Now()
	var last error
	err := wait.PollUntilContextTimeout(ctx, 250*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		ok, err := f(ctx)
		if err != nil {
			last = err
			return false, nil
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
	t.Logf("%s: %s", what, time.Since(start).Round(time.Millisecond))
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func rssKiB(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return -1
}

func TestVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the stand-in binary (long cold build); run without -short")
	}
	bin := buildStandin(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "k3s version v1.37.2+k3s1 (standin)\ngo version go") {
		t.Fatalf("--version printed %q", out)
	}
}

// TestBuildVersion builds the stand-in at another version (build.sh
// VERSION): --version, the apiserver's /version and the Node's
// kubeletVersion report it.
func TestBuildVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the stand-in; run without -short")
	}
	const want = "v1.38.0+k3s1"
	cmd := exec.Command("bash", "../build.sh", "v1.38.0")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("build.sh v1.38.0: %v", err)
	}
	bin := strings.TrimSpace(string(out))
	if bin == os.Getenv(envStandinBin) || strings.Contains(bin, "\n") {
		t.Fatalf("build.sh v1.38.0 printed %q (the default build is %q): want one path of its own", bin, os.Getenv(envStandinBin))
	}
	if out, err := exec.Command(bin, "--version").Output(); err != nil || !strings.HasPrefix(string(out), "k3s version "+want+" (standin)\n") {
		t.Fatalf("--version: %q %v", out, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	kubeconfig := filepath.Join(tmp, "k3s.yaml")
	srv := start(t, bin, "server", "server", "--config", filepath.Join(tmp, "none.yaml"), "--node-ip", "127.0.0.1",
		"--advertise-address", "192.0.2.10", "--node-name", "v138", "--data-dir", filepath.Join(tmp, "data"), "--write-kubeconfig", kubeconfig,
		"--https-listen-port", strconv.Itoa(freePortPair(t)), "--standin-etcd-port", strconv.Itoa(freePortPair(t)),
		"--standin-native-images", filepath.Join(tmp, "none"), "--standin-pod-log-dir", filepath.Join(tmp, "pods"), "--standin-kubelet-port", strconv.Itoa(freePortPair(t)))
	waitKubeconfig(t, ctx, srv, kubeconfig)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(restCfg)
	poll(t, ctx, "/version and kubeletVersion "+want, time.Minute, func(ctx context.Context) (bool, error) {
		sv, err := cs.Discovery().ServerVersion()
		if err != nil {
			return false, err
		}
		n, err := cs.CoreV1().Nodes().Get(ctx, "v138", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sv.GitVersion != want || sv.Minor != "38" || n.Status.NodeInfo.KubeletVersion != want {
			return false, fmt.Errorf("/version %s (minor %s), kubeletVersion %s", sv.GitVersion, sv.Minor, n.Status.NodeInfo.KubeletVersion)
		}
		return true, nil
	})
}

func TestServerAndAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver; run without -short")
	}
	bin := buildStandin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	tmp := t.TempDir()
	port := freePortPair(t)
	etcdPort := freePortPair(t)
	kubeconfig := filepath.Join(tmp, "k3s.yaml")
	cfgFile := filepath.Join(tmp, "config.yaml")
	// kube-apiserver refuses a loopback advertise address, so advertise a
	// TEST-NET-1 address; nothing dials it.
	cfgYAML := fmt.Sprintf(`node-ip: 127.0.0.1
advertise-address: 192.0.2.10
node-name: server-1
tls-san:
  - k3s.example.test
  - 192.0.2.1
cluster-cidr: 10.52.0.0/16
service-cidr: 10.53.0.0/16
write-kubeconfig: %s
https-listen-port: %d
standin-etcd-port: %d
disable: [traefik]
some-future-key: ignored
`, kubeconfig, port, etcdPort)
	if err := os.WriteFile(cfgFile, []byte(cfgYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	srv := start(t, bin, "server", "server", "--config", cfgFile, "--data-dir", filepath.Join(tmp, "server"))

	waitKubeconfig(t, ctx, srv, kubeconfig)
	if fi, err := os.Stat(kubeconfig); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("k3s.yaml mode: %v %v", fi.Mode(), err)
	}
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if kc.CurrentContext != "default" || kc.Clusters["default"] == nil || kc.AuthInfos["default"] == nil ||
		kc.Clusters["default"].Server != "https://127.0.0.1:"+strconv.Itoa(port) || len(kc.AuthInfos["default"].ClientCertificateData) == 0 {
		t.Fatalf("k3s.yaml not shaped like k3s's: %+v", kc)
	}
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(restCfg)
	poll(t, ctx, "/readyz through :6443", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
	sv, err := cs.Discovery().ServerVersion()
	if err != nil || sv.GitVersion != "v1.37.2+k3s1" {
		t.Fatalf("server version %+v %v", sv, err)
	}

	poll(t, ctx, "server node Ready with role labels", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "server-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeReady(n) && n.Labels["node-role.kubernetes.io/control-plane"] == "true" &&
			n.Labels["node-role.kubernetes.io/master"] == "true" && n.Spec.PodCIDR != "", nil
	})
	t.Logf("server up after %s; RSS %d MiB", time.Since(started).Round(time.Millisecond), rssKiB(srv.cmd.Process.Pid)/1024)

	// A Deployment's pods are scheduled by the real scheduler and reported
	// Running/Ready by the simulated kubelet with IPs from the cluster CIDR.
	_, clusterNet, _ := net.ParseCIDR("10.52.0.0/16")
	ns := "demo"
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	replicas := int32(2)
	lbls := map[string]string{"app": "web"}
	_, err = cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "deployment pods Ready with cluster-CIDR IPs", time.Minute, func(ctx context.Context) (bool, error) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas != 2 {
			return false, err
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, err
		}
		ips := map[string]bool{}
		for _, p := range pods.Items {
			ip := net.ParseIP(p.Status.PodIP)
			if p.Status.Phase != corev1.PodRunning || ip == nil || !clusterNet.Contains(ip) || p.Status.HostIP != "127.0.0.1" {
				return false, fmt.Errorf("pod %s: phase %s ip %s host %s", p.Name, p.Status.Phase, p.Status.PodIP, p.Status.HostIP)
			}
			ips[ip.String()] = true
		}
		return len(ips) == 2, nil
	})

	// LoadBalancer Service: node IP (and externalIPs) as ingress, like servicelb.
	_, err = cs.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Type:        corev1.ServiceTypeLoadBalancer,
			Selector:    lbls,
			ExternalIPs: []string{"192.0.2.50"},
			Ports:       []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "LoadBalancer ingress", time.Minute, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var got []string
		for _, in := range s.Status.LoadBalancer.Ingress {
			got = append(got, in.IP)
		}
		if !strings.HasPrefix(s.Spec.ClusterIP, "10.53.") {
			return false, fmt.Errorf("clusterIP %s not in service CIDR", s.Spec.ClusterIP)
		}
		if strings.Join(got, ",") != "192.0.2.50,127.0.0.1" {
			return false, fmt.Errorf("ingress %v", got)
		}
		return true, nil
	})

	// ServiceAccount token Secret filled by the real token controller; the
	// token authenticates and RBAC authorizes it.
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "reader-token", Annotations: map[string]string{corev1.ServiceAccountNameKey: "reader"}},
		Type:       corev1.SecretTypeServiceAccountToken,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var saToken string
	poll(t, ctx, "token Secret filled by kube-controller-manager", time.Minute, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Secrets(ns).Get(ctx, "reader-token", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		saToken = string(s.Data[corev1.ServiceAccountTokenKey])
		return saToken != "" && len(s.Data[corev1.ServiceAccountRootCAKey]) > 0, nil
	})
	saCfg := rest.AnonymousClientConfig(restCfg)
	saCfg.BearerToken = saToken
	saClient := kubernetes.NewForConfigOrDie(saCfg)
	if _, err := saClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("SA token before RBAC: want Forbidden, got %v", err)
	}
	_, err = cs.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "ns-reader"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"get", "list"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cs.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "ns-reader"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "ns-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "reader"}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "SA token lists namespaces via RBAC", 30*time.Second, func(ctx context.Context) (bool, error) {
		l, err := saClient.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) > 0, err
	})

	// Server-side apply of a CRD and of a custom object.
	dyn := dynamic.NewForConfigOrDie(restCfg)
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := mustUnstructured(t, `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.test}
spec:
  group: example.test
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
`)
	if _, err := dyn.Resource(crdGVR).Apply(ctx, "widgets.example.test", crd, metav1.ApplyOptions{FieldManager: "standin-test"}); err != nil {
		t.Fatalf("apply CRD: %v", err)
	}
	widgets := dyn.Resource(schema.GroupVersionResource{Group: "example.test", Version: "v1", Resource: "widgets"}).Namespace(ns)
	for _, size := range []int{1, 3} {
		obj := mustUnstructured(t, fmt.Sprintf("apiVersion: example.test/v1\nkind: Widget\nmetadata: {name: w1, namespace: %s}\nspec: {size: %d}\n", ns, size))
		poll(t, ctx, fmt.Sprintf("server-side apply Widget size=%d", size), 30*time.Second, func(ctx context.Context) (bool, error) {
			got, err := widgets.Apply(ctx, "w1", obj, metav1.ApplyOptions{FieldManager: "standin-test"})
			if err != nil {
				return false, err
			}
			v, _, _ := unstructured.NestedInt64(got.Object, "spec", "size")
			return v == int64(size), nil
		})
	}

	// An agent joins with the node token.
	tokenBytes, err := os.ReadFile(filepath.Join(tmp, "server", "server", "node-token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokenBytes))
	if !strings.HasPrefix(tok, "K10") || !strings.Contains(tok, "::server:") {
		t.Fatalf("node-token %q not in k3s's format", tok)
	}
	serverURL := "https://127.0.0.1:" + strconv.Itoa(port)
	agentArgs := func(token, name string) []string {
		return []string{"agent", "--config", filepath.Join(tmp, "no-config.yaml"), "--server", serverURL, "--token", token,
			"--node-ip", "127.0.0.2", "--node-name", name, "--data-dir", filepath.Join(tmp, name)}
	}
	start(t, bin, "agent", agentArgs(tok, "agent-1")...)
	poll(t, ctx, "agent node Ready", time.Minute, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "agent-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if _, isCP := n.Labels["node-role.kubernetes.io/control-plane"]; isCP {
			return false, fmt.Errorf("agent has control-plane label")
		}
		return nodeReady(n) && n.Spec.PodCIDR != "" && n.Status.Addresses[0].Address == "127.0.0.2", nil
	})
	poll(t, ctx, "LoadBalancer ingress includes the agent", 30*time.Second, func(ctx context.Context) (bool, error) {
		s, err := cs.CoreV1().Services(ns).Get(ctx, "web", metav1.GetOptions{})
		return err == nil && len(s.Status.LoadBalancer.Ingress) == 3, err
	})
	// The agent's kubelet API has a serving certificate from the
	// supervisor, and the apiserver reaches it.
	checkKubeletAPI(t, ctx, cs, kubeconfig, filepath.Join(tmp, "agent-1", "agent", "kubelet.kubeconfig"), "agent-1", "127.0.0.2")

	// Wrong secret and wrong CA hash are refused.
	hash, _, _ := strings.Cut(tok, "::")
	for _, c := range []struct{ token, want string }{
		{hash + "::server:not-the-secret", "refused the token"},
		{"K10" + strings.Repeat("0", 64) + "::server:whatever", "does not match the token's K10 hash"},
	} {
		p := start(t, bin, "bad-agent", agentArgs(c.token, "bad-agent")...)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			t.Fatalf("agent with bad token %q still running", c.token)
		}
		if p.err == nil || !strings.Contains(p.output(), c.want) {
			t.Fatalf("agent with bad token: err %v, output %q; want %q", p.err, p.output(), c.want)
		}
	}
	if _, err := cs.CoreV1().Nodes().Get(ctx, "bad-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("bad agent registered a node: %v", err)
	}

	// Namespace deletion completes: the simulated kubelet finishes pod
	// termination, the real namespace controller does the rest.
	if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "namespace deleted", 2*time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	t.Logf("server RSS at end: %d MiB", rssKiB(srv.cmd.Process.Pid)/1024)
}

func mustUnstructured(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(y), &m); err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}
