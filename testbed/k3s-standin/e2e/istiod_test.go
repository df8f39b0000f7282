package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	"k8s.io/client-go/util/retry"
	streamhttp "k8s.io/streaming/pkg/httpstream"
)

// istiodMountPaths are the mount points of the istiod pod (and of its
// kube-api-access volume), deepest first: created empty on the host when
// missing, removed again after the test.
func istiodMountPaths() []string {
	return []string{
		"/var/run/secrets/kubernetes.io/serviceaccount", "/var/run/secrets/kubernetes.io",
		"/var/run/secrets/tokens", "/var/run/secrets/istio-dns", "/etc/cacerts", "/var/run/secrets/remote",
		"/var/run/secrets/istiod/tls", "/var/run/secrets/istiod/ca", "/var/run/secrets/istiod", "/var/run/secrets",
	}
}

// TestIstiodRunsNatively runs Istio's pilot image natively (the
// pilot-discovery build of testbed/native-images) in a stand-in cluster
// with the objects mcplan renders for istiod, and checks what the real
// istiod does: readiness, logs and port-forward through the apiserver, the
// CA bundle it patches into its webhooks, sidecar injection and validation
// by the real apiserver calling its webhooks, replacement on deletion, its
// own network namespace (pod IP from the podCIDR, replicas and a second
// Deployment side by side, the IP kept over a restart of the stand-in),
// the simulated east-west passthrough, a rollout to hostNetwork, and no
// process left after the stand-in stops.
func TestIstiodRunsNatively(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real kube-apiserver and istiod; run without -short")
	}
	if why := os.Getenv(envNativeSkipWhy); why != "" {
		t.Skip("native images unavailable: " + why)
	}
	images := os.Getenv(envNativeImages)
	if images == "" || !inNetNS() {
		t.Skip("needs the test's own network namespace (root) and the native images build")
	}
	bin := buildStandin(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	removeCreatedMountPoints(t)

	tmp := t.TempDir()
	dataDir := filepath.Join(tmp, "server")
	logDir := filepath.Join(tmp, "pods")
	kubeconfig := filepath.Join(tmp, "k3s.yaml")
	serverArgs := []string{"server", "--config", filepath.Join(tmp, "none.yaml"),
		"--node-ip", netnsNodeIP, "--node-name", "server-1", "--data-dir", dataDir, "--write-kubeconfig", kubeconfig,
		"--standin-native-images", images, "--standin-pod-log-dir", logDir}
	srv := start(t, bin, "server", serverArgs...)
	waitKubeconfig(t, ctx, srv, kubeconfig)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cs := kubernetes.NewForConfigOrDie(restCfg)
	poll(t, ctx, "node Ready", 2*time.Minute, func(ctx context.Context) (bool, error) {
		n, err := cs.CoreV1().Nodes().Get(ctx, "server-1", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return nodeReady(n) && n.Spec.PodCIDR != "" && n.Status.DaemonEndpoints.KubeletEndpoint.Port == 10250, nil
	})

	// Istio's objects for istiod, as mcplan renders them.
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	created := time.Now()
	applyFile(t, ctx, restCfg, "testdata/istiod.yaml")

	var pod *corev1.Pod
	poll(t, ctx, "istiod pod Ready", 3*time.Minute, func(ctx context.Context) (bool, error) {
		pod, err = readyPod(ctx, cs, "istio-system", "app=istiod")
		return pod != nil, err
	})
	readyAfter := time.Since(created)
	pid := nativePID(t, dataDir, pod.Name)
	checkNativeProcess(t, pid, images, false)
	checkPodNetwork(t, ctx, cs, pod, "server-1", netnsNodeIP)
	t.Logf("istiod pod %s Ready %s after the objects were applied, %s after the pod's creation (API times, whole seconds); pid %d, VmRSS %d MiB",
		pod.Name, readyAfter.Round(time.Millisecond), readySince(pod), pid, rssKiB(pid)/1024)

	// Logs through the apiserver and the kubelet API.
	logs, err := cs.CoreV1().Pods("istio-system").GetLogs(pod.Name, &corev1.PodLogOptions{Container: "discovery"}).DoRaw(ctx)
	if err != nil || !bytes.Contains(logs, []byte("starting webhook service")) {
		t.Fatalf("istiod logs (%d bytes, err %v) lack its webhook start line:\n%.2000s", len(logs), err, logs)
	}
	tail := int64(3)
	logs, err = cs.CoreV1().Pods("istio-system").GetLogs(pod.Name, &corev1.PodLogOptions{TailLines: &tail, Timestamps: true}).DoRaw(ctx)
	if lines := strings.Split(strings.TrimSpace(string(logs)), "\n"); err != nil || len(lines) != 3 || !strings.HasPrefix(lines[0], time.Now().UTC().Format("2006-")) {
		t.Fatalf("tailLines=3 with timestamps: %q %v", logs, err)
	}
	follow, err := cs.CoreV1().Pods("istio-system").GetLogs(pod.Name, &corev1.PodLogOptions{Follow: true, TailLines: &tail}).Stream(ctx)
	if err != nil {
		t.Fatalf("follow logs: %v", err)
	}
	line, err := bufio.NewReader(follow).ReadString('\n')
	follow.Close()
	if err != nil || !strings.Contains(line, "\t") {
		t.Fatalf("follow logs: first line %q, %v", line, err)
	}
	if _, err := os.Stat(filepath.Join(logDir, "istio-system_"+pod.Name+"_"+string(pod.UID), "discovery", "0.log")); err != nil {
		t.Fatalf("kubelet log layout: %v", err)
	}

	// Port-forward through the apiserver, as kubectl (websockets, falling
	// back to SPDY) and as older clients (SPDY only) do.
	var debugAddr string
	for _, d := range []struct {
		name       string
		websockets bool
	}{{"websockets", true}, {"spdy", false}} {
		ready := forward(t, ctx, restCfg, cs, "istio-system", pod.Name, 8080, d.websockets)
		debugAddr = ready
		resp, err := http.Get("http://" + ready + "/ready")
		if err != nil {
			t.Fatalf("%s port-forward to 8080: %v", d.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s port-forward GET /ready: %s", d.name, resp.Status)
		}
		xds := forward(t, ctx, restCfg, cs, "istio-system", pod.Name, 15010, d.websockets)
		if err := grpcAnswers(ctx, xds); err != nil {
			t.Fatalf("%s port-forward to 15010 (xDS): %v", d.name, err)
		}
		t.Logf("port-forward (%s): GET /ready 200 on 8080, gRPC server on 15010", d.name)
	}

	// istiod's CA bundle in its webhooks (patched by istiod itself).
	var root string
	poll(t, ctx, "istio-ca-root-cert published", time.Minute, func(ctx context.Context) (bool, error) {
		cm, err := cs.CoreV1().ConfigMaps("istio-system").Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		root = cm.Data["root-cert.pem"]
		return root != "", nil
	})
	poll(t, ctx, "webhook caBundles patched by istiod", time.Minute, func(ctx context.Context) (bool, error) {
		mwc, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		vwc, err := cs.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "istio-validator-istio-system", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		var bundles [][]byte
		for _, w := range mwc.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for _, w := range vwc.Webhooks {
			bundles = append(bundles, w.ClientConfig.CABundle)
		}
		for _, b := range bundles {
			if !samePEMCert(b, []byte(root)) {
				return false, fmt.Errorf("caBundle %.60q is not istiod's root", b)
			}
		}
		return len(bundles) > 0, nil
	})

	// A remote cluster through a remote secret, as istioctl
	// create-remote-secret makes it: istiod watches the second cluster's
	// API (seen in its /debug/clusterz, which it serves to local clients
	// only: the port-forward arrives from localhost, as with a kubelet).
	remote := startSecondCluster(t, ctx, bin, tmp, images)
	_, err = cs.CoreV1().Secrets("istio-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-remote-secret-cluster2", Namespace: "istio-system",
			Labels: map[string]string{"istio/multiCluster": "true"}, Annotations: map[string]string{"networking.istio.io/cluster": "cluster2"}},
		StringData: map[string]string{"cluster2": string(remote)},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "istiod synced the remote cluster", 2*time.Minute, func(ctx context.Context) (bool, error) {
		var clusters []struct{ ID, SecretName, SyncStatus string }
		if err := getJSON(ctx, "http://"+debugAddr+"/debug/clusterz", &clusters); err != nil {
			return false, err
		}
		for _, c := range clusters {
			if c.ID == "cluster2" && c.SyncStatus == "synced" {
				return true, nil
			}
		}
		return false, fmt.Errorf("clusters %+v", clusters)
	})

	// Sidecar injection by the real webhook.
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "demo", Labels: map[string]string{"istio-injection": "enabled"}}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	createDeployment(t, ctx, cs, "demo", "web", "nginx:1.27")
	var web *corev1.Pod
	poll(t, ctx, "injected pod Running", 2*time.Minute, func(ctx context.Context) (bool, error) {
		web, err = readyPod(ctx, cs, "demo", "app=web")
		return web != nil, err
	})
	if !hasContainer(web, "istio-proxy") || web.Labels["security.istio.io/tlsMode"] != "istio" {
		t.Fatalf("pod %s not injected: containers %v init %v labels %v", web.Name, names(web.Spec.Containers), names(web.Spec.InitContainers), web.Labels)
	}
	// A simulated pod has no process: port-forward and logs say so.
	if err := forwardErr(ctx, restCfg, cs, "demo", web.Name, 80); err == nil || !strings.Contains(err.Error(), "is simulated by the k3s stand-in") {
		t.Fatalf("port-forward to a simulated pod: %v", err)
	}
	// (Stream, as kubectl logs reads them.)
	if rc, err := cs.CoreV1().Pods("demo").GetLogs(web.Name, &corev1.PodLogOptions{Container: "web"}).Stream(ctx); err == nil || !strings.Contains(errorText(err), "simulated by the k3s stand-in") {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("logs of a simulated pod: %s", errorText(err))
	}

	// Validation by the real webhook: an invalid VirtualService is denied
	// (istiod's own webhook selects objects of its revision).
	dyn := dynamic.NewForConfigOrDie(restCfg)
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "bad", "namespace": "demo", "labels": map[string]any{"istio.io/rev": "default"}},
		"spec":     map[string]any{"hosts": []any{"web"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{}}}}}},
	}}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	poll(t, ctx, "invalid VirtualService denied by istiod's validation webhook", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(vsGVR).Namespace("demo").Create(ctx, vs, metav1.CreateOptions{})
		if err == nil {
			_ = dyn.Resource(vsGVR).Namespace("demo").Delete(ctx, "bad", metav1.DeleteOptions{})
			return false, errors.New("accepted")
		}
		if !strings.Contains(err.Error(), `admission webhook "rev.validation.istio.io" denied the request`) {
			return false, err
		}
		return true, nil
	})

	// Deleting the pod kills the process; the ReplicaSet's replacement runs.
	if err := cs.CoreV1().Pods("istio-system").Delete(ctx, pod.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "istiod process gone after pod deletion", time.Minute, func(context.Context) (bool, error) {
		return !processAlive(pid), nil
	})
	var next *corev1.Pod
	poll(t, ctx, "replacement istiod Ready", 3*time.Minute, func(ctx context.Context) (bool, error) {
		next, err = readyPod(ctx, cs, "istio-system", "app=istiod")
		return next != nil && next.Name != pod.Name, err
	})
	nextPID := nativePID(t, dataDir, next.Name)
	checkNativeProcess(t, nextPID, images, false)
	t.Logf("replacement %s Ready %s after its creation; pid %d", next.Name, readySince(next), nextPID)
	if _, err := os.Stat(filepath.Join(logDir, "istio-system_"+pod.Name+"_"+string(pod.UID))); !os.IsNotExist(err) {
		t.Fatalf("logs of the deleted pod still there: %v", err)
	}

	// Pods with their own network namespaces run side by side: two
	// replicas, and two Deployments (as during a canary upgrade).
	checkSideBySide(t, ctx, cs)
	// The east-west gateway's passthrough to istiod (simulated).
	checkEastWestPassthrough(t, ctx, cs, dyn, netnsNodeIP)
	if next, err = readyPod(ctx, cs, "istio-system", "app=istiod"); err != nil {
		t.Fatal(err)
	}
	nextPID = nativePID(t, dataDir, next.Name)

	// Secret changes reach the running process's mounted volume (seen
	// through /proc/<pid>/root, i.e. in the process's mount namespace).
	probe := filepath.Join(fmt.Sprintf("/proc/%d/root", nextPID), "etc/cacerts/standin-probe.txt")
	for i, v := range []string{"v1", "v2"} {
		secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "cacerts", Namespace: "istio-system"}, StringData: map[string]string{"standin-probe.txt": v}}
		if i == 0 {
			_, err = cs.CoreV1().Secrets("istio-system").Create(ctx, secret, metav1.CreateOptions{})
		} else {
			_, err = cs.CoreV1().Secrets("istio-system").Update(ctx, secret, metav1.UpdateOptions{})
		}
		if err != nil {
			t.Fatal(err)
		}
		poll(t, ctx, "Secret cacerts "+v+" in istiod's /etc/cacerts", time.Minute, func(context.Context) (bool, error) {
			b, err := os.ReadFile(probe)
			return string(b) == v, err
		})
	}
	if _, err := os.Stat("/etc/cacerts/standin-probe.txt"); !os.IsNotExist(err) {
		t.Fatalf("the volume leaked to the host's /etc/cacerts: %v", err)
	}

	// A restart of the stand-in: the kept pod gets its network namespace
	// again, with the IP it had.
	srv = restartKeepsPodIP(t, ctx, cs, srv, bin, serverArgs, dataDir, images, next)

	// A surge rollout to a hostNetwork pod: the old pod (own namespace)
	// runs until the new one (the node's) is Ready.
	_, lastPID := toHostNetwork(t, ctx, cs, dataDir, images, next)

	// Stopping the stand-in stops its processes.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(time.Minute):
		t.Fatal("stand-in did not stop within a minute")
	}
	if processAlive(lastPID) {
		t.Fatalf("istiod (pid %d) survived the stand-in", lastPID)
	}
	if left := pilotProcesses(t, images, dataDir); len(left) > 0 {
		t.Fatalf("pilot processes left in the test's network namespace: %v", left)
	}
}

