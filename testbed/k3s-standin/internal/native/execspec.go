package native

import (
	"encoding/json"
	"fmt"
	"os"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/pki"
)

// ExecSubcommand is the hidden subcommand of the k3s binary that turns a
// freshly started copy of the stand-in into a container's process:
// "k3s standin-native-exec <spec file>".
const ExecSubcommand = "standin-native-exec"

// execSpec is what the stand-in hands to the exec helper: the process to
// exec and the bind mounts to make first in the helper's own mount
// namespace.
type execSpec struct {
	Path  string   `json:"path"`
	Args  []string `json:"args"` // argv, Args[0] included
	Env   []string `json:"env"`
	Dir   string   `json:"dir"`
	Binds []bind   `json:"binds"`
	// HostMountNamespace is the stand-in's mount namespace
	// (/proc/self/ns/mnt link text): the helper refuses to mount anything
	// when it is still in it.
	HostMountNamespace string `json:"hostMountNamespace"`
	// NetNS is the pod's network namespace (a bind-mounted nsfs file) the
	// helper enters before it execs; "" for hostNetwork pods.
	NetNS string `json:"netns,omitempty"`
}

// bind mounts Source on Target (made empty when missing: a directory, or
// a file when Source is a file).
type bind struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

func writeSpec(path string, s *execSpec) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode exec spec: %w", err)
	}
	// The spec holds the environment, which may hold secrets.
	return pki.WriteFile(path, b, 0o600)
}

func readSpec(path string) (*execSpec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read exec spec: %w", err)
	}
	var s execSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode exec spec %s: %w", path, err)
	}
	return &s, nil
}
