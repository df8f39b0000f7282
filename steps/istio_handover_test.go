package steps

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func validator(policies ...string) *unstructured.Unstructured {
	var hooks []any
	for i, p := range policies {
		hooks = append(hooks, map[string]any{"name": []string{"rev.validation.istio.io", "other.validation.istio.io"}[i], "failurePolicy": p, "sideEffects": "None"})
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1",
		"kind":       "ValidatingWebhookConfiguration",
		"metadata":   map[string]any{"name": "istio-validator-istio-system", "labels": map[string]any{"app": "istiod"}},
		"webhooks":   hooks,
	}}
}

func TestWithIstiodFailurePolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		live []string
		want []string // the applied failurePolicy per webhook, "" when left out
	}{
		{"istiod not ready yet: the chart's value", []string{"Ignore", "Ignore"}, []string{"Ignore", "Ignore"}},
		{"istiod switched both to Fail", []string{"Fail", "Fail"}, []string{"", ""}},
		{"istiod switched one", []string{"Fail", "Ignore"}, []string{"", "Ignore"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rendered := validator("Ignore", "Ignore")
			got := withIstiodFailurePolicy(rendered, validator(tc.live...))
			hooks, _, _ := unstructured.NestedSlice(got.Object, "webhooks")
			for i, h := range hooks {
				m := h.(map[string]any)
				p, _ := m["failurePolicy"].(string)
				if p != tc.want[i] {
					t.Errorf("webhook %v: failurePolicy %q, want %q", m["name"], p, tc.want[i])
				}
				if m["sideEffects"] != "None" {
					t.Errorf("webhook %v: other fields lost", m["name"])
				}
			}
			orig, _, _ := unstructured.NestedSlice(rendered.Object, "webhooks")
			if orig[0].(map[string]any)["failurePolicy"] != "Ignore" {
				t.Error("the rendered object was modified")
			}
		})
	}
}

func TestIstiodValidatorIsOnlyIstiodsValidatingWebhook(t *testing.T) {
	if !istiodValidator(validator("Ignore")) {
		t.Error("istiod's validator not recognised")
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
