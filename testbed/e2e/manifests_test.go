package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/testbed"
)

// userManifests is a kustomization directory: a Namespace, a Deployment
// and a PeerAuthentication, with a label the kustomization adds.
var userManifests = map[string]string{
	"kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [namespace.yaml, deployment.yaml, peerauthentication.yaml]
labels:
  - pairs: {team: payments}
`,
	"namespace.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: mf-e2e}
`,
	"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: mf-e2e}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.invalid/web:1}]
`,
	"peerauthentication.yaml": `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: strict, namespace: mf-e2e}
spec:
  mtls: {mode: STRICT}
`,
	"statefulset.yaml": testbed.UnschedulableStatefulSet("mf-e2e"),
}

// testUserManifests applies the mesh's own manifests (a kustomization
// directory) to each of its clusters, shows a changed manifest as a
// field diff in plan, prunes a deleted one, fails on a StatefulSet that
// never becomes ready with kstatus's reason, and removes them all when
// they leave the plan.
func testUserManifests(t *testing.T, ctx context.Context, w *world) {
	dir := filepath.Join(w.dir, "manifests")
	write := func(name, data string) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"kustomization.yaml", "namespace.yaml", "deployment.yaml", "peerauthentication.yaml"} {
		write(name, userManifests[name])
	}
	// A short step timeout: the StatefulSet's wait ends within it.
	withManifests := meshSection + "    manifests: [{path: ./manifests, kustomize: true}]\ntimeouts: {manifests/apply: 45s}\n"
	w.writePlan(planOptions{mesh: withManifests})
	clusters := []string{"cluster1", "cluster2"}
	peerAuth := schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "peerauthentications"}
	dynamicFor := func(c string) *dynamic.DynamicClient {
		d, err := dynamic.NewForConfig(w.restFor("context-" + c))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	r := w.mustApply(t, ctx, "apply of the mesh's manifests")
	for _, c := range clusters {
		if o := r.outcomes[plans.ManifestsApplyID(c)]; o != "succeeded" {
			t.Errorf("%s: %q, want succeeded", plans.ManifestsApplyID(c), o)
		}
		d, err := w.clientFor("context-"+c).AppsV1().Deployments("mf-e2e").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		if d.Labels["team"] != "payments" {
			t.Errorf("%s: Deployment mf-e2e/web labels %v, want the kustomization's team=payments", c, d.Labels)
		}
		if _, err := dynamicFor(c).Resource(peerAuth).Namespace("mf-e2e").Get(ctx, "strict", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: PeerAuthentication mf-e2e/strict: %v", c, err)
		}
	}

	write("deployment.yaml", strings.Replace(userManifests["deployment.yaml"], "replicas: 1", "replicas: 2", 1))
	out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
		t.Fatalf("plan after a changed manifest: %v, want exit 2\n%s", err, out)
	}
	t.Logf("plan:\n%s", out)
	objectLines := 0
	for _, line := range strings.Split(string(out), "\n") {
		if strings.TrimSpace(line) == "~ Deployment mf-e2e/web" {
			objectLines++
		}
	}
	if objectLines != 2 {
		t.Errorf("%d object diffs of Deployment mf-e2e/web, want one per cluster", objectLines)
	}
	if n := strings.Count(string(out), "spec.replicas: 1 → 2"); n != 2 {
		t.Errorf("%d field diffs spec.replicas: 1 → 2, want one per cluster", n)
	}
	w.mustApply(t, ctx, "apply of the changed manifest")

	write("kustomization.yaml", strings.Replace(userManifests["kustomization.yaml"], ", peerauthentication.yaml", "", 1))
	if err := os.Remove(filepath.Join(dir, "peerauthentication.yaml")); err != nil {
		t.Fatal(err)
	}
	w.mustApply(t, ctx, "apply without the PeerAuthentication")
	for _, c := range clusters {
		if _, err := dynamicFor(c).Resource(peerAuth).Namespace("mf-e2e").Get(ctx, "strict", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: PeerAuthentication mf-e2e/strict not pruned: %v", c, err)
		}
	}

	write("statefulset.yaml", userManifests["statefulset.yaml"])
	write("kustomization.yaml", strings.Replace(userManifests["kustomization.yaml"], ", peerauthentication.yaml", ", statefulset.yaml", 1))
	failed := w.apply(ctx)
	if failed.code == 0 {
		t.Fatalf("apply of a StatefulSet that never becomes ready succeeded:\n%s", failed.output)
	}
	for _, c := range clusters {
		if e := failed.errors[plans.ManifestsApplyID(c)]; !strings.Contains(e, "StatefulSet mf-e2e/db: InProgress") {
			t.Errorf("%s: error %q, want kstatus's InProgress for StatefulSet mf-e2e/db", plans.ManifestsApplyID(c), e)
		}
	}
	t.Logf("the StatefulSet's failure: %s", failed.errors[plans.ManifestsApplyID("cluster1")])

	// The manifests leave the plan: their objects go, the namespace too.
	w.writePlan(planOptions{mesh: meshSection})
	w.mustApply(t, ctx, "apply without manifests")
	for _, c := range clusters {
		ns, err := w.clientFor("context-"+c).CoreV1().Namespaces().Get(ctx, "mf-e2e", metav1.GetOptions{})
		if err == nil && ns.DeletionTimestamp == nil {
			t.Errorf("%s: namespace mf-e2e still there after the manifests left the plan", c)
		} else if err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
}
