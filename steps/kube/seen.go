package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sync/errgroup"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/internal/atomicfile"
)

// What a Check reads, beside an inventory, to find a step in sync
// without rendering or dry-running anything: the resourceVersion at
// which each of the inventory's objects was last seen as mcplan applies
// it from inputs of one key (Inventory.Key). That is a fact that stays
// true, since a resourceVersion names one version of one object: when
// the step's inputs have the same key and every object still has the
// resourceVersion it was seen at, applying again would change nothing
// (Client.Unchanged). An object changed by anyone since (its
// resourceVersion moved), deleted, or an input changed (another key),
// and the Check takes the long way: render, dry-run the objects that
// moved, and record what it found in sync.
//
// The file is a cache of such facts, not state: a missing, stale or
// damaged one only makes the next Check take the long way. It is kept
// in a folder of its own beside the inventories, so that listing
// inventories never finds it.

// seenFile is the file of what was seen: resourceVersions by object
// (seenKey).
type seenFile struct {
	Key     string            `json:"key"`
	Objects map[string]string `json:"objects"`
}

// seenKey names an object across API versions, as Ref.same does.
func seenKey(r Ref) string { return r.Group + "/" + r.Kind + "/" + r.Namespace + "/" + r.Name }

// seenPath is the file of what was seen of an inventory's objects.
func (inv *Inventory) seenPath() string {
	return filepath.Join(filepath.Dir(inv.Path), "seen", filepath.Base(inv.Path))
}

// loadSeen reads what was seen for inv.Key; nil when nothing was, or
// for another key.
func (inv *Inventory) loadSeen() map[string]string {
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
func (inv *Inventory) saveSeen(seen map[string]string) error {
	if inv.Key == "" || len(seen) == 0 {
		return nil
	}
	objects := inv.loadSeen()
	if objects == nil {
		objects = map[string]string{}
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
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for i, ref := range refs {
		g.Go(func() error {
			o, err := c.Get(ctx, ref)
			if errors.Is(err, errNoKind) {
				return nil
			}
			out[i] = o
			return err
		})
	}
	return out, g.Wait()
}

// Unchanged reports whether every object of the inventory is still at
// the resourceVersion it was seen at as mcplan applies it from inputs of
// inv.Key, reading the objects (at once) and nothing else. It returns
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
		if live[i] == nil || seen[seenKey(ref)] != live[i].GetResourceVersion() {
			unchanged = false
		}
	}
	return unchanged, byRef, nil
}

// Settle records, after an Apply's waits (CRDs Established,
// Deployments Available), the resourceVersions of applied objects whose
// later changes were only to their status: status and bookkeeping aside
// (comparable), they are as the apply left them.
// A step calls it once it waited for what it applied (res is Apply's).
func (c *Client) Settle(ctx context.Context, inv *Inventory, res Result) error {
	applied := res.applied
	if inv == nil || inv.Key == "" || len(applied) == 0 {
		return nil
	}
	refs := make([]Ref, 0, len(applied))
	for ref := range applied {
		refs = append(refs, ref)
	}
	live, err := c.readAll(ctx, refs)
	if err != nil {
		return err
	}
	seen := map[string]string{}
	for i, ref := range refs {
		after := applied[ref]
		switch {
		case live[i] == nil:
		case live[i].GetResourceVersion() == after.GetResourceVersion():
			seen[seenKey(ref)] = after.GetResourceVersion()
		case apiequality.Semantic.DeepEqual(comparable(live[i]), comparable(after)):
			seen[seenKey(ref)] = live[i].GetResourceVersion()
		}
	}
	return inv.saveSeen(seen)
}
