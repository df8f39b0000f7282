package e2e

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
)

// checkPodNetwork asserts that a native pod has a network namespace of its
// own: its IP is in the node's podCIDR and not the node IP, its process
// runs in another network namespace than the test, and the pod IP answers
// on istiod's HTTP port from the node.
func checkPodNetwork(t *testing.T, ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, nodeName, nodeIP string) {
	t.Helper()
	node, err := cs.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, cidr, err := net.ParseCIDR(node.Spec.PodCIDR)
	if err != nil {
		t.Fatalf("node podCIDR %q: %v", node.Spec.PodCIDR, err)
	}
	ip := net.ParseIP(pod.Status.PodIP)
	if ip == nil || !cidr.Contains(ip) || pod.Status.PodIP == nodeIP || pod.Status.HostIP != nodeIP {
		t.Fatalf("pod %s: pod IP %q host IP %q, want a pod IP in the node's podCIDR %s other than the node IP %s (host IP)", pod.Name, pod.Status.PodIP, pod.Status.HostIP, cidr, nodeIP)
	}
	t.Logf("pod %s has IP %s in podCIDR %s (node IP %s)", pod.Name, ip, cidr, nodeIP)
}

// checkSideBySide runs istiod's pods next to each other on the one node,
// each in its network namespace: two replicas of the Deployment, then a
// second Deployment (istiod-r2, as a canary revision's) with the same pod
// template. All are Ready at once with different pod IPs.
func checkSideBySide(t *testing.T, ctx context.Context, cs kubernetes.Interface) {
	t.Helper()
	scaleIstiod(t, ctx, cs, 2)
	poll(t, ctx, "two istiod replicas Ready at once", 2*time.Minute, func(ctx context.Context) (bool, error) {
		return readyWithDistinctIPs(ctx, cs, "app=istiod", 2)
	})
	scaleIstiod(t, ctx, cs, 1)
	d, err := cs.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r2 := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "istiod-r2", Namespace: "istio-system"}, Spec: *d.Spec.DeepCopy()}
	lbls := map[string]string{"app": "istiod-r2", "standin.e2e/side-by-side": "true"}
	r2.Spec.Selector = &metav1.LabelSelector{MatchLabels: lbls}
	r2.Spec.Template.Labels = lbls
	one := int32(1)
	r2.Spec.Replicas = &one
	if _, err := cs.AppsV1().Deployments("istio-system").Create(ctx, r2, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "istiod and istiod-r2 (two Deployments) Ready at once", 2*time.Minute, func(ctx context.Context) (bool, error) {
		a, err := readyWithDistinctIPs(ctx, cs, "app=istiod", 1)
		if !a || err != nil {
			return false, err
		}
		return readyWithDistinctIPs(ctx, cs, "app in (istiod,istiod-r2)", 2)
	})
	if err := cs.AppsV1().Deployments("istio-system").Delete(ctx, "istiod-r2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "istiod-r2 gone, one istiod left", 2*time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app in (istiod,istiod-r2)"})
		return err == nil && len(list.Items) == 1, err
	})
}

// readyWithDistinctIPs reports whether exactly n pods match selector, all
// Ready, with n different pod IPs.
func readyWithDistinctIPs(ctx context.Context, cs kubernetes.Interface, selector string, n int) (bool, error) {
	list, err := cs.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return false, err
	}
	ips := map[string]bool{}
	var states []string
	for i := range list.Items {
		p := &list.Items[i]
		if p.DeletionTimestamp == nil && podReady(p) {
			ips[p.Status.PodIP] = true
		}
		states = append(states, fmt.Sprintf("%s %s ready=%v ip=%s", p.Name, p.Status.Phase, podReady(p), p.Status.PodIP))
	}
	if len(list.Items) != n || len(ips) != n {
		return false, fmt.Errorf("want %d Ready pods with distinct IPs: %v", n, states)
	}
	return true, nil
}

