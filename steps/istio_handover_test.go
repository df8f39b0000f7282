package steps

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestWithoutFailurePolicyLeavesTheRestAlone(t *testing.T) {
	o := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingWebhookConfiguration",
		"metadata":   map[string]any{"name": "istio-validator-istio-system", "labels": map[string]any{"app": "istiod"}},
		"webhooks": []any{
			map[string]any{"name": "rev.validation.istio.io", "failurePolicy": "Ignore", "sideEffects": "None"},
			map[string]any{"name": "other.validation.istio.io", "failurePolicy": "Ignore"},
		},
	}}
	if !istiodValidator(o) {
		t.Fatal("istiod's validator not recognised")
	}
	got := withoutFailurePolicy(o)
	whs, _, _ := unstructured.NestedSlice(got.Object, "webhooks")
	if len(whs) != 2 {
		t.Fatalf("webhooks %v", whs)
	}
	for _, w := range whs {
		m := w.(map[string]any)
		if _, ok := m["failurePolicy"]; ok {
			t.Errorf("%v still sets failurePolicy", m["name"])
		}
	}
	if whs[0].(map[string]any)["sideEffects"] != "None" {
		t.Error("other fields lost")
	}
	orig, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
	if orig[0].(map[string]any)["failurePolicy"] != "Ignore" {
		t.Error("the rendered object was modified")
	}
	for _, other := range []*unstructured.Unstructured{
		{Object: map[string]any{"kind": "MutatingWebhookConfiguration", "metadata": map[string]any{"labels": map[string]any{"app": "istiod"}}}},
		{Object: map[string]any{"kind": "ValidatingWebhookConfiguration", "metadata": map[string]any{"labels": map[string]any{"app": "other"}}}},
	} {
		if istiodValidator(other) {
			t.Errorf("%v taken for istiod's validator", other.Object)
		}
	}
}
