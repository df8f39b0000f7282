package verify

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// The walkthrough's sample: Service helloworld in every cluster,
// Deployment helloworld-v<N> in the Nth cluster of the mesh, and a sleep
// pod per cluster from which to curl it.
const (
	SampleNamespace   = "sample"
	SampleService     = "helloworld"
	SampleSleep       = "sleep"
	SampleURL         = "helloworld.sample:5000/hello"
	injectionLabel    = "istio-injection"
	helloworldImage   = "docker.io/istio/examples-helloworld-%s:1.0"
	sleepImage        = "curlimages/curl:8.16.0"
	helloVersionStart = "Hello version: "
)

// SampleVersion is the helloworld version the ith cluster (from 0) of a
// mesh runs: v1, v2, ...
func SampleVersion(i int) string { return fmt.Sprintf("v%d", i+1) }

// Requester sends one request from a pod of a cluster's sample namespace
// and returns the response body.
type Requester interface {
	Curl(ctx context.Context, cluster, pod, url string) (string, error)
}

// ExecRequester runs `curl -sS URL` in the sleep container of a pod
// through the API's pods/exec (SPDY), as `kubectl exec` does.
type ExecRequester struct {
	Clients map[string]*kube.Client
}

// Curl runs curl in the pod and returns its output.
func (e ExecRequester) Curl(ctx context.Context, cluster, pod, url string) (string, error) {
	c := e.Clients[cluster]
	if c == nil {
		return "", fmt.Errorf("cluster %s: no API client", cluster)
	}
	req := c.Typed.CoreV1().RESTClient().Post().Resource("pods").Namespace(SampleNamespace).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{
			Container: SampleSleep,
			Command:   []string{"curl", "-sS", "--max-time", "10", url},
			Stdout:    true,
			Stderr:    true,
		}, scheme.ParameterCodec)
	ex, err := remotecommand.NewSPDYExecutor(c.REST, "POST", req.URL())
	if err != nil {
		return "", fmt.Errorf("cluster %s: exec in pod %s/%s: %w", cluster, SampleNamespace, pod, err)
	}
	var stdout, stderr bytes.Buffer
	if err := ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &stdout, Stderr: &stderr}); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.String(), fmt.Errorf("%s", msg)
	}
	return stdout.String(), nil
}

// ParseHello returns the version of a helloworld response ("Hello
// version: v1, instance: helloworld-v1-...").
func ParseHello(body string) (string, bool) {
	_, rest, ok := strings.Cut(body, helloVersionStart)
	if !ok {
		return "", false
	}
	version, _, ok := strings.Cut(rest, ",")
	version = strings.TrimSpace(version)
	return version, ok && version != ""
}

// TrafficResult is what one cluster's requests got.
type TrafficResult struct {
	From     string
	Pod      string
	Requests int
	// Counts are the responses per version.
	Counts map[string]int
	// Failed counts requests without a helloworld response; Errors holds
	// up to three distinct reasons.
	Failed int
	Errors []string
}

// SendRequests sends n requests to url from each cluster's pod (pods maps
// cluster to pod name) and counts the responses per version.
func SendRequests(ctx context.Context, req Requester, clusters []string, pods map[string]string, url string, n int) []TrafficResult {
	var out []TrafficResult
	for _, from := range clusters {
		r := TrafficResult{From: from, Pod: pods[from], Counts: map[string]int{}}
		for range n {
			if ctx.Err() != nil {
				break
			}
			r.Requests++
			body, err := req.Curl(ctx, from, r.Pod, url)
			version, ok := ParseHello(body)
			switch {
			case err == nil && ok:
				r.Counts[version]++
				continue
			case err == nil:
				err = fmt.Errorf("unexpected response %q", firstLine(body, 120))
			}
			r.Failed++
			if msg := err.Error(); !slices.Contains(r.Errors, msg) && len(r.Errors) < 3 {
				r.Errors = append(r.Errors, msg)
			}
		}
		out = append(out, r)
	}
	return out
}