// startSecondCluster starts a second stand-in server on the second address
// and returns its admin kubeconfig, pointing at that address.
func startSecondCluster(t *testing.T, ctx context.Context, bin, tmp, images string) []byte {
	t.Helper()
	port, etcdPort := freePortPair(t), freePortPair(t)
	kubeconfig := filepath.Join(tmp, "cluster2.yaml")
	srv := start(t, bin, "cluster2", "server", "--config", filepath.Join(tmp, "none.yaml"),
		"--node-ip", netnsAgentIP, "--node-name", "cluster2-node", "--data-dir", filepath.Join(tmp, "cluster2"),
		"--write-kubeconfig", kubeconfig, "--https-listen-port", strconv.Itoa(port), "--standin-etcd-port", strconv.Itoa(etcdPort),
		"--standin-native-images", images, "--standin-pod-log-dir", filepath.Join(tmp, "pods2"))
	waitKubeconfig(t, ctx, srv, kubeconfig)
	kc, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	kc.Clusters["default"].Server = "https://" + netnsAgentIP + ":" + strconv.Itoa(port)
	b, err := clientcmd.Write(*kc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	cs2 := kubernetes.NewForConfigOrDie(cfg)
	poll(t, ctx, "second cluster's API", time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs2.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		return err == nil, err
	})
	return b
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.200s", url, resp.Status, b)
	}
	return json.Unmarshal(b, v)
}

