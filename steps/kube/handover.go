package kube

import (
	"bytes"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"
)

// Fields handed over: some fields mcplan applies only to start with, and
// another field manager then takes them over with an Update (istiod
// switches its webhook's failurePolicy from the chart's Ignore to Fail);
// from then on the step applies the object without them, so applying
// again changes nothing. Taking a field over removes it from mcplan's
// managedFields entry, which unchangedSince would count as a change of
// what mcplan owns. For the objects whose inventory names such fields
// (Inventory.HandedOver), what was seen keeps mcplan's entry itself, and
// an object whose entry lost exactly such fields, each now owned by
// another manager, and gained none, is still as mcplan would apply it.
// Any other change to mcplan's fields (one taken over that is not handed
// over, one mcplan no longer owns and nobody else does) is still a change.

// HandedOver says, of an object, which of its fields it hands over: a
// test of a field's path (fieldpath.Path, as in managedFields), or nil
// for an object that hands over none.
type HandedOver func(Ref) func(fieldpath.Path) bool

// handsOver is the test of ref's handed-over fields; nil when none.
func (inv *Inventory) handsOver(ref Ref) func(fieldpath.Path) bool {
	if inv == nil || inv.HandedOver == nil {
		return nil
	}
	return inv.HandedOver(ref)
}

// seenOf is how inv records o as seen: with mcplan's managedFields entry
// kept when o hands over fields.
func (inv *Inventory) seenOf(o *unstructured.Unstructured) seenObject {
	s := seenOf(o)
	if inv.handsOver(RefOf(o)) != nil {
		if e := ownEntry(o); e != nil && e.FieldsV1 != nil {
			s.Owned = string(e.FieldsV1.Raw)
		}
	}
	return s
}

// onlyHandedOver reports whether live's mcplan entry differs from the one
// seen only by fields handed over (handed) to another manager: it lost
// at least one, each of them owned by another manager now, and gained
// none.
func onlyHandedOver(live *unstructured.Unstructured, seen seenObject, handed func(fieldpath.Path) bool) bool {
	if handed == nil || seen.Owned == "" {
		return false
	}
	entry := ownEntry(live)
	if entry == nil || entry.FieldsV1 == nil {
		return false
	}
	was, now := fieldSet(seen.Owned), fieldSet(string(entry.FieldsV1.Raw))
	if was == nil || now == nil || !now.Difference(was).Empty() {
		return false
	}
	lost := was.Difference(now).Leaves()
	if lost.Empty() {
		return false
	}
	others := otherEntries(live)
	ok := true
	lost.Iterate(func(p fieldpath.Path) {
		ok = ok && handed(p) && ownedByAny(others, p)
	})
	return ok
}

// ownEntry is mcplan's server-side apply entry of o's managedFields.
func ownEntry(o *unstructured.Unstructured) *metav1.ManagedFieldsEntry {
	for _, m := range o.GetManagedFields() {
		if m.Manager == FieldManager && m.Operation == metav1.ManagedFieldsOperationApply && m.Subresource == "" {
			return &m
		}
	}
	return nil
}

// otherEntries are the field sets of o's other managers (of the object
// itself, not a subresource).
func otherEntries(o *unstructured.Unstructured) []*fieldpath.Set {
	var sets []*fieldpath.Set
	for _, m := range o.GetManagedFields() {
		if m.Manager == FieldManager || m.Subresource != "" || m.FieldsV1 == nil {
			continue
		}
		if s := fieldSet(string(m.FieldsV1.Raw)); s != nil {
			sets = append(sets, s)
		}
	}
	return sets
}

func ownedByAny(sets []*fieldpath.Set, p fieldpath.Path) bool {
	for _, s := range sets {
		if s.Has(p) {
			return true
		}
	}
	return false
}

// fieldSet parses a managedFields entry's fieldsV1; nil when it is not one.
func fieldSet(raw string) *fieldpath.Set {
	s := &fieldpath.Set{}
	if err := s.FromJSON(bytes.NewReader([]byte(raw))); err != nil {
		return nil
	}
	return s
}
