package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

// An object the inventory has never held is applied without reading it
// first: the API's answer says whether the apply created it (201) or
// found it there (200). One request instead of two, so a first install
// costs the API server half the round trips. An object found there was
// not mcplan's (mcplan's inventory did not hold it), so the apply made
// mcplan a manager of its fields: it counts as updated.

// rawClient is a REST client for unstructured objects that, unlike the
// dynamic client, gives the HTTP status of an answer.
func rawClient(cfg *rest.Config) (rest.Interface, error) {
	return rest.UnversionedRESTClientFor(dynamic.ConfigFor(cfg))
}

// applyNew applies an object the inventory has never held.
func (c *Client) applyNew(ctx context.Context, o *unstructured.Unstructured) (applied, error) {
	ref := RefOf(o)
	url, err := c.objectPath(ref)
	if err != nil {
		return applied{}, err
	}
	data, err := json.Marshal(o)
	if err != nil {
		return applied{}, fmt.Errorf("%s: %w", ref, err)
	}
	var code int
	raw, err := c.raw.Patch(types.ApplyPatchType).AbsPath(url).
		Param("fieldManager", FieldManager).Param("force", "true").
		Body(data).Do(ctx).StatusCode(&code).Raw()
	if err != nil {
		return applied{}, fmt.Errorf("apply %s: %w", ref, err)
	}
	after := &unstructured.Unstructured{}
	if err := after.UnmarshalJSON(raw); err != nil {
		return applied{}, fmt.Errorf("apply %s: the API's answer: %w", ref, err)
	}
	return applied{changed: true, created: code == http.StatusCreated, after: after}, nil
}

// objectPath is the API path of an object: /api/v1/... for the core
// group, /apis/<group>/<version>/... for the others.
func (c *Client) objectPath(ref Ref) (string, error) {
	m, err := c.mappingOf(ref)
	if err != nil {
		return "", err
	}
	gvr := m.Resource
	p := path.Join("/apis", gvr.Group, gvr.Version)
	if gvr.Group == "" {
		p = path.Join("/api", gvr.Version)
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		p = path.Join(p, "namespaces", ref.Namespace)
	}
	return path.Join(p, gvr.Resource, ref.Name), nil
}
