package steps

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"mcplan.io/mcplan/steps/kube"
)

// Fields that Istio's charts set only to start with and istiod then owns:
// istiod's validation controller proves that its webhook rejects bad
// config, then switches the ValidatingWebhookConfiguration's webhooks
// from failurePolicy Ignore to Fail (and writes their caBundle, which the
// charts leave out). Applying the chart's Ignore again would undo that on
// every apply, istiod would redo it, and every plan would show a change.
// So once istiod has changed a webhook's failurePolicy, mcplan applies
// that webhook without the field: istiod's Update took the field's
// ownership, so leaving it out changes nothing and istiod's value stands.
// Until then (istiod not ready yet), the chart's value is applied as is.
// The control plane's inventory says so (handedOverToIstiod), so that a
// Check finds the install unchanged when istiod took the field over.

// handOverToIstiod returns objs with the fields istiod has taken over left
// out; objs is not modified.
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
		out = append(out, withIstiodFailurePolicy(o, live))
	}
	return out, nil
}

// istiodValidator is istiod's ValidatingWebhookConfiguration.
func istiodValidator(o *unstructured.Unstructured) bool {
	return o.GetKind() == "ValidatingWebhookConfiguration" && o.GetLabels()["app"] == "istiod"
}

// withIstiodFailurePolicy is a copy of the rendered webhook configuration
// whose webhooks leave out failurePolicy where the live webhook of the
// same name has another one.
func withIstiodFailurePolicy(rendered, live *unstructured.Unstructured) *unstructured.Unstructured {
	livePolicy := map[string]any{}
	liveHooks, _, _ := unstructured.NestedSlice(live.Object, "webhooks")
	for _, w := range liveHooks {
		if m, ok := w.(map[string]any); ok {
			if name, ok := m["name"].(string); ok {
				livePolicy[name] = m["failurePolicy"]
			}
		}
	}
	c := rendered.DeepCopy()
	webhooks, _, _ := unstructured.NestedSlice(c.Object, "webhooks")
	for _, w := range webhooks {
		m, ok := w.(map[string]any)
		if !ok {
			continue
		}
		name, _ := m["name"].(string)
		if policy, ok := livePolicy[name]; ok && policy != nil && policy != m["failurePolicy"] {
			delete(m, "failurePolicy")
		}
	}
	if webhooks != nil {
		_ = unstructured.SetNestedSlice(c.Object, webhooks, "webhooks")
	}
	return c
}

// handedOverToIstiod names the fields istiod takes over (for the control
// plane's inventory): its validator's webhooks' failurePolicy. The
// control plane's only ValidatingWebhookConfiguration is istiod's.
func handedOverToIstiod(ref kube.Ref) func(fieldpath.Path) bool {
	if ref.Group != "admissionregistration.k8s.io" || ref.Kind != "ValidatingWebhookConfiguration" {
		return nil
	}
	return webhookFailurePolicy
}

// webhookFailurePolicy is the path of a webhook's failurePolicy:
// webhooks[name=...].failurePolicy.
func webhookFailurePolicy(p fieldpath.Path) bool {
	return len(p) == 3 &&
		p[0].FieldName != nil && *p[0].FieldName == "webhooks" &&
		p[1].Key != nil &&
		p[2].FieldName != nil && *p[2].FieldName == "failurePolicy"
}
