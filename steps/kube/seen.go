package kube

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/structured-merge-diff/v6/fieldpath"

	"mcplan.io/mcplan/internal/atomicfile"
)

// What a Check reads, beside an inventory, to find a step in sync
// without rendering or dry-running anything: how each of the inventory's
// objects was last seen as mcplan applies it from inputs of one key
// (Inventory.Key): its resourceVersion, and a digest of mcplan's entry
// in its managedFields (the fields mcplan owns, and when it last applied
// them). An object still at that resourceVersion is as it was seen. One
// that moved since but whose mcplan entry is the same was changed only
// in fields mcplan does not own (its status; a webhook's caBundle that
// istiod writes): whoever changes a field mcplan owns takes it over, or
// removes it, so mcplan's entry changes too. Either way applying again
// would change nothing (Client.Unchanged). An object deleted, one whose
// mcplan fields moved, or inputs of another key, and the Check takes the
// long way: render, dry-run the objects that moved, and record what it
// found in sync.
//
// The file is a cache of such facts, not state: a missing, stale or
// damaged one only makes the next Check take the long way. It is kept
// in a folder of its own beside the inventories, so that listing
// inventories never finds it.

// seenFile is the file of what was seen, by object (seenKey).
type seenFile struct {
	Key     string                `json:"key"`
	Objects map[string]seenObject `json:"objects"`
}

// seenObject is how one object was seen.
type seenObject struct {
	ResourceVersion string `json:"rv"`
	// Fields is a digest of mcplan's managedFields entry (ownedFields).
	Fields string `json:"fields"`
	// Owned is that entry's fieldsV1 itself, kept only for an object
	// that hands fields over (handover.go).
	Owned string `json:"owned,omitempty"`
}

// seenOf is how an object is seen now.
func seenOf(o *unstructured.Unstructured) seenObject {
	return seenObject{ResourceVersion: o.GetResourceVersion(), Fields: ownedFields(o)}
}

// ownedFields is a digest of mcplan's entry in an object's managedFields
// (its server-side apply: the fields it owns, the API version and time
// of its last apply); "" without one.
func ownedFields(o *unstructured.Unstructured) string {
	m := ownEntry(o)
	if m == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n", m.APIVersion, m.Time)
	if m.FieldsV1 != nil {
		h.Write(m.FieldsV1.Raw)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// unchangedSince reports whether live is as it was seen: at the same
// resourceVersion, or moved only in fields mcplan does not own or hands
// over (handed, nil when it hands none over; handover.go).
func unchangedSince(live *unstructured.Unstructured, seen seenObject, handed func(fieldpath.Path) bool) bool {
	if live == nil || seen.ResourceVersion == "" {
		return false
	}
	if live.GetResourceVersion() == seen.ResourceVersion {
		return true
	}
	if seen.Fields != "" && ownedFields(live) == seen.Fields {
		return true
	}
	return onlyHandedOver(live, seen, handed)
}

// seenKey names an object across API versions, as Ref.same does.
func seenKey(r Ref) string { return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name }

// seenPath is the file of what was seen of an inventory's objects.
func (inv *Inventory) seenPath() string {
	return filepath.Join(filepath.Dir(inv.Path), "seen", filepath.Base(inv.Path))
}

// loadSeen reads what was seen for inv.Key; nil when nothing was, or
// for another key.
func (inv *Inventory) loadSeen() map[string]seenObject {
	if inv.Key == "" {
		return nil
	}
	data, err := os.ReadFile(inv.seenPath())
	if err != nil {
		return nil
	}
	var f seenFile
	if json.Unmarshal(data, &f) != nil || f.Key != inv.Key {
		return nil
	}
	return f.Objects
}

// saveSeen records resourceVersions seen for inv.Key, merged into what
// was seen for it already (replaced when it was for another key).
func (inv *Inventory) saveSeen(seen map[string]seenObject) error {
	if inv.Key == "" || len(seen) == 0 {
		return nil
	}
	objects := inv.loadSeen()
	if objects == nil {
		objects = map[string]seenObject{}
	}
	for k, rv := range seen {
		objects[k] = rv
	}
	data, err := json.Marshal(seenFile{Key: inv.Key, Objects: objects})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(inv.seenPath()), 0o700); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := atomicfile.Write(inv.seenPath(), data, 0o644); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// forgetSeen removes the file of what was seen (with its inventory).
func (inv *Inventory) forgetSeen() error {
	if err := os.Remove(inv.seenPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}

// readConcurrency bounds the reads of one batch (Client.readAll).
const readConcurrency = 8

// readAll reads objects at once (at most readConcurrency at a time):
// nil for one that does not exist or whose kind is not served.
func (c *Client) readAll(ctx context.Context, refs []Ref) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, len(refs))
	err := atOnce(ctx, len(refs), readConcurrency, func(ctx context.Context, i int) error {
		o, err := c.Get(ctx, refs[i])
		if errors.Is(err, errNoKind) {
			return nil
		}
		out[i] = o
		return err
	})
	return out, err
}

// Unchanged reports whether every object of the inventory is as it was
// seen as mcplan applies it from inputs of inv.Key (unchangedSince),
// reading the objects (at once) and nothing else. It returns
// the live objects, by Ref, either way (nil for missing ones) so that a
// Check can look at their status; with false, which objects moved is
// for Diff to find out.
func (c *Client) Unchanged(ctx context.Context, inv *Inventory) (bool, map[Ref]*unstructured.Unstructured, error) {
	seen := inv.loadSeen()
	if seen == nil {
		return false, nil, nil
	}
	refs, err := inv.Load()
	if err != nil || len(refs) == 0 || len(refs) != len(seen) {
		return false, nil, err
	}
	live, err := c.readAll(ctx, refs)
	if err != nil {
		return false, nil, err
	}
	byRef := make(map[Ref]*unstructured.Unstructured, len(refs))
	unchanged := true
	for i, ref := range refs {
		byRef[ref] = live[i]
		if !unchangedSince(live[i], seen[seenKey(ref)], inv.handsOver(ref)) {
			unchanged = false
		}
	}
	return unchanged, byRef, nil
}
