package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/steps/verify"
)

// xdsDoc is what `mcplan verify --xds -o json` prints, as far as these
// tests read it.
type xdsDoc struct {
	Meshes []struct {
		Mesh   string `json:"mesh"`
		Checks []struct {
			Check   string `json:"check"`
			Cluster string `json:"cluster"`
			OK      bool   `json:"ok"`
			Detail  string `json:"detail"`
		} `json:"checks"`
		XDS []struct {
			verify.XDSReport
			OK bool `json:"ok"`
		} `json:"xds"`
	} `json:"meshes"`
	Checks int `json:"checks"`
	Failed int `json:"failed"`
}

// verifyXDS runs `mcplan verify --xds -o json` and returns its document
// and exit code; with -v, the text tables are logged too.
func (w *world) verifyXDS(t *testing.T, ctx context.Context) (xdsDoc, int) {
	t.Helper()
	start := time.Now()
	cmd := exec.CommandContext(ctx, w.mcplan, "verify", "--xds", "-o", "json", filepath.Join(w.dir, "plan.yaml"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("verify --xds: %v\n%s", err, stderr.String())
	}
	t.Logf("verify --xds: exit %d in %s", code, time.Since(start).Round(time.Millisecond))
	var doc xdsDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("verify --xds -o json: %v\n%s\n%s", err, out, stderr.String())
	}
	return doc, code
}