// readyPod returns the pod matching selector that is Running and Ready.
func readyPod(ctx context.Context, cs kubernetes.Interface, ns, selector string) (*corev1.Pod, error) {
	pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	var states []string
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.DeletionTimestamp != nil {
			continue
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning {
				return p, nil
			}
		}
		states = append(states, fmt.Sprintf("%s: %s %+v", p.Name, p.Status.Phase, p.Status.ContainerStatuses))
	}
	return nil, fmt.Errorf("no Ready pod: %v", states)
}

// scaleIstiod sets the istiod Deployment's replicas (retried on conflicts
// with the controllers' status writes).
func scaleIstiod(t *testing.T, ctx context.Context, cs kubernetes.Interface, n int32) {
	t.Helper()
	deployments := cs.AppsV1().Deployments("istio-system")
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		sc, err := deployments.GetScale(ctx, "istiod", metav1.GetOptions{})
		if err != nil {
			return err
		}
		sc.Spec.Replicas = n
		_, err = deployments.UpdateScale(ctx, "istiod", sc, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("scale istiod to %d: %v", n, err)
	}
}

// readySince is the time from the pod's creation to its Ready condition.
func readySince(p *corev1.Pod) time.Duration {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.LastTransitionTime.Sub(p.CreationTimestamp.Time)
		}
	}
	return -1
}

