package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"mcplan.io/mcplan/internal/atomicfile"
)

// Inventory is the list of objects one step applied to one cluster, kept
// in a file under the state directory so that the next apply can delete
// what the plan no longer renders. It names objects only: no content.
type Inventory struct {
	Path string
	// Key, when set, identifies the inputs the objects are rendered from
	// (a digest, cheap to compute without rendering): Apply and Diff
	// then record how they saw the objects as these inputs make them,
	// and Unchanged finds them so (seen.go).
	Key string
	// HandedOver names the fields of its objects that mcplan hands over
	// to another manager once that one changes them (handover.go); nil
	// for none.
	HandedOver HandedOver
}

type inventoryFile struct {
	Objects []Ref `json:"objects"`
}

// Load returns the recorded objects; none when the file does not exist.
func (inv *Inventory) Load() ([]Ref, error) {
	data, err := os.ReadFile(inv.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	var f inventoryFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("inventory %s: %w", inv.Path, err)
	}
	return f.Objects, nil
}

// Save records refs.
func (inv *Inventory) Save(refs []Ref) error {
	if refs == nil {
		refs = []Ref{}
	}
	data, err := json.MarshalIndent(inventoryFile{Objects: refs}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(inv.Path), 0o700); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	if err := atomicfile.Write(inv.Path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("inventory: %w", err)
	}
	return nil
}
