package engine

import (
	"encoding/json"
	"fmt"

	"mcplan.io/mcplan/internal/digest"
)

// Fingerprint hashes a step's kind and inputs. Inputs are encoded as JSON,
// whose map keys are sorted, so equal inputs give equal fingerprints on
// every machine. Inputs must never hold secrets' content, only what
// identifies them.
func Fingerprint(kind string, inputs any) (string, error) {
	data, err := json.Marshal(struct {
		Kind   string `json:"kind"`
		Inputs any    `json:"inputs"`
	}{kind, inputs})
	if err != nil {
		return "", fmt.Errorf("fingerprint %s: %w", kind, err)
	}
	return "sha256:" + digest.SHA256Hex(data), nil
}
