package kube

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func object(apiVersion, kind, name string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{Object: map[string]any{}}
	o.SetAPIVersion(apiVersion)
	o.SetKind(kind)
	o.SetName(name)
	return o
}

func crd(group, kind string) *unstructured.Unstructured {
	o := object("apiextensions.k8s.io/v1", "CustomResourceDefinition", strings.ToLower(kind)+"s."+group)
	o.Object["spec"] = map[string]any{"group": group, "names": map[string]any{"kind": kind}}
	return o
}

func names(objs []*unstructured.Unstructured) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(out, " ")
}

// TestOrderAroundCRDs: what needs no CRD of the apply goes before they
// are Established; custom resources of those CRDs after, and then the
// webhooks too.
func TestOrderAroundCRDs(t *testing.T) {
	for _, tt := range []struct {
		name                string
		objs                []*unstructured.Unstructured
		crds, before, after string
	}{
		{
			name: "a control plane: CRDs, no custom resources",
			objs: []*unstructured.Unstructured{
				object("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "v"),
				crd("networking.istio.io", "Gateway"),
				object("apps/v1", "Deployment", "istiod"),
				object("v1", "ServiceAccount", "istiod"),
			},
			crds:   "CustomResourceDefinition/gateways.networking.istio.io",
			before: "ValidatingWebhookConfiguration/v Deployment/istiod ServiceAccount/istiod",
		},
		{
			name: "custom resources of the CRDs wait, and the webhooks after them",
			objs: []*unstructured.Unstructured{
				object("networking.istio.io/v1", "Gateway", "gw"),
				object("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "m"),
				crd("networking.istio.io", "Gateway"),
				object("v1", "Service", "s"),
			},
			crds:   "CustomResourceDefinition/gateways.networking.istio.io",
			before: "Service/s",
			after:  "Gateway/gw MutatingWebhookConfiguration/m",
		},
		{
			name: "custom resources of CRDs installed before: no wait",
			objs: []*unstructured.Unstructured{
				object("networking.istio.io/v1", "Gateway", "gw"),
				object("networking.istio.io/v1", "VirtualService", "vs"),
			},
			before: "Gateway/gw VirtualService/vs",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := orderAroundCRDs(tt.objs)
			if got := names(a.crds); got != tt.crds {
				t.Errorf("crds %q, want %q", got, tt.crds)
			}
			if got := names(a.before); got != tt.before {
				t.Errorf("before %q, want %q", got, tt.before)
			}
			if got := names(a.after); got != tt.after {
				t.Errorf("after %q, want %q", got, tt.after)
			}
		})
	}
}

// TestTiers: objects in apply order split where their tier changes.
func TestTiers(t *testing.T) {
	objs := Sorted([]*unstructured.Unstructured{
		object("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "m"),
		object("apps/v1", "Deployment", "d"),
		object("rbac.authorization.k8s.io/v1", "RoleBinding", "rb"),
		object("v1", "Namespace", "ns"),
		object("rbac.authorization.k8s.io/v1", "Role", "r"),
		object("v1", "ConfigMap", "c"),
	})
	var got []string
	for _, tier := range tiers(objs) {
		got = append(got, names(tier))
	}
	want := []string{"Namespace/ns", "ConfigMap/c Role/r RoleBinding/rb", "Deployment/d", "MutatingWebhookConfiguration/m"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("tiers %q, want %q", got, want)
	}
}