// logXDSTables logs `mcplan verify --xds` as people read it.
func (w *world) logXDSTables(t *testing.T, ctx context.Context) {
	t.Helper()
	start := time.Now()
	out, err := exec.CommandContext(ctx, w.mcplan, "verify", "--xds", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
	t.Logf("mcplan verify --xds (%s, err %v):\n%s", time.Since(start).Round(time.Millisecond), err, out)
}

// meshView is what the clusters themselves say, read with the test's own
// clients: per network, the ready helloworld pod IPs and the east-west
// gateway addresses of its clusters.
type meshView struct {
	podIPs   map[string][]string
	gateways map[string][]string
}

func (w *world) readMeshView(t *testing.T, ctx context.Context, networkOf map[string]string) meshView {
	t.Helper()
	v := meshView{podIPs: map[string][]string{}, gateways: map[string][]string{}}
	for c, n := range networkOf {
		client := w.clientFor("context-" + c)
		pods, err := client.CoreV1().Pods("sample").List(ctx, metav1.ListOptions{LabelSelector: "app=helloworld"})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods.Items {
			if podReady(&p) && p.Status.PodIP != "" {
				v.podIPs[n] = append(v.podIPs[n], p.Status.PodIP)
			}
		}
		svc, err := client.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue // a remote on its primary's network has no gateway
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range svc.Status.LoadBalancer.Ingress {
			if in.IP != "" {
				v.gateways[n] = append(v.gateways[n], in.IP)
			}
		}
	}
	return v
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// sortedSet is the sorted distinct values of s.
func sortedSet(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return slices.Compact(out)
}

// assertXDSHealthy checks verify --xds's answer against the clusters: a
// report per (primary, network), each OK, whose port-5000 endpoints are
// exactly the network's helloworld pod IPs and whose 15443 endpoints are
// exactly the other networks' gateway addresses.
func (w *world) assertXDSHealthy(t *testing.T, ctx context.Context, primaries []string, networkOf map[string]string) {
	t.Helper()
	doc, code := w.verifyXDS(t, ctx)
	if code != 0 || doc.Failed != 0 {
		w.logXDSTables(t, ctx)
		t.Fatalf("verify --xds: exit %d, %d of %d checks failed", code, doc.Failed, doc.Checks)
	}
	view := w.readMeshView(t, ctx, networkOf)
	var networks []string
	for _, n := range networkOf {
		networks = append(networks, n)
	}
	networks = sortedSet(networks)
	seen := map[string]bool{}
	for _, m := range doc.Meshes {
		for _, r := range m.XDS {
			key := r.Primary + "/" + r.Network
			seen[key] = true
			if !r.OK || r.Error != "" {
				t.Errorf("%s: not OK: %s %v", key, r.Error, r.Causes)
			}
			var local, gateways []string
			for _, row := range r.Rows {
				if row.Verdict != verify.VerdictOK {
					t.Errorf("%s: row %s:%d %s: %s", key, row.Endpoint, row.Port, row.Verdict, row.Why)
				}
				switch row.Port {
				case 5000:
					local = append(local, row.Endpoint)
				case 15443:
					gateways = append(gateways, row.Endpoint)
				default:
					t.Errorf("%s: endpoint %s on port %d", key, row.Endpoint, row.Port)
				}
			}
			var wantGateways []string
			for _, other := range networks {
				if other != r.Network {
					wantGateways = append(wantGateways, view.gateways[other]...)
				}
			}
			if got, want := sortedSet(local), sortedSet(view.podIPs[r.Network]); !slices.Equal(got, want) || len(want) == 0 {
				t.Errorf("%s: local endpoints %v, the clusters' ready helloworld pods on %s are %v", key, got, r.Network, want)
			}
			if got, want := sortedSet(gateways), sortedSet(wantGateways); !slices.Equal(got, want) {
				t.Errorf("%s: gateway endpoints %v, the other networks' east-west gateways are %v", key, got, want)
			}
		}
	}
	for _, p := range primaries {
		for _, n := range networks {
			if !seen[p+"/"+n] {
				t.Errorf("no report for the istiod of %s asked as a sidecar of %s (have %v)", p, n, seen)
			}
		}
	}
}

// assertXDSCause checks that verify --xds fails and names cause: an
// xDS cause ("remote secret: ...") or, with a check name as cause
// ("check network"), a failed check of that name. It returns the
// document, for what istiod now sends.
func (w *world) assertXDSCause(t *testing.T, ctx context.Context, cause string) xdsDoc {
	t.Helper()
	doc, code := w.verifyXDS(t, ctx)
	var causes []string
	for _, m := range doc.Meshes {
		for _, r := range m.XDS {
			causes = append(causes, r.Causes...)
			if r.Error != "" {
				causes = append(causes, r.Error)
			}
		}
		for _, c := range m.Checks {
			if !c.OK && c.Check != "xds" {
				causes = append(causes, "check "+c.Check+": cluster "+c.Cluster+": "+c.Detail)
			}
		}
	}
	if code != 1 {
		t.Errorf("verify --xds exit %d, want 1 (causes %q)", code, causes)
	}
	if !slices.ContainsFunc(causes, func(c string) bool { return strings.HasPrefix(c, cause+":") }) {
		w.logXDSTables(t, ctx)
		t.Errorf("no cause %q among %q", cause, causes)
	}
	return doc
}

// assertInjected checks that istiod's injection webhook really changed
// the sample's pods: an istio-proxy sidecar and the tlsMode label.
func (w *world) assertInjected(t *testing.T, ctx context.Context, clusters []string) {
	t.Helper()
	for _, c := range clusters {
		pods, err := w.clientFor("context-"+c).CoreV1().Pods("sample").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) == 0 {
			t.Errorf("%s: no sample pods", c)
		}
		for _, p := range pods.Items {
			var names []string
			for _, ct := range append(slices.Clone(p.Spec.InitContainers), p.Spec.Containers...) {
				names = append(names, ct.Name)
			}
			if !slices.Contains(names, "istio-proxy") || p.Labels["security.istio.io/tlsMode"] != "istio" {
				t.Errorf("%s: pod sample/%s not injected: containers %v, tlsMode label %q", c, p.Name, names, p.Labels["security.istio.io/tlsMode"])
			}
			if p.Annotations["sidecar.istio.io/status"] == "" {
				t.Errorf("%s: pod sample/%s lacks the injector's sidecar.istio.io/status annotation", c, p.Name)
			}
		}
	}
}

// assertValidated checks that istiod's validation webhook answers for
// config without a revision label (the default revision's validator):
// a Gateway carrying Istio's always-reject annotation is denied.
func (w *world) assertValidated(t *testing.T, ctx context.Context, clusters []string) {
	t.Helper()
	body := []byte(`{"apiVersion":"networking.istio.io/v1","kind":"Gateway",
		"metadata":{"name":"mcplan-e2e-invalid","annotations":{"internal.istio.io/webhook-always-reject":"true"}},
		"spec":{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}}`)
	for _, c := range clusters {
		err := w.clientFor("context-"+c).CoreV1().RESTClient().Post().
			AbsPath("/apis/networking.istio.io/v1/namespaces/default/gateways").
			SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
		if err == nil || !strings.Contains(err.Error(), "denied the request") {
			t.Errorf("%s: a Gateway istiod must reject was answered with %v", c, err)
		} else {
			t.Logf("%s: %v", c, err)
		}
	}
}
