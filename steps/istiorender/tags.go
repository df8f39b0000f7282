package istiorender

import (
	"slices"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Revision tags, as `istioctl tag set <tag> --revision <rev>` makes them
// (istioctl/pkg/tag renders the same charts): per tag a
// MutatingWebhookConfiguration istio-revision-tag-<tag> and a Service
// istiod-revision-tag-<tag>, both labelled istio.io/tag; for the default
// tag also the default revision's ValidatingWebhookConfiguration,
// pointed at the revision.
const (
	TagLabel           = "istio.io/tag"
	DefaultRevisionTag = "default"
	DefaultValidator   = "istiod-default-validator"
)

// TagsOperator is the control plane's IstioOperator with the revision
// tags set (values.revisionTags) and, for the default tag, the revision
// made the default (values.defaultRevision). Its render holds the tags'
// objects beside the control plane's; TagObjects picks them out.
func (c ControlPlane) TagsOperator(tags []string) map[string]any {
	op := c.IstioOperator()
	spec := op["spec"].(map[string]any)
	extra := map[string]any{"revisionTags": toAny(tags)}
	if slices.Contains(tags, DefaultRevisionTag) {
		extra["defaultRevision"] = c.Revision
	}
	spec["values"] = MergeValues(spec["values"].(map[string]any), extra)
	return op
}

// TagObjects are the objects of a TagsOperator render that belong to the
// tags: those labelled istio.io/tag, and the default validator.
func TagObjects(m *Manifest) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range m.Objects {
		_, tagged := o.GetLabels()[TagLabel]
		validator := o.GetKind() == "ValidatingWebhookConfiguration" && o.GetName() == DefaultValidator
		if tagged || validator {
			out = append(out, o)
		}
	}
	return out
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
