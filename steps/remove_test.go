package steps

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/statedir"
)

// TestDestroyIstioOnStandins destroys the walkthrough's Istio steps on two
// stand-ins after a user put a ConfigMap in cluster1's istio-system and a
// VirtualService in its default namespace: everything mcplan made goes,
// cluster2's istio-system with it; cluster1 keeps istio-system (with the
// user's ConfigMap) and the VirtualService CRD (with the user's object),
// and says why; the root CA is moved aside; the state is empty.
func TestDestroyIstioOnStandins(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	r.run()
	ctx := r.ctx
	c1, c2 := r.clients["cluster1"], r.clients["cluster2"]
	userCM := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-notes", Namespace: istiorender.Namespace}, Data: map[string]string{"a": "b"}}
	if _, err := c1.Typed.CoreV1().ConfigMaps(istiorender.Namespace).Create(ctx, userCM, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}
	vsGVR := schema.GroupVersionResource{Group: "networking.istio.io", Version: "v1", Resource: "virtualservices"}
	vs := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
		"metadata": map[string]any{"name": "user-vs", "namespace": "default"},
		"spec":     map[string]any{"hosts": []any{"example.internal"}, "http": []any{map[string]any{"route": []any{map[string]any{"destination": map[string]any{"host": "example.internal"}}}}}},
	}}
	if _, err := c1.Dynamic.Resource(vsGVR).Namespace("default").Create(ctx, vs, metav1.CreateOptions{FieldManager: "kubectl-create"}); err != nil {
		t.Fatal(err)
	}

	var logs stepLogs
	rep := engine.Run(ctx, r.graph, engine.Options{Destroy: true, Forget: true, Store: r.store, Dir: r.dir, Parallelism: 4, Sink: logs.sink,
		Retire: Retirement(r.plan, RemovalOptions{Destroying: r.graph.IDs()})})
	log := logs.String()
	t.Logf("destroy logs:\n%s", log)
	if rep.Err != nil {
		t.Fatalf("destroy: %v", rep.Err)
	}
	if ids := r.store.IDs(); len(ids) != 0 {
		t.Errorf("state holds %v after destroy", ids)
	}
	for name, c := range r.clients {
		if _, err := c.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.IstiodName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: istiod Deployment still there (%v)", name, err)
		}
		hooks, err := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(hooks.Items) != 0 {
			t.Errorf("%s: %d mutating webhooks left", name, len(hooks.Items))
		}
		for _, secret := range []string{istiorender.CACertsSecret, istiorender.RemoteSecretName(other(name)), istiorender.ReaderTokenSecretFor(other(name))} {
			s, err := c.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, secret, metav1.GetOptions{})
			if err == nil && s.DeletionTimestamp == nil {
				t.Errorf("%s: Secret %s still there", name, secret)
			}
		}
	}
	// cluster2 held only what mcplan, Kubernetes and the stand-in made.
	if _, err := c2.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("cluster2: istio-system is still there (%v)", err)
	}
	if crd, err := c2.Dynamic.Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}).
		Get(ctx, "virtualservices.networking.istio.io", metav1.GetOptions{}); err == nil && crd.GetDeletionTimestamp() == nil {
		t.Errorf("cluster2: the VirtualService CRD (no custom resources) was not deleted")
	}
	// cluster1 keeps what the user made, and what it needs.
	ns, err := c1.Typed.CoreV1().Namespaces().Get(ctx, istiorender.Namespace, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("cluster1: istio-system, which holds the user's ConfigMap, is gone or going (%v)", err)
	}
	if _, err := c1.Typed.CoreV1().ConfigMaps(istiorender.Namespace).Get(ctx, "user-notes", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster1: the user's ConfigMap: %v", err)
	}
	if !strings.Contains(log, "left namespace istio-system in cluster1: it holds what mcplan did not make (ConfigMap istio-system/user-notes)") {
		t.Error("the log does not say why istio-system stays in cluster1")
	}
	if _, err := c1.Dynamic.Resource(vsGVR).Namespace("default").Get(ctx, "user-vs", metav1.GetOptions{}); err != nil {
		t.Errorf("cluster1: the user's VirtualService: %v", err)
	}
	if !strings.Contains(log, "CustomResourceDefinition virtualservices.networking.istio.io: custom resources of it exist") {
		t.Error("the log does not say why the VirtualService CRD stays in cluster1")
	}
	// The CA: intermediates deleted, the root moved aside.
	if _, err := os.Stat(statedir.CACluster(r.dir, "mesh1", "cluster1")); !os.IsNotExist(err) {
		t.Errorf("cluster1's intermediate CA is still there (%v)", err)
	}
	if moved, _ := filepath.Glob(filepath.Join(r.dir, "removed", "*", "ca", "mesh1", statedir.RootCertFile)); len(moved) != 1 {
		t.Errorf("root CA moved to %v, want one copy under removed/", moved)
	}
	// Removal order: each step went after everything that depended on it.
	var order []string
	for _, res := range rep.Removals {
		order = append(order, res.ID)
	}
	for _, id := range order {
		for _, d := range r.graph.Node(id).DependsOn {
			if slices.Index(order, d) < slices.Index(order, id) {
				t.Errorf("%s was removed before %s, which depends on it", d, id)
			}
		}
	}
}

// other is the walkthrough's other cluster.
func other(cluster string) string {
	if cluster == "cluster1" {
		return "cluster2"
	}
	return "cluster1"
}