// nativePID reads the stand-in's pid file for the pod's process.
func nativePID(t *testing.T, dataDir, podName string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "agent", "native-pods", "pids"))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && strings.Contains(f[2], "/"+podName+"/") {
			pid, err := strconv.Atoi(f[0])
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
	}
	t.Fatalf("no process of pod %s in the pid file:\n%s", podName, b)
	return 0
}

// checkNativeProcess checks that pid runs the native pilot executable, in
// a mount namespace of its own and in a network namespace of its own (in
// the test's, the node's, for a hostNetwork pod).
func checkNativeProcess(t *testing.T, pid int, images string, hostNetwork bool) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || exe != filepath.Join(images, "pilot") {
		t.Fatalf("pid %d runs %q (%v), want %s", pid, exe, err, filepath.Join(images, "pilot"))
	}
	for _, ns := range []struct {
		name string
		same bool
	}{{"net", hostNetwork}, {"mnt", false}} {
		mine, err1 := os.Readlink("/proc/self/ns/" + ns.name)
		its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name))
		if err1 != nil || err2 != nil || (mine == its) != ns.same {
			t.Fatalf("pid %d %s namespace %s, the test's %s (%v %v)", pid, ns.name, its, mine, err1, err2)
		}
	}
}

func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// A zombie is gone as far as the pod is concerned.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || !bytes.HasPrefix(bytes.TrimSpace(b[i+1:]), []byte("Z"))
}

