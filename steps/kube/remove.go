package kube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Removed is what RemoveInventory did.
type Removed struct {
	// Deleted are the objects deleted.
	Deleted []Ref
	// Kept are the objects left in place, each with why.
	Kept []string
	// Shared counts the objects left in place because another inventory
	// lists them too, by that inventory.
	Shared map[string]int
}

// String is "deleted 12, kept 1 (why), 23 also in inventory x".
func (r Removed) String() string {
	s := fmt.Sprintf("deleted %d", len(r.Deleted))
	if len(r.Kept) > 0 {
		s += fmt.Sprintf(", kept %d (%s)", len(r.Kept), strings.Join(r.Kept, "; "))
	}
	sets := make([]string, 0, len(r.Shared))
	for set := range r.Shared {
		sets = append(sets, set)
	}
	slices.Sort(sets)
	for _, set := range sets {
		s += fmt.Sprintf(", %d also in inventory %s (kept)", r.Shared[set], set)
	}
	return s
}

// RemoveInventory deletes what an inventory lists, in the reverse of apply
// order (webhooks first, CRDs last), then the inventory file. Only what
// mcplan made goes: an object mcplan's field manager never wrote is kept;
// a Namespace is kept (Namespace removal is its own decision, see
// NamespaceHoldsOnly); a CRD is kept while any custom resource of it
// exists, since deleting it would delete those; an object that one of
// keep also lists stays (another step applied it too). Nothing left
// succeeds.
func (c *Client) RemoveInventory(ctx context.Context, inv *Inventory, keep ...*Inventory) (Removed, error) {
	var out Removed
	refs, err := inv.Load()
	if err != nil {
		return out, err
	}
	alsoIn := map[Ref]string{}
	for _, k := range keep {
		kr, err := k.Load()
		if err != nil {
			return out, err
		}
		for _, r := range kr {
			r.Version = "" // the same object, whichever version listed it
			alsoIn[r] = strings.TrimSuffix(filepath.Base(k.Path), ".json")
		}
	}
	slices.SortStableFunc(refs, func(a, b Ref) int { return kindOrder(b.Kind) - kindOrder(a.Kind) })
	for _, ref := range refs {
		unversioned := ref
		unversioned.Version = ""
		if set, ok := alsoIn[unversioned]; ok {
			if out.Shared == nil {
				out.Shared = map[string]int{}
			}
			out.Shared[set]++
			continue
		}
		kept, err := c.removeOne(ctx, ref)
		if err != nil {
			return out, err
		}
		if kept != "" {
			out.Kept = append(out.Kept, ref.String()+": "+kept)
			continue
		}
		out.Deleted = append(out.Deleted, ref)
	}
	if err := os.Remove(inv.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return out, fmt.Errorf("inventory: %w", err)
	}
	return out, inv.forgetSeen()
}

// removeOne deletes one object of an inventory, or says why it stays.
func (c *Client) removeOne(ctx context.Context, ref Ref) (kept string, err error) {
	if ref.Kind == "Namespace" {
		return "a namespace is removed only when it holds nothing else", nil
	}
	o, err := c.Get(ctx, ref)
	if errors.Is(err, errNoKind) {
		return "", nil // its kind is gone, so is the object
	}
	if err != nil || o == nil {
		return "", err
	}
	if !ManagedByMcplan(o) {
		return "mcplan did not make it", nil
	}
	if ref.Kind == "CustomResourceDefinition" {
		n, err := c.customResources(ctx, o.GetName())
		if err != nil {
			return "", err
		}
		if n > 0 {
			return "custom resources of it exist", nil
		}
	}
	if _, err := c.Delete(ctx, ref); err != nil {
		return "", err
	}
	return "", nil
}

// customResources says whether any object of a CRD exists (0 or 1: it
// stops at the first).
func (c *Client) customResources(ctx context.Context, crd string) (int, error) {
	def, err := c.Get(ctx, Ref{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: crd})
	if err != nil || def == nil {
		return 0, err
	}
	group, _, _ := unstructured.NestedString(def.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(def.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(def.Object, "spec", "versions")
	for _, v := range versions {
		vm, _ := v.(map[string]any)
		if served, _ := vm["served"].(bool); !served {
			continue
		}
		name, _ := vm["name"].(string)
		list, err := c.Dynamic.Resource(schema.GroupVersionResource{Group: group, Version: name, Resource: plural}).List(ctx, metav1.ListOptions{Limit: 1})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("list %s: %w", crd, err)
		}
		return len(list.Items), nil
	}
	return 0, nil
}