// checkEastWestPassthrough creates the east-west gateway as mcplan does
// for a primary-remote primary (a LoadBalancer Service selecting
// simulated gateway pods, and a VirtualService routing the gateway's
// istiod ports by server name) and checks the simulated passthrough:
// before the route, nothing answers; with it, TLS on <node IP>:15012 and
// :15017 asking for istiod.istio-system.svc is istiod's (its serving
// certificate names it), a server name no route names is closed, and a
// port other than those is not forwarded.
func checkEastWestPassthrough(t *testing.T, ctx context.Context, cs kubernetes.Interface, dyn dynamic.Interface, nodeIP string) {
	t.Helper()
	lbls := map[string]string{"istio": "eastwestgateway", "app": "istio-eastwestgateway"}
	_, err := cs.AppsV1().Deployments("istio-system").Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: lbls},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: lbls},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.31.0"}}},
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var ports []corev1.ServicePort
	for _, p := range []int32{15021, 15443, 15012, 15017} {
		ports = append(ports, corev1.ServicePort{Name: "p" + strconv.Itoa(int(p)), Port: p, TargetPort: intstr.FromInt32(p)})
	}
	if _, err := cs.CoreV1().Services("istio-system").Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-eastwestgateway"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Selector: lbls, Ports: ports},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	istiodTLS := func(ctx context.Context, addr, serverName string) error {
		d := &tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, ServerName: serverName}}
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		certs := c.(*tls.Conn).ConnectionState().PeerCertificates
		if len(certs) == 0 || !slices.Contains(certs[0].DNSNames, "istiod.istio-system.svc") {
			return fmt.Errorf("certificate %v", certs)
		}
		return nil
	}
	// The listener is up once servicelb gave the Service this node's IP;
	// without a route the gateway resets what it accepts.
	poll(t, ctx, "east-west passthrough listens, routes nothing yet", time.Minute, func(ctx context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(nodeIP, "15012"), 2*time.Second)
		if err != nil {
			return false, err
		}
		c.Close()
		return true, nil
	})
	if err := istiodTLS(ctx, net.JoinHostPort(nodeIP, "15012"), "istiod.istio-system.svc"); err == nil {
		t.Fatal("the passthrough forwarded a connection before any VirtualService routes it")
	}
	route := func(port, target int64) map[string]any {
		return map[string]any{
			"match": []any{map[string]any{"port": port, "sniHosts": []any{"istiod.istio-system.svc"}}},
			"route": []any{map[string]any{"destination": map[string]any{"host": "istiod.istio-system.svc.cluster.local", "port": map[string]any{"number": target}}}},
		}
	}
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "istiod-vs", "namespace": "istio-system"},
		"spec":     map[string]any{"hosts": []any{"*"}, "gateways": []any{"istiod-gateway"}, "tls": []any{route(15012, 15012), route(15017, 443)}},
	}}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	if _, err := dyn.Resource(vsGVR).Namespace("istio-system").Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, port := range []string{"15012", "15017"} {
		addr := net.JoinHostPort(nodeIP, port)
		poll(t, ctx, "east-west passthrough "+addr+" answers with istiod's certificate", time.Minute, func(ctx context.Context) (bool, error) {
			return istiodTLS(ctx, addr, "istiod.istio-system.svc") == nil, nil
		})
		t.Logf("east-west passthrough (simulated): TLS on %s for istiod.istio-system.svc is istiod's", addr)
		if err := istiodTLS(ctx, addr, "istiod-r9.istio-system.svc"); err == nil {
			t.Errorf("%s: a server name no route names was forwarded", addr)
		}
	}
	if err := dyn.Resource(vsGVR).Namespace("istio-system").Delete(ctx, "istiod-vs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if c, err := net.DialTimeout("tcp", net.JoinHostPort(nodeIP, "15443"), 2*time.Second); err == nil {
		c.Close()
		t.Fatal("port 15443 of the east-west gateway is forwarded; only 15012 and 15017 should be")
	}
	// Without the Service the node's ports are free again (a hostNetwork
	// istiod comes next).
	if err := cs.CoreV1().Services("istio-system").Delete(ctx, "istio-eastwestgateway", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cs.AppsV1().Deployments("istio-system").Delete(ctx, "istio-eastwestgateway", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "east-west passthrough closed with its Service", time.Minute, func(ctx context.Context) (bool, error) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(nodeIP, "15012"), 2*time.Second)
		if err != nil {
			return true, nil
		}
		c.Close()
		return false, fmt.Errorf("%s:15012 still accepts", nodeIP)
	})
}

