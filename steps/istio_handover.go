package steps

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/steps/kube"
)

// Fields that Istio's charts set only to start with and istiod then owns:
// istiod's validation controller proves that its webhook rejects bad
// config, then switches the ValidatingWebhookConfiguration's webhooks
// from failurePolicy Ignore to Fail (and writes their caBundle, which the
// charts leave out). Applying the chart's Ignore again would undo that on
// every apply, istiod would redo it, and every plan would show a change.
// So once the object exists, mcplan leaves failurePolicy to istiod: it
// applies the webhooks without the field, which also lets go of mcplan's
// ownership of it, and istiod's Fail (the API's default too) stands.

// handOverToIstiod returns objs with istiod's runtime fields removed from
// the objects that already exist in the cluster; objs is not modified.
func handOverToIstiod(ctx context.Context, c *kube.Client, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		if !istiodValidator(o) {
			out = append(out, o)
			continue
		}
		live, err := c.Get(ctx, kube.RefOf(o))
		if err != nil {
			return nil, err
		}
		if live == nil {
			out = append(out, o) // first apply: the chart's Ignore
			continue
		}
		out = append(out, withoutFailurePolicy(o))
	}
	return out, nil
}

// istiodValidator is istiod's ValidatingWebhookConfiguration.
func istiodValidator(o *unstructured.Unstructured) bool {
	return o.GetKind() == "ValidatingWebhookConfiguration" && o.GetLabels()["app"] == "istiod"
}

// withoutFailurePolicy is a copy of a webhook configuration whose
// webhooks do not set failurePolicy.
func withoutFailurePolicy(o *unstructured.Unstructured) *unstructured.Unstructured {
	c := o.DeepCopy()
	webhooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
	for _, w := range webhooks {
		if m, ok := w.(map[string]any); ok {
			delete(m, "failurePolicy")
		}
	}
	if webhooks != nil {
		_ = unstructured.SetNestedSlice(c.Object, webhooks, "webhooks")
	}
	return c
}