func firstLine(s string, max int) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// countsString is "v1: 11, v2: 9" in version order.
func countsString(counts map[string]int) string {
	var keys []string
	for k := range counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, counts[k])
	}
	if len(parts) == 0 {
		return "no answers"
	}
	return strings.Join(parts, ", ")
}

// EvaluateTraffic turns the results into one finding per source cluster:
// failed when some version of the mesh never answered, with the
// walkthrough's hints for each missing version.
func (s *Verifier) EvaluateTraffic(results []TrafficResult) []Finding {
	var fs []Finding
	for _, r := range results {
		f := Finding{Check: CheckTraffic, Cluster: r.From, Object: "pod " + SampleNamespace + "/" + r.Pod + " -> " + SampleURL}
		summary := fmt.Sprintf("%d requests: %s", r.Requests, countsString(r.Counts))
		if r.Failed > 0 {
			summary += fmt.Sprintf(", %d failed (%s)", r.Failed, strings.Join(r.Errors, "; "))
		}
		var missing []string
		var hints []string
		for i, to := range s.mesh.Clusters {
			v := SampleVersion(i)
			if r.Counts[v] > 0 {
				continue
			}
			missing = append(missing, fmt.Sprintf("%s (%s)", v, to))
			hints = append(hints, s.trafficHints(r, to, v)...)
		}
		if len(missing) == 0 {
			f.OK, f.Detail = true, summary
		} else {
			f.Detail = fmt.Sprintf("%s; never answered: %s. Hints: %s", summary, strings.Join(missing, ", "), strings.Join(dedupe(hints), " "))
		}
		fs = append(fs, f)
	}
	return fs
}

// trafficHints are the walkthrough's troubleshooting hints for version v
// of cluster to not answering requests from r.From.
func (s *Verifier) trafficHints(r TrafficResult, to, v string) []string {
	from := r.From
	if len(r.Counts) == 0 {
		return []string{fmt.Sprintf("No request from %s got a helloworld answer: check that the sleep pod and helloworld pods in %s "+
			"are Running with their istio-proxy sidecar (namespace %s needs label %s=enabled, and %s's istiod must be up), "+
			"and the curl errors above.", from, from, SampleNamespace, injectionLabel, s.topo.PrimaryOf[from])}
	}
	if to == from {
		return []string{fmt.Sprintf("%s's own helloworld-%s does not answer: kubectl -n %s get pods in %s (Running, 2/2 containers with the sidecar?).",
			from, v, SampleNamespace, from)}
	}
	istiod := s.topo.PrimaryOf[from]
	hints := []string{fmt.Sprintf("%s's istiod (in %s) must read %s's endpoints: Secret %s/%s in %s (see the remotesecret rows of mcplan verify; "+
		"istioctl remote-clusters in %s shows it synced).", from, istiod, to, istiorender.Namespace, istiorender.RemoteSecretName(to), istiod, istiod)}
	nf, nt := s.topo.Networks[from], s.topo.Networks[to]
	if nf != nt {
		hints = append(hints,
			fmt.Sprintf("%s and %s are on different networks (%s, %s): istio-system must carry %s=%s in %s and %s=%s in %s (network rows).",
				from, to, nf, nt, istiorender.NetworkLabel, nf, from, istiorender.NetworkLabel, nt, to),
			fmt.Sprintf("%s's east-west gateway needs an address that %s reaches, and Gateway %s (AUTO_PASSTHROUGH on 15443) (eastwest rows).",
				to, from, istiorender.CrossNetworkGateway),
			fmt.Sprintf("istioctl proxy-config endpoint %s.%s --cluster 'outbound|5000||helloworld.sample.svc.cluster.local' in %s: "+
				"%s's endpoints must be its east-west gateway address:15443; pod IPs there mean the network labels are wrong or were set after istiod started.",
				r.Pod, SampleNamespace, from, to))
	} else {
		hints = append(hints, fmt.Sprintf("%s and %s share network %s: %s's pods must reach %s's pod IPs directly; if they cannot, "+
			"put the clusters on different networks in the plan so traffic goes through the east-west gateways.", from, to, nf, from, to))
	}
	return hints
}

