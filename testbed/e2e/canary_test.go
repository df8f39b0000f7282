package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// canaryMesh is the walkthrough mesh with a revision, its workloads
// restarted once the tags moved; extra goes under istio:.
func canaryMesh(revision, extra string) string {
	return strings.Replace(meshSection, "    istio:\n", fmt.Sprintf("    istio:\n      revision: %s\n      upgrade: {restartWorkloads: true}\n%s", revision, extra), 1)
}

// TestIstioCanaryOnTestHosts canaries the walkthrough mesh (two
// clusters, two networks, multi-primary) from its non-revisioned control
// plane to revision r2, with a SIGKILL after the tags moved; then a
// canary to a revision whose meshConfig hides the workloads from its
// istiods, which the gate stops before any tag moves; then back to r2.
func TestIstioCanaryOnTestHosts(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()
	clusters := []string{"cluster1", "cluster2"}
	networkOf := map[string]string{"cluster1": "network1", "cluster2": "network2"}
	w.writePlan(planOptions{mesh: meshSection})
	w.mustApply(t, ctx, "first apply (no revision)")

	w.writePlan(planOptions{mesh: canaryMesh("r2", "")})
	out, err := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
	t.Logf("plan of the canary:\n%s", out)
	for _, want := range []string{"+ mesh/mesh1/istio/gate", "+ cluster/cluster1/istio/tags", "+ cluster/cluster2/istio/restart", "+ cluster/cluster2/istio/retire/default"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the plan of the canary lacks %q (%v)", want, err)
		}
	}

	// The canary, killed once cluster1's gateway starts to move: the tags
	// moved and the workloads restarted by then.
	start := time.Now()
	killedRun, code, output := w.applyEvents(t, ctx, "cluster/cluster1/istio/eastwest")
	if code != -1 {
		t.Fatalf("the canary ended (exit %d) before cluster1's gateway moved:\n%s", code, output)
	}
	t.Run("both istiods run at once, each with its own pod IP", func(t *testing.T) {
		for _, c := range clusters {
			pods, err := w.clientFor("context-"+c).CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
			if err != nil {
				t.Fatal(err)
			}
			revs := map[string]string{}
			for _, p := range pods.Items {
				ready := slices.ContainsFunc(p.Status.Conditions, func(c corev1.PodCondition) bool {
					return c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue
				})
				if _, err := netip.ParseAddr(p.Status.PodIP); !ready || err != nil || p.Status.PodIP == p.Status.HostIP {
					t.Errorf("%s: istiod pod %s ready %v, pod IP %q, host IP %q", c, p.Name, ready, p.Status.PodIP, p.Status.HostIP)
				}
				revs[p.Labels["istio.io/rev"]] = p.Status.PodIP
			}
			if len(revs) != 2 || revs["default"] == "" || revs["r2"] == "" || revs["default"] == revs["r2"] {
				t.Errorf("%s: istiods by revision %v, want default and r2 on two IPs", c, revs)
			}
		}
		t.Logf("istiods' memory on h1 (rss KiB, command): %s", strings.TrimSpace(w.ssh(w.bed.Hosts[0], "ps -o rss=,args= -C pilot")))
	})
	resumed, code, output := w.applyEvents(t, ctx, "")
	if code != 0 {
		t.Fatalf("the apply after the kill: exit %d\n%s", code, output)
	}
	t.Logf("canary to r2 (both applies): %s", time.Since(start).Round(time.Millisecond))
	all := append(slices.Clone(killedRun), resumed...)
	sp := spans(all)
	t.Run("the canary's order", func(t *testing.T) {
		before := func(a, b string) {
			t.Helper()
			if sp[a][1].IsZero() || sp[b][0].IsZero() || !sp[a][1].Before(sp[b][0]) {
				t.Errorf("%s (ended %s) did not end before %s started (%s)", a, sp[a][1].Format(time.StampMilli), b, sp[b][0].Format(time.StampMilli))
			}
		}
		for _, c := range clusters {
			before("cluster/"+c+"/istio/controlplane", "mesh/mesh1/istio/gate")
			before("mesh/mesh1/istio/gate", "cluster/"+c+"/istio/tags")
			before("cluster/"+c+"/istio/tags", "cluster/"+c+"/istio/restart")
			before("cluster/"+c+"/istio/restart", "cluster/"+c+"/istio/eastwest")
			before("cluster/cluster2/istio/eastwest", "cluster/"+c+"/istio/retire/default")
		}
		before("cluster/cluster1/istio/eastwest", "cluster/cluster2/istio/eastwest")
		// r2 was installed once: the resumed apply found it in place.
		for _, ev := range resumed {
			if ev.Type == "started" && strings.HasSuffix(ev.Step, "/istio/controlplane") {
				t.Errorf("the apply after the kill installed the control plane again (%s)", ev.Step)
			}
		}
	})
	t.Run("restarted sample pods run r2's sidecar", func(t *testing.T) {
		w.assertSampleRevision(t, ctx, clusters, "r2")
	})
	t.Run("the old revision is gone, what r2 shares stays", func(t *testing.T) {
		for _, c := range clusters {
			cl := w.clientFor("context-" + c)
			if _, err := cl.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: Deployment istiod after the canary (%v)", c, err)
			}
			if _, err := cl.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the non-revisioned injector after the canary (%v)", c, err)
			}
			gw, err := cl.AppsV1().Deployments("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
			if err != nil || gw.Spec.Template.Labels["istio.io/rev"] != "r2" {
				t.Errorf("%s: east-west gateway not on r2: %v", c, err)
			}
			if _, err := cl.CoreV1().ServiceAccounts("istio-system").Get(ctx, "istio-reader-service-account", metav1.GetOptions{}); err != nil {
				t.Errorf("%s: the reader account, which r2 shares: %v", c, err)
			}
			if _, err := cl.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-default", metav1.GetOptions{}); err != nil {
				t.Errorf("%s: the default tag: %v", c, err)
			}
		}
		w.assertValidated(t, ctx, clusters)
		w.assertXDSHealthy(t, ctx, clusters, networkOf)
	})
	t.Run("the apply after the canary runs nothing", func(t *testing.T) {
		again := w.mustApply(t, ctx, "apply after the canary")
		if ran := again.ran(); len(ran) != 0 {
			t.Errorf("ran %v", ran)
		}
	})

	t.Run("a canary to a revision that sees no workloads stops at the gate", func(t *testing.T) {
		// r3's istiods are told to watch no namespace but their own
		// (discoverySelectors matching none): they would tell the
		// sidecars nothing of helloworld, in every network's view.
		blind := strings.Replace(canaryMesh("r3", ""), "accessLogEncoding: JSON}", "accessLogEncoding: JSON, discoverySelectors: [{matchLabels: {mcplan.io/e2e: nowhere}}]}", 1)
		w.writePlan(planOptions{mesh: blind})
		r := w.apply(ctx)
		if r.code == 0 || r.outcomes["mesh/mesh1/istio/gate"] != "failed" {
			t.Fatalf("the broken canary: exit %d, gate %s\n%s", r.code, r.outcomes["mesh/mesh1/istio/gate"], r.output)
		}
		if why := r.errors["mesh/mesh1/istio/gate"]; !strings.Contains(why, "the tags stay on r2") || !strings.Contains(why, "network1") {
			t.Errorf("the gate's error does not say the tags stay or which view was wrong: %s", why)
		}
		for _, c := range clusters {
			if o := r.outcomes["cluster/"+c+"/istio/tags"]; o == "succeeded" {
				t.Errorf("%s: tags moved after the failed gate", c)
			}
			tag, err := w.clientFor("context-"+c).AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-default", metav1.GetOptions{})
			if err != nil || tag.Labels["istio.io/rev"] != "r2" {
				t.Errorf("%s: the default tag is not on r2 after the failed gate (%v)", c, err)
			}
		}
		// The mesh as it was, on r2, still verifies; applying it retires r3.
		w.writePlan(planOptions{mesh: canaryMesh("r2", "")})
		w.assertXDSHealthy(t, ctx, clusters, networkOf)
		back := w.mustApply(t, ctx, "back to r2")
		if back.outcomes["cluster/cluster1/istio/retire/r3"] != "succeeded" {
			t.Errorf("r3 not retired: %s %s", back.outcomes["cluster/cluster1/istio/retire/r3"], back.errors["cluster/cluster1/istio/retire/r3"])
		}
		if _, err := w.clientFor("context-cluster1").AppsV1().Deployments("istio-system").Get(ctx, "istiod-r3", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("istiod-r3 after going back (%v)", err)
		}
		w.assertXDSHealthy(t, ctx, clusters, networkOf)
	})
}

// assertSampleRevision checks that every sample pod of the clusters was
// injected by revision (its sidecar.istio.io/status names it).
func (w *world) assertSampleRevision(t *testing.T, ctx context.Context, clusters []string, revision string) {
	t.Helper()
	for _, c := range clusters {
		pods, err := w.clientFor("context-"+c).CoreV1().Pods("sample").List(ctx, metav1.ListOptions{})
		if err != nil || len(pods.Items) == 0 {
			t.Fatalf("%s: sample pods: %v (%d)", c, err, len(pods.Items))
		}
		for _, p := range pods.Items {
			var status struct{ Revision string }
			if err := json.Unmarshal([]byte(p.Annotations["sidecar.istio.io/status"]), &status); err != nil || status.Revision != revision {
				t.Errorf("%s: pod sample/%s injected by %q (%v), want %s", c, p.Name, status.Revision, err, revision)
			}
		}
	}
}
