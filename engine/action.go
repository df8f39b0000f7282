package engine

// Action is what a plan or apply decided to do with a step.
type Action string

// Actions, shown as Terraform shows them.
const (
	ActionCreate   Action = "create" // never applied (or never finished): +
	ActionUpdate   Action = "update" // inputs, live state or a dependency changed: ~
	ActionNoChange Action = "no-op"  // applied, inputs unchanged, live state as expected: =
	ActionForget   Action = "forget" // in state but no longer in the plan: -
)

// Symbol is the one-character marker of an action in plan output.
func (a Action) Symbol() string {
	switch a {
	case ActionCreate:
		return "+"
	case ActionUpdate:
		return "~"
	case ActionForget:
		return "-"
	default:
		return "="
	}
}
