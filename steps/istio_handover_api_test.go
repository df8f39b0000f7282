package steps

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/testbed"
)

// TestHandoverToIstiodKeepsTheQuickCheckOnAStandin: on a real
// kube-apiserver, once a manager of istiod's takes its validator's
// failurePolicy over (as istiod does, with an Update), the control
// plane's inventory still finds the validator unchanged without a
// dry-run (kube.Client.Unchanged), and would not without the handover
// rule; a field mcplan owns and does not hand over, taken by another
// manager, and a deleted validator are still changes.
func TestHandoverToIstiodKeepsTheQuickCheckOnAStandin(t *testing.T) {
	bin := standinBinary(t)
	testbed.HoldMachineLock(t, "steps-handover-standin")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	s := testbed.StartStandinServer(t, ctx, bin, "handover", "127.0.0.42")
	admin := s.AdminClient(t, ctx)
	cfg, err := clientcmd.BuildConfigFromFlags("", s.K3sYAML)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kube.New("handover", cfg)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	inv := func(handed kube.HandedOver) *kube.Inventory {
		return &kube.Inventory{Path: filepath.Join(dir, "controlplane.json"), Key: "inputs-1", HandedOver: handed}
	}
	apply := func() {
		t.Helper()
		if _, err := c.Apply(ctx, []*unstructured.Unstructured{validatorToApply()}, kube.ApplyOptions{Inventory: inv(handedOverToIstiod)}); err != nil {
			t.Fatal(err)
		}
	}
	unchanged := func(handed kube.HandedOver) bool {
		t.Helper()
		ok, _, err := c.Unchanged(ctx, inv(handed))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	// updateAsIstiod changes the live validator's webhooks with an Update
	// of another field manager, as istiod's validation controller does.
	updateAsIstiod := func(change func(*admissionv1.ValidatingWebhook)) {
		t.Helper()
		vwcs := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations()
		live, err := vwcs.Get(ctx, validatorName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range live.Webhooks {
			change(&live.Webhooks[i])
		}
		if _, err := vwcs.Update(ctx, live, metav1.UpdateOptions{FieldManager: "pilot-discovery"}); err != nil {
			t.Fatal(err)
		}
	}

	apply()
	if !unchanged(handedOverToIstiod) {
		t.Fatal("just applied, the validator is not found unchanged")
	}

	fail := admissionv1.Fail
	updateAsIstiod(func(w *admissionv1.ValidatingWebhook) { w.FailurePolicy = &fail })
	if unchanged(nil) {
		t.Fatal("the premise does not hold: istiod's takeover of failurePolicy left mcplan's managedFields entry as it was")
	}
	if !unchanged(handedOverToIstiod) {
		t.Error("istiod took over failurePolicy, which mcplan hands over, and the validator is not found unchanged")
	}

	// A field mcplan owns and does not hand over, taken by another manager.
	apply()
	updateAsIstiod(func(w *admissionv1.ValidatingWebhook) { w.FailurePolicy = &fail })
	timeout := int32(25)
	updateAsIstiod(func(w *admissionv1.ValidatingWebhook) { w.TimeoutSeconds = &timeout })
	if unchanged(handedOverToIstiod) {
		t.Error("another manager took over timeoutSeconds, which mcplan owns, and the validator is found unchanged")
	}

	apply()
	if err := admin.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, validatorName, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if unchanged(handedOverToIstiod) {
		t.Error("the validator was deleted and is found unchanged")
	}
}

const validatorName = "istio-validator-istio-system"

// validatorToApply is istiod's validator as the charts render it: its
// webhooks at failurePolicy Ignore, pointed at nothing that answers, for
// a group nothing uses.
func validatorToApply() *unstructured.Unstructured {
	hook := func(name string) map[string]any {
		return map[string]any{
			"name":                    name,
			"failurePolicy":           "Ignore",
			"sideEffects":             "None",
			"timeoutSeconds":          int64(10),
			"admissionReviewVersions": []any{"v1"},
			"clientConfig":            map[string]any{"url": "https://127.0.0.42:1/validate"},
			"rules": []any{map[string]any{
				"apiGroups": []any{"handover.mcplan.io"}, "apiVersions": []any{"*"},
				"operations": []any{"CREATE", "UPDATE"}, "resources": []any{"*"},
			}},
		}
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingWebhookConfiguration",
		"metadata":   map[string]any{"name": validatorName, "labels": map[string]any{"app": "istiod"}},
		"webhooks":   []any{hook("rev.validation.istio.io"), hook("other.validation.istio.io")},
	}}
}
