package testbed

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Manifest records everything a run made. It is rewritten after each step,
// so a run that crashed halfway still tells what it had made; cleanup does
// not depend on it (leftovers are also found by their names), it only
// adds the pids it lists.
type Manifest struct {
	Prefix    string    `json:"prefix"`
	Kind      Kind      `json:"kind"`
	Created   time.Time `json:"created"`
	OwnerPID  int       `json:"owner_pid"`
	Dir       string    `json:"dir"`
	Subnet    string    `json:"subnet,omitempty"`
	Bridge    string    `json:"bridge,omitempty"`
	Rootfs    string    `json:"rootfs,omitempty"`
	Hosts     []Host    `json:"hosts"`
	Links     []string  `json:"links"`
	Netns     []string  `json:"netns"`
	Mounts    []string  `json:"mounts"`
	PIDs      []int     `json:"pids"`
	Machines  []string  `json:"machines"`
	ClientKey string    `json:"client_key,omitempty"`
	KnownHost string    `json:"known_hosts,omitempty"`
}

const manifestFile = "manifest.json"

// save writes m to dir/manifest.json atomically.
func (m *Manifest) save() error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	path := filepath.Join(m.Dir, manifestFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// readManifest reads the manifest of the run in dir.
func readManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestFile))
	if err != nil {
		return nil, err
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", dir, err)
	}
	return &m, nil
}
