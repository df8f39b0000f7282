package progress

import (
	"fmt"
	"io"
	"strings"

	"mcplan.io/mcplan/engine"
)

// PlanView says how a plan is rendered.
type PlanView struct {
	// Offline is true when the live state was not read.
	Offline bool
	// Targeted is true when --target limited the graph.
	Targeted bool
	// Full shows every changed field of each object; otherwise at most
	// fieldsShown per object.
	Full bool
	// Destroy is true for plan --destroy: the removals are the plan.
	Destroy bool
}

// fieldsShown is how many field lines of one object plan shows without
// --full: Istio's objects are big.
const fieldsShown = 3

// fieldIndent puts an object's field lines under the object's line.
const fieldIndent = "    "

// detailLines are a step's details as plan prints them: each object's
// line, then its changed fields indented under it, at most fieldsShown of
// them unless full.
func detailLines(details []engine.Change, full bool) []string {
	var out []string
	for _, c := range details {
		out = append(out, c.Object)
		shown := c.Fields
		if !full && len(shown) > fieldsShown {
			shown = shown[:fieldsShown]
		}
		for _, f := range shown {
			out = append(out, fieldIndent+f)
		}
		if hidden := len(c.Fields) - len(shown); hidden > 0 {
			out = append(out, fmt.Sprintf("%s... %d more changed fields (plan --full shows them)", fieldIndent, hidden))
		}
	}
	return out
}

// WritePlan renders a dry-run report as Terraform renders a plan: one line
// per step with +, ~ or =, the reason, then a summary line.
func WritePlan(w io.Writer, rep *engine.Report, view PlanView) {
	width := 0
	for _, s := range rep.Steps {
		width = max(width, len(s.ID))
	}
	for _, r := range rep.Removals {
		width = max(width, len(r.ID))
	}
	fmt.Fprintln(w, "mcplan will perform these actions:")
	fmt.Fprintln(w)
	for _, s := range rep.Steps {
		if s.Outcome == engine.EventFailed {
			fmt.Fprintf(w, "  ! %-*s  %-20s  check failed: %v\n", width, s.ID, s.Kind, s.Err)
			continue
		}
		reason := s.Reason
		if s.Outcome == engine.EventBlocked || s.Outcome == engine.EventCancelled {
			reason = "unknown: " + reason
		}
		line := fmt.Sprintf("  %s %-*s  %-20s  %s", s.Action.Symbol(), width, s.ID, s.Kind, reason)
		fmt.Fprintln(w, strings.TrimRight(line, " "))
		for _, d := range detailLines(s.Details, view.Full) {
			fmt.Fprintf(w, "      %s\n", d)
		}
	}
	for _, r := range rep.Removals {
		fmt.Fprintf(w, "  - %-*s  %-20s  %s\n", width, r.ID, r.Kind, removalLine(r, view.Destroy))
	}
	fmt.Fprintln(w)
	var notes []string
	if view.Offline {
		notes = append(notes, "offline: from the plan and state only; the hosts and clusters were not read")
	}
	removing := len(rep.Removing)
	summary := fmt.Sprintf("Plan: %d to create, %d to update, %d unchanged", rep.Count(engine.ActionCreate), rep.Count(engine.ActionUpdate), rep.Count(engine.ActionNoChange))
	if removing > 0 {
		summary += fmt.Sprintf(", %d to remove", removing)
	}
	fmt.Fprintf(w, "%s, %d to forget.\n", summary, len(rep.Forgotten)-removing)
	for _, n := range notes {
		fmt.Fprintf(w, "Note: %s.\n", n)
	}
	if !rep.Changes() {
		fmt.Fprintln(w, "No changes. The hosts and clusters match the plan.")
	}
}

// removalLine says what happens to a step that leaves.
func removalLine(r engine.RemovalResult, destroy bool) string {
	why := "no longer in the plan"
	if destroy {
		why = "destroyed"
	}
	switch {
	case !r.HasRemover:
		return why + ": its record leaves the state (nothing on the hosts is removed)"
	case r.Removes != "":
		return why + ": " + r.Removes + ", then drops its record"
	default:
		return why + ": what it made is removed, then its record"
	}
}

// TargetWarning is printed when --target limits a plan or apply.
const TargetWarning = `Warning: --target is in effect

Only the targeted steps and the steps they depend on are considered, so this
may not show every change the plan needs. Use --target to recover from errors
or to do one part on purpose, not as a routine: apply without it afterwards.
`