func dedupe(in []string) []string {
	var out []string
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// SampleRefs are the objects of the sample in the ith cluster of a mesh,
// as DeploySample applies them.
func SampleRefs(i int) []kube.Ref {
	return kube.Refs(sampleObjects(i))
}

// sampleObjects are the sample's objects for the ith cluster of the mesh.
func sampleObjects(i int) []*unstructured.Unstructured {
	v := SampleVersion(i)
	image := fmt.Sprintf(helloworldImage, v)
	if i > 1 { // the sample publishes images v1 and v2; the app reports SERVICE_VERSION
		image = fmt.Sprintf(helloworldImage, "v1")
	}
	one := int32(1)
	objs := []any{
		&corev1.Namespace{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleNamespace, Labels: map[string]string{injectionLabel: "enabled"}},
		},
		&corev1.Service{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleService, Namespace: SampleNamespace, Labels: map[string]string{"app": SampleService, "service": SampleService}},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": SampleService},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 5000, TargetPort: intstr.FromInt32(5000)}},
			},
		},
		&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleService + "-" + v, Namespace: SampleNamespace, Labels: map[string]string{"app": SampleService, "version": v}},
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": SampleService, "version": v}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": SampleService, "version": v}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{
						Name:      SampleService,
						Image:     image,
						Env:       []corev1.EnvVar{{Name: "SERVICE_VERSION", Value: v}},
						Ports:     []corev1.ContainerPort{{ContainerPort: 5000}},
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}},
					}}},
				},
			},
		},
		&corev1.ServiceAccount{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			// A label, so that server-side apply records mcplan as its
			// manager (an entry that owns no field is dropped) and its
			// removal knows it is mcplan's.
			ObjectMeta: metav1.ObjectMeta{Name: SampleSleep, Namespace: SampleNamespace, Labels: map[string]string{"app": SampleSleep}},
		},
		&appsv1.Deployment{
			TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{Name: SampleSleep, Namespace: SampleNamespace, Labels: map[string]string{"app": SampleSleep}},
			Spec: appsv1.DeploymentSpec{
				Replicas: &one,
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": SampleSleep}},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": SampleSleep}},
					Spec: corev1.PodSpec{
						ServiceAccountName: SampleSleep,
						Containers: []corev1.Container{{
							Name:    SampleSleep,
							Image:   sleepImage,
							Command: []string{"/bin/sleep", "infinity"},
						}},
					},
				},
			},
		},
	}
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
		unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
		unstructured.RemoveNestedField(m, "spec", "template", "metadata", "creationTimestamp")
		delete(m, "status")
		out = append(out, &unstructured.Unstructured{Object: m})
	}
	return out
}

// readyPod returns a Running pod with label app=app whose containers are
// all ready.
func readyPod(ctx context.Context, c *kube.Client, app string) (string, error) {
	pods, err := c.Typed.CoreV1().Pods(SampleNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning {
			continue
		}
		ready := len(p.Status.ContainerStatuses) > 0
		for _, cs := range p.Status.ContainerStatuses {
			ready = ready && cs.Ready
		}
		if ready {
			return p.Name, nil
		}
	}
	return "", fmt.Errorf("no ready pod with app=%s in %s", app, SampleNamespace)
}

// Traffic is part (b): it deploys the sample in every cluster (server-side
// apply, field manager mcplan), waits for it, sends the mesh's
// verify.requests requests from each cluster's sleep pod (req, or pods/exec
// when nil) and returns a finding per cluster. It needs clusters that run
// pods: the test hosts' stand-ins do not.
func (s *Verifier) Traffic(ctx context.Context, stateDir string, req Requester, logf func(string, ...any)) []Finding {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	n := s.mesh.Verify.Requests
	if n <= 0 {
		n = plans.DefaultVerifyRequests
	}
	sample := s.DeploySample(ctx, stateDir, CheckTraffic, logf)
	fs := sample.failures
	if len(sample.ready) == 0 {
		return fs
	}
	if req == nil {
		req = ExecRequester{Clients: sample.clients}
	}
	logf("mesh %s: %d requests from each of %s", s.mesh.Name, n, strings.Join(sample.ready, ", "))
	return append(fs, s.EvaluateTraffic(SendRequests(ctx, req, sample.ready, sample.sleepPods, SampleURL, n))...)
}