// pilotProcesses lists the processes running the native pilot in this
// network namespace or with mounts from dataDir, i.e. this test's (other
// tests on the machine may run their own).
func pilotProcesses(t *testing.T, images, dataDir string) []int {
	t.Helper()
	mine, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		mounts, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if exe == filepath.Join(images, "pilot") && (ns == mine || bytes.Contains(mounts, []byte(dataDir))) && processAlive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// forward port-forwards a free local port to the pod's port through the
// apiserver and returns the local address; it stops at the test's end.
func forward(t *testing.T, ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, pod string, port int, websockets bool) string {
	t.Helper()
	dialer, err := portForwardDialer(cfg, cs, ns, pod, websockets)
	if err != nil {
		t.Fatal(err)
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	var errOut bytes.Buffer
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	t.Cleanup(func() { close(stop) })
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("port-forward %s/%s:%d: %v %s", ns, pod, port, err, errOut.String())
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	ports, err := fw.GetPorts()
	if err != nil || len(ports) != 1 {
		t.Fatalf("forwarded ports %v %v", ports, err)
	}
	return "127.0.0.1:" + strconv.Itoa(int(ports[0].Local))
}

// forwardErr port-forwards with the websocket dialer and reports the first
// error of using the forwarded port.
func forwardErr(ctx context.Context, cfg *rest.Config, cs kubernetes.Interface, ns, pod string, port int) error {
	dialer, err := portForwardDialer(cfg, cs, ns, pod, true)
	if err != nil {
		return err
	}
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddressesForStreaming(dialer, []string{"127.0.0.1"}, []string{"0:" + strconv.Itoa(port)}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
	ports, err := fw.GetPorts()
	if err != nil {
		return err
	}
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(int(ports[0].Local)))
	if err == nil {
		resp.Body.Close()
	}
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		return errors.New("port-forward to a simulated pod neither failed nor ended")
	}
}

// portForwardDialer is kubectl's: websockets (SPDY tunnelled) first,
// falling back to SPDY; or SPDY only.
func portForwardDialer(cfg *rest.Config, cs kubernetes.Interface, ns, pod string, websockets bool) (streamhttp.Dialer, error) {
	u := cs.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("portforward").URL()
	transport, upgrader, err := spdy.RoundTripperFor(cfg)
	if err != nil {
		return nil, err
	}
	dialer := spdy.NewDialerForStreaming(upgrader, &http.Client{Transport: transport}, http.MethodPost, u)
	if !websockets {
		return dialer, nil
	}
	tunnel, err := portforward.NewSPDYOverWebsocketDialerForStreaming(u, cfg)
	if err != nil {
		return nil, err
	}
	return portforward.NewFallbackDialerForStreaming(tunnel, dialer, func(err error) bool {
		return streamhttp.IsUpgradeFailure(err) || streamhttp.IsHTTPSProxyError(err)
	}), nil
}

// grpcAnswers checks that a gRPC server answers at addr (any status but
// Unavailable means one did).
func grpcAnswers(ctx context.Context, addr string) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if c := status.Code(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
		return err
	}
	return nil
}