// toHostNetwork switches istiod's Deployment to hostNetwork and waits for
// the rollout: the old pod (own network namespace) keeps running until the
// new one (the node's) is Ready, then goes. It returns the new pod and pid.
func toHostNetwork(t *testing.T, ctx context.Context, cs kubernetes.Interface, dataDir, images string, old *corev1.Pod) (*corev1.Pod, int) {
	t.Helper()
	patch := `{"spec":{"template":{"spec":{"hostNetwork":true,"dnsPolicy":"ClusterFirstWithHostNet"}}}}`
	if _, err := cs.AppsV1().Deployments("istio-system").Patch(ctx, "istiod", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	var now *corev1.Pod
	poll(t, ctx, "istiod rolled out as a hostNetwork pod", 2*time.Minute, func(ctx context.Context) (bool, error) {
		list, err := cs.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		if err != nil {
			return false, err
		}
		if len(list.Items) != 1 || list.Items[0].UID == old.UID || !podReady(&list.Items[0]) || !list.Items[0].Spec.HostNetwork {
			return false, fmt.Errorf("istiod pods %v", podNames(list.Items))
		}
		now = &list.Items[0]
		return true, nil
	})
	if now.Status.PodIP != now.Status.HostIP {
		t.Fatalf("hostNetwork pod %s: pod IP %s, host IP %s", now.Name, now.Status.PodIP, now.Status.HostIP)
	}
	pid := nativePID(t, dataDir, now.Name)
	checkNativeProcess(t, pid, images, true)
	return now, pid
}
func podReady(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && conditionTrue(p, corev1.PodReady)
}

func conditionTrue(p *corev1.Pod, t corev1.PodConditionType) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podNames(pods []corev1.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	return out
}

// restartKeepsPodIP stops the stand-in (SIGTERM: its processes stop, the
// pods' network namespaces are removed) and starts it again on the same
// data: the kept istiod pod runs again (restartCount + 1) with the IP it
// had, in a fresh network namespace. It returns the new stand-in.
func restartKeepsPodIP(t *testing.T, ctx context.Context, cs kubernetes.Interface, srv *proc, bin string, args []string, dataDir, images string, pod *corev1.Pod) *proc {
	t.Helper()
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.done:
	case <-time.After(time.Minute):
		t.Fatal("stand-in did not stop within a minute")
	}
	if left, _ := filepath.Glob(filepath.Join(dataDir, "agent", "native-pods", "*", "netns")); len(left) > 0 {
		t.Fatalf("network namespaces left after the stand-in stopped: %v", left)
	}
	next := start(t, bin, "server", args...)
	var again *corev1.Pod
	poll(t, ctx, "istiod Ready again after a restart of the stand-in", 3*time.Minute, func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods("istio-system").Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !podReady(p) || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount < 1 {
			return false, fmt.Errorf("pod %s ready=%v %+v", p.Name, podReady(p), p.Status.ContainerStatuses)
		}
		again = p
		return true, nil
	})
	if again.Status.PodIP != pod.Status.PodIP {
		t.Fatalf("pod %s had IP %s before the restart, %s after", pod.Name, pod.Status.PodIP, again.Status.PodIP)
	}
	checkNativeProcess(t, nativePID(t, dataDir, pod.Name), images, false)
	t.Logf("pod %s kept IP %s over a restart of the stand-in", pod.Name, again.Status.PodIP)
	return next
}