// Sample is the sample as DeploySample left it.
type Sample struct {
	// clients are the clusters whose API answered.
	clients map[string]*kube.Client
	// sleepPods is the ready sleep pod of each ready cluster.
	sleepPods map[string]string
	// ready are the clusters whose sample is ready, in the mesh's order.
	ready []string
	// failures say, per cluster, why its sample is not ready (check is
	// the check's name).
	failures []Finding
}

// Failures are the findings of the clusters whose sample is not ready.
func (d *Sample) Failures() []Finding { return d.failures }

// Reached are the clusters whose API answered, sorted.
func (d *Sample) Reached() []string { return slices.Sorted(maps.Keys(d.clients)) }

// sampleTimeout is how long the sample may take to become ready: the
// mesh's verify.timeout.
func (s *Verifier) sampleTimeout() time.Duration {
	timeout, err := time.ParseDuration(s.mesh.Verify.Timeout)
	if err != nil || timeout <= 0 {
		timeout, _ = time.ParseDuration(plans.DefaultVerifyTimeout)
	}
	return timeout
}

// DeploySample applies the sample in every cluster of the mesh, then
// waits for each cluster's helloworld and sleep Deployments (at most
// verify.timeout for each) and finds its ready sleep pod. Its failures
// are findings of check (CheckXDS or CheckTraffic).
func (s *Verifier) DeploySample(ctx context.Context, stateDir, check string, logf func(string, ...any)) *Sample {
	timeout := s.sampleTimeout()
	d := &Sample{clients: map[string]*kube.Client{}, sleepPods: map[string]string{}}
	fail := func(cluster, detail string) {
		d.failures = append(d.failures, Finding{Check: check, Cluster: cluster, Object: "namespace " + SampleNamespace, Detail: detail})
	}
	// The clusters get the sample at once (their log lines one at a
	// time); their failures are told in the mesh's order.
	var logMu sync.Mutex
	applyLogf := func(format string, args ...any) {
		logMu.Lock()
		defer logMu.Unlock()
		logf(format, args...)
	}
	clients := make([]*kube.Client, len(s.mesh.Clusters))
	problems := make([]string, len(s.mesh.Clusters))
	var wg sync.WaitGroup
	for i, name := range s.mesh.Clusters {
		wg.Go(func() {
			c, err := reach(ctx, stateDir, name, applyLogf)
			if err != nil {
				problems[i] = err.Error()
				return
			}
			clients[i] = c
			if _, err := c.Apply(ctx, sampleObjects(i), kube.ApplyOptions{Logf: applyLogf}); err != nil {
				problems[i] = fmt.Sprintf("deploy the sample: %v", err)
			}
		})
	}
	wg.Wait()
	applied := map[string]bool{}
	for i, name := range s.mesh.Clusters {
		if clients[i] != nil {
			d.clients[name] = clients[i]
		}
		if problems[i] != "" {
			fail(name, problems[i])
			continue
		}
		applied[name] = true
	}
	for i, name := range s.mesh.Clusters {
		if !applied[name] {
			continue
		}
		c := d.clients[name]
		err := s.waitFor("the sample's objects Current in "+name, func() error {
			return c.WaitCurrent(ctx, SampleRefs(i), timeout, logf)
		})
		if err == nil {
			d.sleepPods[name], err = readyPod(ctx, c, SampleSleep)
		}
		if err != nil {
			fail(name, fmt.Sprintf("sample not ready: %v. Fix: check image pulls and sidecar injection in %s", err, name))
			continue
		}
		d.ready = append(d.ready, name)
	}
	return d
}