// errorText is an error with the response body client-go keeps in the
// status causes when the body was not a Status.
func errorText(err error) string {
	if err == nil {
		return "<nil>"
	}
	text := err.Error()
	var se *apierrors.StatusError
	if errors.As(err, &se) && se.ErrStatus.Details != nil {
		for _, c := range se.ErrStatus.Details.Causes {
			text += ": " + c.Message
		}
	}
	return text
}

func samePEMCert(a, b []byte) bool {
	ba, _ := pem.Decode(a)
	bb, _ := pem.Decode(b)
	return ba != nil && bb != nil && bytes.Equal(ba.Bytes, bb.Bytes)
}

func createDeployment(t *testing.T, ctx context.Context, cs kubernetes.Interface, ns, name, image string) {
	t.Helper()
	one := int32(1)
	lbls := map[string]string{"app": name}
	_, err := cs.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: name, Image: image, Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

func hasContainer(p *corev1.Pod, name string) bool {
	return slices.Contains(names(p.Spec.Containers), name) || slices.Contains(names(p.Spec.InitContainers), name)
}

func names(cs []corev1.Container) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

// applyFile server-side applies every object of a multi-document YAML file.
func applyFile(t *testing.T, ctx context.Context, cfg *rest.Config, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dc := kubernetes.NewForConfigOrDie(cfg).Discovery()
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	dyn := dynamic.NewForConfigOrDie(cfg)
	dec := utilyaml.NewYAMLOrJSONDecoder(f, 64<<10)
	n := 0
	for {
		var obj unstructured.Unstructured
		if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(obj.Object) == 0 {
			continue
		}
		gvk := obj.GroupVersionKind()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			t.Fatalf("%s: map %s: %v", path, gvk, err)
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if ns := obj.GetNamespace(); ns != "" {
			ri = dyn.Resource(m.Resource).Namespace(ns)
		}
		if _, err := ri.Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: "standin-e2e", Force: true}); err != nil {
			t.Fatalf("apply %s %s: %v", gvk.Kind, obj.GetName(), err)
		}
		n++
	}
	t.Logf("applied %d objects from %s", n, path)
}

// removeCreatedMountPoints removes the empty mount points the native pods
// created on this machine (kept when they existed before or hold files).
func removeCreatedMountPoints(t *testing.T) {
	existed := map[string]bool{}
	for _, p := range istiodMountPaths() {
		if _, err := os.Stat(p); err == nil {
			existed[p] = true
		}
	}
	t.Cleanup(func() {
		for _, p := range istiodMountPaths() {
			if !existed[p] {
				if err := os.Remove(p); err != nil && !os.IsNotExist(err) && !errors.Is(err, syscall.ENOTEMPTY) {
					t.Logf("remove mount point %s: %v", p, err)
				}
			}
		}
	})
}
