package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/atomicfile"
	"mcplan.io/mcplan/internal/digest"
)

// savedPlanFormat marks a saved plan (mcplan plan -out FILE): apply and
// show tell one from a plan file by it, not by the file's name.
const savedPlanFormat = "mcplan-saved-plan"

// savedPlanVersion is the version of the saved plan format this mcplan
// writes and reads.
const savedPlanVersion = 1

// savedPlan is what plan -out writes: the decisions of one plan and what
// they were made from. It holds nothing plan -o json does not print, plus
// the steps' input fingerprints (which the state holds too), hashes,
// serials and flags: never a secret.
type savedPlan struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Mcplan is the build of the mcplan that made it: only that build
	// applies it.
	Mcplan string         `json:"mcplan"`
	Plan   savedPlanFile  `json:"plan"`
	State  savedPlanState `json:"state"`
	Flags  savedPlanFlags `json:"flags"`
	// Fingerprints are, by step ID, those of the inputs each decision
	// was made for.
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
	// Report is the plan, as plan -o json prints it.
	Report reportJSON `json:"report"`
}

// savedPlanFile is the plan file a saved plan was made from. The loader
// reads no other file.
type savedPlanFile struct {
	Path   string `json:"path"` // absolute
	SHA256 string `json:"sha256"`
}

// savedPlanState is the state a saved plan was made from.
type savedPlanState struct {
	// Lineage is "" when the state was never written (or last written
	// by an older mcplan).
	Lineage string `json:"lineage,omitempty"`
	Serial  int64  `json:"serial"`
}

// savedPlanFlags are the flags that shaped the plan's graph and
// decisions; apply of the saved plan uses them, and takes none of its
// own.
type savedPlanFlags struct {
	Targets   []string `json:"targets,omitempty"`
	Replace   []string `json:"replace,omitempty"`
	Destroy   bool     `json:"destroy,omitempty"`
	Offline   bool     `json:"offline,omitempty"`
	Force     bool     `json:"force,omitempty"`
	NoNewPins bool     `json:"noNewPins,omitempty"`
}

// newSavedPlan is the saved plan of a plan's report rep, made by build
// from the plan file with digest planSHA256 and the state in store.
func newSavedPlan(build build, planPath, planSHA256 string, store *engine.Store, flags savedPlanFlags, rep *engine.Report) (*savedPlan, error) {
	abs, err := filepath.Abs(planPath)
	if err != nil {
		return nil, fmt.Errorf("save plan: %w", err)
	}
	sp := &savedPlan{
		Format: savedPlanFormat, Version: savedPlanVersion, Mcplan: build.String(),
		Plan:  savedPlanFile{Path: abs, SHA256: planSHA256},
		State: savedPlanState{Lineage: store.Lineage(), Serial: store.Serial()},
		Flags: flags, Fingerprints: map[string]string{}, Report: newReportJSON(rep),
	}
	for _, s := range rep.Steps {
		sp.Fingerprints[s.ID] = s.Fingerprint
	}
	return sp, nil
}

// write writes the saved plan to path, 0600.
func (sp *savedPlan) write(path string) error {
	data, err := json.MarshalIndent(sp, "", "  ")
	if err != nil {
		return fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("save plan: %w", err)
	}
	return nil
}

// readSavedPlan reads the saved plan at path. It returns nil and no error
// when the file is no saved plan (a plan file), telling them apart by the
// format marker, or cannot be read (loading it as a plan says why).
func readSavedPlan(path string) (*savedPlan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	var marker struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if json.Unmarshal(data, &marker) != nil || marker.Format != savedPlanFormat {
		return nil, nil
	}
	if marker.Version != savedPlanVersion {
		return nil, fmt.Errorf("read saved plan %s: format version %d, this mcplan reads version %d: make the plan again with this mcplan", path, marker.Version, savedPlanVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var sp savedPlan
	if err := dec.Decode(&sp); err != nil {
		return nil, fmt.Errorf("read saved plan %s: %w", path, err)
	}
	return &sp, nil
}

// report is the saved plan's report as the dry run made it, for
// rendering and for its Replay.
func (sp *savedPlan) report() *engine.Report {
	r := sp.Report
	rep := &engine.Report{Forgotten: r.Forgotten, Removing: r.Removing}
	for _, s := range r.Steps {
		rep.Steps = append(rep.Steps, engine.StepResult{
			ID: s.ID, Kind: s.Kind, Fingerprint: sp.Fingerprints[s.ID], Outcome: engine.EventType(s.Outcome),
			Decision: engine.Decision{Action: s.Action, Reason: s.Reason, Details: s.Details},
		})
	}
	for _, rm := range r.Removals {
		rep.Removals = append(rep.Removals, engine.RemovalResult{
			ID: rm.ID, Kind: rm.Kind, Removes: rm.Removes, HasRemover: slices.Contains(r.Removing, rm.ID), Outcome: engine.EventType(rm.Outcome),
		})
	}
	return rep
}

// checkCurrent refuses to apply a saved plan that another mcplan made,
// whose plan file changed, or whose state moved since: its decisions
// were made from what is no longer there.
func (sp *savedPlan) checkCurrent(path string, build build, planSHA256 string, store *engine.Store) error {
	switch lineage, serial := store.Lineage(), store.Serial(); {
	case sp.Mcplan != build.String():
		return fmt.Errorf("%s: saved plan was made by mcplan %s, this is mcplan %s: make the plan again with this one", path, sp.Mcplan, build)
	case planSHA256 != sp.Plan.SHA256:
		return fmt.Errorf("%s: saved plan is stale: the plan file %s changed since (sha256 %s, was %s): make the plan again",
			path, sp.Plan.Path, digest.Short(planSHA256), digest.Short(sp.Plan.SHA256))
	case sp.State.Lineage != "" && lineage != sp.State.Lineage, serial == sp.State.Serial && lineage != sp.State.Lineage:
		return fmt.Errorf("%s: saved plan is for another state: it was made for the state of lineage %q, %s is of lineage %q", path, sp.State.Lineage, store.Path(), lineage)
	case serial != sp.State.Serial:
		return fmt.Errorf("%s: saved plan is stale: state serial was %d, is now %d (%s was written since): make the plan again", path, sp.State.Serial, serial, store.Path())
	}
	return nil
}
