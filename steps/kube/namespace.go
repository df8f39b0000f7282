package kube

import (
	"context"
	"fmt"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
)

// systemManagers are the field managers whose objects a namespace may hold
// and still count as made by mcplan's install: Kubernetes' own controllers
// (the default ServiceAccount, kube-root-ca.crt) and istiod
// (istio-ca-root-cert, its leader-election objects).
func systemManagers() []string {
	return []string{FieldManager, "kube-controller-manager", "kube-apiserver", "pilot-discovery"}
}

// everyNamespace are the objects Kubernetes and istiod put in every
// namespace, whoever's field manager wrote them.
func everyNamespace() []string {
	return []string{"ServiceAccount default", "ConfigMap kube-root-ca.crt", "ConfigMap istio-ca-root-cert"}
}

// derivedKinds are kinds whose objects Kubernetes makes from others
// (events, a Service's endpoints, leases).
func derivedKinds() []string {
	return []string{"Event", "Endpoints", "EndpointSlice", "Lease", "ControllerRevision"}
}

// ForeignObjects lists the objects in namespace ns that a user (or any
// tool but mcplan, Kubernetes' controllers and istiod) made: an object
// with an owner is its owner's, one every field manager of which is in
// systemManagers is not foreign, nor are those of everyNamespace. A namespace mcplan created may be deleted
// only when the list is empty. (nil, nil) when the namespace is gone.
func (c *Client) ForeignObjects(ctx context.Context, ns string) ([]string, error) {
	if _, err := c.Typed.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("get namespace %s: %w", ns, err)
	}
	lists, err := c.Typed.Discovery().ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var foreign []string
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "list") || slices.Contains(derivedKinds(), r.Kind) {
				continue
			}
			objs, err := c.Dynamic.Resource(gv.WithResource(r.Name)).Namespace(ns).List(ctx, metav1.ListOptions{})
			if apierrors.IsNotFound(err) || apierrors.IsMethodNotSupported(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("list %s in %s: %w", r.Name, ns, err)
			}
			for _, o := range objs.Items {
				if len(o.GetOwnerReferences()) > 0 || onlySystemManagers(&o) || slices.Contains(everyNamespace(), r.Kind+" "+o.GetName()) {
					continue
				}
				foreign = append(foreign, r.Kind+" "+ns+"/"+o.GetName())
			}
		}
	}
	slices.Sort(foreign)
	return foreign, nil
}

// onlySystemManagers says whether every field manager of obj is in
// systemManagers (an object without managed fields is not).
func onlySystemManagers(obj metav1.Object) bool {
	mf := obj.GetManagedFields()
	if len(mf) == 0 {
		return false
	}
	system := systemManagers()
	for _, m := range mf {
		if !slices.Contains(system, m.Manager) {
			return false
		}
	}
	return true
}
