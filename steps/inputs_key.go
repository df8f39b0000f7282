package steps

import (
	"encoding/json"

	"mcplan.io/mcplan/internal/buildid"
	"mcplan.io/mcplan/internal/digest"
)

// inputsKey is the kube.Inventory Key of a step's objects: a digest of
// what they are rendered from (parts, as JSON) and of the build of mcplan
// that renders them, so that a Check whose key is the last one seen can
// trust resourceVersions instead of rendering (kube.Client.Unchanged),
// and a new mcplan renders at least once. "" (no key: always render)
// when parts cannot be encoded.
func inputsKey(parts ...any) string {
	data, err := json.Marshal(struct {
		Build string `json:"build"`
		Parts []any  `json:"parts"`
	}{buildid.ID(), parts})
	if err != nil {
		return ""
	}
	return "sha256:" + digest.SHA256Hex(data)
}
