package kube

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// DefaultNamespace gives ns to each namespaced object of objs that names
// no namespace, as kubectl apply does: its kind is namespaced by the
// API's discovery or, for a custom resource of a CRD among objs (not
// installed yet), by that CRD's scope. An object of a kind neither knows
// is left as it is (Diff and Apply then say its kind is missing).
func (c *Client) DefaultNamespace(objs []*unstructured.Unstructured, ns string) error {
	scopes := map[schema.GroupKind]string{}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		scope, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		scopes[schema.GroupKind{Group: group, Kind: kind}] = scope
	}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			continue
		}
		gvk := o.GroupVersionKind()
		namespaced := scopes[gvk.GroupKind()] == "Namespaced"
		if _, defined := scopes[gvk.GroupKind()]; !defined {
			m, err := c.mapping(gvk)
			switch {
			case meta.IsNoMatchError(err):
				continue
			case err != nil:
				return fmt.Errorf("%s: %w", RefOf(o), err)
			}
			namespaced = m.Scope.Name() == meta.RESTScopeNameNamespace
		}
		if namespaced {
			o.SetNamespace(ns)
		}
	}
	return nil
}
