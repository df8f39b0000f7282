package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// Ref names an object: enough to find it again, nothing of its content.
type Ref struct {
	Group     string `json:"group,omitempty"`
	Version   string `json:"version"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// RefOf is the Ref of an object.
func RefOf(o *unstructured.Unstructured) Ref {
	gvk := o.GroupVersionKind()
	return Ref{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// GVK is the group, version and kind of the object.
func (r Ref) GVK() schema.GroupVersionKind {
	return schema.GroupVersionKind{Group: r.Group, Version: r.Version, Kind: r.Kind}
}

// String is "Kind namespace/name", or "Kind name" for cluster objects.
func (r Ref) String() string {
	if r.Namespace == "" {
		return r.Kind + " " + r.Name
	}
	return r.Kind + " " + r.Namespace + "/" + r.Name
}

// same ignores the version: an object moved to another API version is the
// same object.
func (r Ref) same(o Ref) bool {
	return r.Group == o.Group && r.Kind == o.Kind && r.Namespace == o.Namespace && r.Name == o.Name
}

// kindOrder ranks kinds for applying: CRDs, namespaces and what others
// refer to first; webhooks last, so they never call a service that is not
// there yet. Unlisted kinds (custom resources) come before the webhooks.
func kindOrder(kind string) int {
	order := []string{
		"CustomResourceDefinition", "Namespace", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
		"ServiceAccount", "Secret", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"Service", "EndpointSlice", "Endpoints", "PodDisruptionBudget", "DaemonSet", "Deployment", "StatefulSet",
		"HorizontalPodAutoscaler",
	}
	if i := slices.Index(order, kind); i >= 0 {
		return i
	}
	switch kind {
	case "MutatingWebhookConfiguration":
		return len(order) + 2
	case "ValidatingWebhookConfiguration":
		return len(order) + 3
	}
	return len(order) + 1
}

// applyTier groups kinds whose objects Apply sends at once: objects of
// one tier may refer to each other (a RoleBinding to its Role, a
// Deployment to its ServiceAccount) but never need each other to exist
// first; CRDs (waited for until Established) and namespaces come before
// everything, workloads after what they mount and run as, webhooks last.
func applyTier(kind string) int {
	switch o := kindOrder(kind); {
	case kind == "CustomResourceDefinition":
		return 0
	case o <= kindOrder("PodSecurityPolicy"):
		return 1
	case o <= kindOrder("PodDisruptionBudget"):
		return 2
	case kind == "MutatingWebhookConfiguration" || kind == "ValidatingWebhookConfiguration":
		return webhookTier
	}
	return 3
}

// webhookTier is the applyTier of webhook configurations: last.
const webhookTier = 4

// tiers splits objects in apply order into their applyTiers.
func tiers(sorted []*unstructured.Unstructured) [][]*unstructured.Unstructured {
	var out [][]*unstructured.Unstructured
	for i, o := range sorted {
		if i == 0 || applyTier(o.GetKind()) != applyTier(sorted[i-1].GetKind()) {
			out = append(out, nil)
		}
		out[len(out)-1] = append(out[len(out)-1], o)
	}
	return out
}

// aroundCRDs is an apply split around the wait for its CRDs: the CRDs,
// what can go before they are Established (everything but the custom
// resources of those CRDs, and, when there are such, the webhooks, which
// go last), and the rest.
type aroundCRDs struct {
	crds, before, after []*unstructured.Unstructured
}

// orderAroundCRDs splits objs around the wait for their CRDs.
func orderAroundCRDs(objs []*unstructured.Unstructured) aroundCRDs {
	var a aroundCRDs
	defined := map[schema.GroupKind]bool{}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			a.crds = append(a.crds, o)
			group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
			kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
			defined[schema.GroupKind{Group: group, Kind: kind}] = true
		}
	}
	custom := func(o *unstructured.Unstructured) bool { return defined[o.GroupVersionKind().GroupKind()] }
	anyCustom := slices.ContainsFunc(objs, custom)
	for _, o := range objs {
		switch {
		case o.GetKind() == "CustomResourceDefinition":
		case custom(o), anyCustom && applyTier(o.GetKind()) == webhookTier:
			a.after = append(a.after, o)
		default:
			a.before = append(a.before, o)
		}
	}
	return a
}

// applyConcurrency bounds the objects of one tier sent at once.
const applyConcurrency = 8

// Sorted returns the objects in apply order, stable within a kind.
func Sorted(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := slices.Clone(objs)
	slices.SortStableFunc(out, func(a, b *unstructured.Unstructured) int {
		return kindOrder(a.GetKind()) - kindOrder(b.GetKind())
	})
	return out
}

// Result says what an Apply did.
type Result struct {
	Created, Updated, Unchanged, Pruned []Ref
}

// Changed reports whether anything was created, updated or pruned.
func (r Result) Changed() bool {
	return len(r.Created)+len(r.Updated)+len(r.Pruned) > 0
}

// String summarises the result in one line.
func (r Result) String() string {
	return fmt.Sprintf("%d created, %d updated, %d unchanged, %d pruned",
		len(r.Created), len(r.Updated), len(r.Unchanged), len(r.Pruned))
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Inventory, when set, records what was applied, and objects of its
	// previous content that are gone from objs are deleted.
	Inventory *Inventory
	// CRDTimeout bounds the wait for applied CRDs to be Established.
	// Zero means one minute.
	CRDTimeout time.Duration
	// Logf receives one line per created, updated or pruned object.
	Logf func(string, ...any)
	// WaitCurrent, when set, bounds a last wait, once everything is
	// applied, pruned and recorded, for every applied object to be
	// Current by kstatus (Client.WaitCurrent): a user's StatefulSet
	// ready, a custom resource's Ready condition True. Zero: no wait.
	WaitCurrent time.Duration
	// Wait, when set, runs Apply's waits (CRDs Established, objects
	// Current), saying what each waits for: a step passes
	// engine.Env.Wait.
	Wait func(what string, wait func() error) error
	// Applied, when set, is called with each object's Ref once its tier
	// is applied (created, updated or found unchanged), in apply order;
	// Apply goes on with the rest once it returns, so it must not block:
	// a caller can begin waiting for a workload while later objects are
	// sent.
	Applied func(Ref)
}

// wait runs one of Apply's waits through Wait when set.
func (o ApplyOptions) wait(what string, wait func() error) error {
	if o.Wait == nil {
		return wait()
	}
	return o.Wait(what, wait)
}

// Apply applies objects with server-side apply (field manager mcplan,
// forcing conflicts: mcplan owns what it renders), in tiers of
// kindOrder: first what needs none of objs' CRDs, then the CRDs, waited
// for until Established, then their custom resources. An object whose
// server-side apply changes nothing keeps its resourceVersion and counts
// as unchanged.
// With opts.WaitCurrent, Apply then waits for every object to be Current.
func (c *Client) Apply(ctx context.Context, objs []*unstructured.Unstructured, opts ApplyOptions) (Result, error) {
	logf := opts.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	var res Result
	refs := Refs(objs)
	var previous []Ref
	if opts.Inventory != nil {
		var err error
		if previous, err = opts.Inventory.Load(); err != nil {
			return res, err
		}
		// Record the union first: if this apply stops half way, the next
		// one still knows every object that may exist.
		if err := opts.Inventory.Save(union(previous, refs)); err != nil {
			return res, err
		}
	}

	timeout := opts.CRDTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	known := func(ref Ref) bool { return opts.Inventory == nil || slices.ContainsFunc(previous, ref.same) }
	seen := map[string]seenObject{}
	applyTiers := func(ctx context.Context, objs []*unstructured.Unstructured) error {
		for _, tier := range tiers(Sorted(objs)) {
			outcomes, err := c.applyAll(ctx, tier, known)
			if err != nil {
				return err
			}
			for i, o := range tier {
				ref, out := RefOf(o), outcomes[i]
				switch {
				case out.created:
					res.Created = append(res.Created, ref)
					logf("created %s", ref)
				case out.changed:
					res.Updated = append(res.Updated, ref)
					logf("updated %s", ref)
				default:
					res.Unchanged = append(res.Unchanged, ref)
				}
				seen[seenKey(ref)] = opts.Inventory.seenOf(out.after)
			}
			if opts.Applied != nil {
				for _, o := range tier {
					opts.Applied(RefOf(o))
				}
			}
		}
		return nil
	}
	// What needs no CRD goes first, workloads among it, so that their
	// rollout (what a caller waits for longest) begins before the API
	// server takes on the CRDs, its heaviest writes here; then the CRDs,
	// the wait for them to be Established, the custom resources they
	// define and, when there are any, the webhooks after them.
	order := orderAroundCRDs(objs)
	if err := applyTiers(ctx, order.before); err != nil {
		return res, err
	}
	if len(order.crds) > 0 {
		if err := applyTiers(ctx, order.crds); err != nil {
			return res, err
		}
		names := make([]string, len(order.crds))
		for i, o := range order.crds {
			names[i] = o.GetName()
		}
		established := func() error { return c.WaitCRDsEstablished(ctx, names, timeout, logf) }
		if err := opts.wait(fmt.Sprintf("%d CRDs Established", len(names)), established); err != nil {
			return res, err
		}
	}
	if err := applyTiers(ctx, order.after); err != nil {
		return res, err
	}

	if opts.Inventory != nil {
		for _, old := range previous {
			if slices.ContainsFunc(refs, old.same) {
				continue
			}
			if !prunable(old) {
				logf("kept %s (no longer rendered; mcplan does not delete %ss)", old, old.Kind)
				continue
			}
			deleted, err := c.Delete(ctx, old)
			if err != nil {
				return res, fmt.Errorf("prune: %w", err)
			}
			if deleted {
				res.Pruned = append(res.Pruned, old)
				logf("pruned %s", old)
			}
		}
		if err := opts.Inventory.Save(refs); err != nil {
			return res, err
		}
		if err := opts.Inventory.saveSeen(seen); err != nil {
			return res, err
		}
	}
	if opts.WaitCurrent > 0 {
		current := func() error { return c.WaitCurrent(ctx, refs, opts.WaitCurrent, logf) }
		if err := opts.wait(fmt.Sprintf("%d objects Current", len(refs)), current); err != nil {
			return res, err
		}
	}
	return res, nil
}

// applied is what applying one object did.
type applied struct {
	changed, created bool
	after            *unstructured.Unstructured
}

// applyAll applies the objects of one tier at once (at most
// applyConcurrency at a time); the first error stops the rest. known
// says whether an object may exist already (applyOne).
func (c *Client) applyAll(ctx context.Context, objs []*unstructured.Unstructured, known func(Ref) bool) ([]applied, error) {
	out := make([]applied, len(objs))
	err := atOnce(ctx, len(objs), applyConcurrency, func(ctx context.Context, i int) error {
		var err error
		if known(RefOf(objs[i])) {
			out[i], err = c.applyOne(ctx, objs[i])
		} else {
			out[i], err = c.applyNew(ctx, objs[i])
		}
		return err
	})
	return out, err
}

// prunable says whether an object that is no longer rendered may be
// deleted. Namespaces and CRDs are kept: deleting them deletes everything
// in them, including what users made.
func prunable(r Ref) bool {
	return r.Kind != "Namespace" && r.Kind != "CustomResourceDefinition"
}

// applyOne applies one object and says whether it was changed or created.
func (c *Client) applyOne(ctx context.Context, o *unstructured.Unstructured) (applied, error) {
	ref := RefOf(o)
	ri, err := c.resource(ref)
	if err != nil {
		return applied{}, err
	}
	before, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		before = nil
	case err != nil:
		return applied{}, fmt.Errorf("get %s: %w", ref, err)
	}
	data, err := json.Marshal(o)
	if err != nil {
		return applied{}, fmt.Errorf("%s: %w", ref, err)
	}
	force := true
	after, err := ri.Patch(ctx, ref.Name, types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: &force})
	if err != nil {
		return applied{}, fmt.Errorf("apply %s: %w", ref, err)
	}
	if before == nil {
		return applied{changed: true, created: true, after: after}, nil
	}
	changed := after.GetResourceVersion() != before.GetResourceVersion() && !bookkeepingOnly(before, after)
	return applied{changed: changed, after: after}, nil
}

// bookkeepingOnly says whether after differs from before only in what the
// API server keeps for itself: the resourceVersion and other managers'
// managedFields, mcplan's own entry the same. An object applied with no
// field of mcplan's own (a bare Namespace) has no managedFields at all,
// and the next apply gives its fields to a "before-first-apply" manager:
// nothing of the object changed.
func bookkeepingOnly(before, after *unstructured.Unstructured) bool {
	if !apiequality.Semantic.DeepEqual(ownEntry(before), ownEntry(after)) {
		return false
	}
	b, a := before.DeepCopy(), after.DeepCopy()
	for _, o := range []*unstructured.Unstructured{b, a} {
		o.SetResourceVersion("")
		o.SetManagedFields(nil)
	}
	return apiequality.Semantic.DeepEqual(b.Object, a.Object)
}

// Delete deletes an object (background propagation) and says whether it
// was there.
func (c *Client) Delete(ctx context.Context, ref Ref) (bool, error) {
	ri, err := c.resource(ref)
	if err != nil {
		return false, err
	}
	policy := metav1.DeletePropagationBackground
	err = ri.Delete(ctx, ref.Name, metav1.DeleteOptions{PropagationPolicy: &policy})
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("delete %s: %w", ref, err)
	}
	return true, nil
}

// ObjectDiff is how one object differs from what Apply would make of it.
type ObjectDiff struct {
	// Object names the object and what Apply would do to it: "+ Kind
	// namespace/name" for a missing object (with " (its kind is not
	// installed yet)" when its kind is missing too), "~ ..." for a changed
	// one, "- ... (no longer rendered)" for one Apply would prune.
	Object string
	// Fields are a changed object's changed fields, one per entry, as
	// fieldChanges words them ("~ spec.replicas: 1 → 2"). Secret values
	// are never shown.
	Fields []string
}

// Diff says, without changing anything, how the live objects differ from
// objs: missing objects, objects a server-side apply would change (found
// by a dry-run apply) with their changed fields, and objects of the
// inventory that Apply would prune. No differences means an Apply would
// change nothing. Secret values are never shown. Objects are read at
// once; one unchanged since it was seen as these inputs make it
// (Inventory.Key, unchangedSince) is not dry-run, and those found as
// Apply would make them are recorded so (seen.go).
func (c *Client) Diff(ctx context.Context, objs []*unstructured.Unstructured, inv *Inventory) ([]ObjectDiff, error) {
	sorted := Sorted(objs)
	var seen map[string]seenObject
	if inv != nil {
		seen = inv.loadSeen()
	}
	results := make([]diffResult, len(sorted))
	err := atOnce(ctx, len(sorted), readConcurrency, func(ctx context.Context, i int) error {
		var err error
		ref := RefOf(sorted[i])
		results[i], err = c.diffOne(ctx, sorted[i], seen[seenKey(ref)], inv)
		return err
	})
	if err != nil {
		return nil, err
	}
	var diffs []ObjectDiff
	var refs []Ref
	inSync := map[string]seenObject{}
	for i, o := range sorted {
		ref := RefOf(o)
		refs = append(refs, ref)
		if d := results[i].diff; d != nil {
			diffs = append(diffs, *d)
			continue
		}
		inSync[seenKey(ref)] = results[i].seen
	}
	if inv != nil {
		previous, err := inv.Load()
		if err != nil {
			return nil, err
		}
		for _, old := range previous {
			if slices.ContainsFunc(refs, old.same) || !prunable(old) {
				continue
			}
			ri, err := c.resource(old)
			if err != nil {
				continue // its kind is gone, so is the object
			}
			if _, err := ri.Get(ctx, old.Name, metav1.GetOptions{}); err == nil {
				diffs = append(diffs, ObjectDiff{Object: "- " + old.String() + " (no longer rendered)"})
			} else if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("get %s: %w", old, err)
			}
		}
		if err := inv.saveSeen(inSync); err != nil {
			return nil, err
		}
	}
	return diffs, nil
}

// diffResult is how one object differs (diff), or nil with how it was
// seen in sync.
type diffResult struct {
	diff *ObjectDiff
	seen seenObject
}

// diffOne is how one object differs ("+" missing or "~" changed, with its
// changed fields), or nil when an Apply would not change it: known so
// when it is unchanged since it was seen so, else found by a dry-run
// apply.
func (c *Client) diffOne(ctx context.Context, o *unstructured.Unstructured, seen seenObject, inv *Inventory) (diffResult, error) {
	ref := RefOf(o)
	ri, err := c.resource(ref)
	if err != nil {
		if errors.Is(err, errNoKind) {
			return diffResult{diff: &ObjectDiff{Object: "+ " + ref.String() + " (its kind is not installed yet)"}}, nil
		}
		return diffResult{}, err
	}
	live, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return diffResult{diff: &ObjectDiff{Object: "+ " + ref.String()}}, nil
	}
	if err != nil {
		return diffResult{}, fmt.Errorf("get %s: %w", ref, err)
	}
	if unchangedSince(live, seen, inv.handsOver(ref)) {
		return diffResult{seen: inv.seenOf(live)}, nil
	}
	data, err := json.Marshal(o)
	if err != nil {
		return diffResult{}, fmt.Errorf("%s: %w", ref, err)
	}
	force := true
	dry, err := ri.Patch(ctx, ref.Name, types.ApplyPatchType, data, metav1.PatchOptions{
		FieldManager: FieldManager, Force: &force, DryRun: []string{metav1.DryRunAll},
	})
	if err != nil {
		return diffResult{}, fmt.Errorf("dry-run apply %s: %w", ref, err)
	}
	before, after := comparable(live), comparable(dry)
	if apiequality.Semantic.DeepEqual(before, after) {
		return diffResult{seen: inv.seenOf(live)}, nil
	}
	return diffResult{diff: &ObjectDiff{Object: "~ " + ref.String(), Fields: fieldChanges(ref.Kind, before, after)}}, nil
}

// comparable drops what changes without the object changing: status,
// bookkeeping and managed-field timestamps.
func comparable(o *unstructured.Unstructured) map[string]any {
	c := o.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	unstructured.RemoveNestedField(c.Object, "metadata", "managedFields")
	unstructured.RemoveNestedField(c.Object, "metadata", "resourceVersion")
	unstructured.RemoveNestedField(c.Object, "metadata", "generation")
	return c.Object
}

func union(a, b []Ref) []Ref {
	out := slices.Clone(a)
	for _, r := range b {
		if !slices.ContainsFunc(out, r.same) {
			out = append(out, r)
		}
	}
	return out
}

// Get reads an object; (nil, nil) when it does not exist.
func (c *Client) Get(ctx context.Context, ref Ref) (*unstructured.Unstructured, error) {
	ri, err := c.resource(ref)
	if err != nil {
		return nil, err
	}
	o, err := ri.Get(ctx, ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", ref, err)
	}
	return o, nil
}
