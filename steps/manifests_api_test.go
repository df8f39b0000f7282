package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/testbed"
)

// manifestFiles are the user's manifests of TestManifestsOnStandin, by
// file name: a Namespace, a ConfigMap and a Deployment in it, a Secret
// (whose value must never show) and a ConfigMap that names no namespace
// (it goes to default).
func manifestFiles(mode, token string) map[string]string {
	return map[string]string{
		"namespace.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: mf-app}\n",
		"configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: mf-app}\ndata: {mode: " + mode + "}\n",
		"secret.yaml":    "apiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: mf-app}\nstringData: {token: " + token + "}\n",
		"defaulted.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mf-defaulted}\ndata: {a: b}\n",
		"deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: mf-app}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.example/web:1.0}]
`,
	}
}

// TestManifestsOnStandin runs manifests/apply against a real
// kube-apiserver (the k3s stand-in on loopback): the first Check shows
// every object missing; after Apply a Check is in sync; a changed
// manifest is drift naming its field (a Secret's without its value); a
// deleted manifest's object is shown as to be pruned and Apply prunes
// it; the removal deletes what it applied, and its namespace.
func TestManifestsOnStandin(t *testing.T) {
	bin := standinBinary(t)
	testbed.HoldMachineLock(t, "steps-manifests-standin")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	s := startStandin(t, ctx, bin, "cluster1", "127.0.0.43")
	dir := t.TempDir()
	s.writeKubeconfig(t, dir)

	files := filepath.Join(t.TempDir(), "manifests")
	write := func(contents map[string]string) {
		t.Helper()
		if err := os.MkdirAll(files, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range contents {
			if err := os.WriteFile(filepath.Join(files, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(manifestFiles("fast", "first-secret-value"))
	p := &plans.Plan{APIVersion: plans.APIVersion, Kind: plans.Kind, Metadata: plans.Metadata{Name: "manifests-api"},
		Hosts:    []plans.Host{{Name: "vm1", Address: s.ip}},
		Clusters: []plans.Cluster{{Name: s.name, Servers: []string{"vm1"}, API: plans.API{Port: s.port}, Manifests: []plans.ManifestSource{{Path: files}}}}}
	plans.ApplyDefaults(p)
	var spec plans.StepSpec
	for _, sp := range plans.Steps(p) {
		if sp.Kind == plans.KindManifestsApply {
			spec = sp
		}
	}
	step := NewManifestsApply(p, spec, nil)
	var logs stepLogs
	env := engine.NewEnv(spec.ID, dir, nil, nil, logs.sink)
	c, err := clusterClient(env, s.name)
	if err != nil {
		t.Fatal(err)
	}
	waitNamespaceServed(t, ctx, c)

	var out strings.Builder
	check := func(when string) {
		t.Helper()
		d, err := step.Check(ctx, env)
		if err != nil {
			t.Fatalf("check %s: %v", when, err)
		}
		fmt.Fprintf(&out, "## %s\n%s", when, driftText(d))
	}
	apply := func(when string) {
		t.Helper()
		if err := step.Apply(ctx, env); err != nil {
			t.Fatalf("apply %s: %v", when, err)
		}
	}
	check("before the first apply")
	apply("first")
	check("after the first apply")
	if o, err := c.Get(ctx, kube.Ref{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "mf-defaulted"}); err != nil || o == nil {
		t.Fatalf("the ConfigMap that names no namespace is not in default: %v", err)
	}

	write(manifestFiles("slow", "second-secret-value"))
	check("a ConfigMap and a Secret changed")
	before := len(logs.all())
	apply("the changes")
	// The bare Namespace (no field of mcplan's own) is not "updated":
	// the API server only gave its fields to "before-first-apply".
	if changes := strings.Join(logs.all()[before:], "\n"); !strings.Contains(changes, "0 created, 2 updated, 3 unchanged") ||
		strings.Contains(changes, "updated Namespace") {
		t.Errorf("the apply of a changed ConfigMap and Secret logged:\n%s\nwant 2 updated, the Namespace unchanged", changes)
	}
	check("after applying the changes")

	if err := os.Remove(filepath.Join(files, "deployment.yaml")); err != nil {
		t.Fatal(err)
	}
	check("deployment.yaml deleted")
	apply("without deployment.yaml")
	check("after the prune")
	if o, err := c.Get(ctx, kube.Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "mf-app", Name: "web"}); err != nil || o != nil {
		t.Fatalf("Deployment mf-app/web not pruned: %v", err)
	}
	if strings.Contains(out.String(), "secret-value") {
		t.Errorf("a Secret's value shows in a Check:\n%s", out.String())
	}
	golden.Check(t, filepath.Join("testdata", "manifests", "golden", "api.golden"), out.String())

	// A StatefulSet whose pod can never be scheduled: Apply fails with
	// kstatus's reason, and Check says it is not Current until its
	// manifest is gone.
	write(map[string]string{"statefulset.yaml": testbed.UnschedulableStatefulSet("mf-app")})
	step.ReadyTimeout = 15 * time.Second
	err = step.Apply(ctx, env)
	if err == nil || !strings.Contains(err.Error(), "StatefulSet mf-app/db: InProgress") || !strings.Contains(err.Error(), "Unschedulable") {
		t.Fatalf("apply of an unschedulable StatefulSet: %v, want kstatus's InProgress for StatefulSet mf-app/db and the pod Unschedulable", err)
	}
	if d, err := step.Check(ctx, env); err != nil || d.InSync || !strings.Contains(d.Reason, "StatefulSet mf-app/db") {
		t.Fatalf("check of the StatefulSet that is not ready: %+v, %v", d, err)
	}
	if err := os.Remove(filepath.Join(files, "statefulset.yaml")); err != nil {
		t.Fatal(err)
	}
	apply("without statefulset.yaml")

	if err := (manifestsRemoval{cluster: s.name}).Remove(ctx, env); err != nil {
		t.Fatalf("remove: %v", err)
	}
	for _, ref := range []kube.Ref{
		{Version: "v1", Kind: "ConfigMap", Namespace: "default", Name: "mf-defaulted"},
		{Version: "v1", Kind: "Namespace", Name: "mf-app"},
	} {
		if o, err := c.Get(ctx, ref); err != nil || o != nil {
			t.Errorf("%s still there after the removal: %v\nstep log:\n%s", ref, err, &logs)
		}
	}
}

// waitNamespaceServed waits until the API serves namespaces' default
// ServiceAccount machinery: a fresh API server takes a moment.
func waitNamespaceServed(t *testing.T, ctx context.Context, c *kube.Client) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		o, err := c.Get(ctx, kube.Ref{Version: "v1", Kind: "Namespace", Name: "default"})
		if err == nil && o != nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %s: namespace default not served: %v", c.Name, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// driftText is a Check's drift as plan shows it: in sync, or the reason
// and each object with its changed fields.
func driftText(d engine.Drift) string {
	if d.InSync {
		return "in sync\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "drift: %s\n", d.Reason)
	for _, ch := range d.Details {
		fmt.Fprintf(&b, "  %s\n", ch.Object)
		for _, f := range ch.Fields {
			fmt.Fprintf(&b, "      %s\n", f)
		}
	}
	return b.String()
}
