package engine

import (
	"fmt"
	"sync"
	"time"
)

// Env is what a running step sees of the engine: where it may keep files,
// the outputs its dependencies recorded, its own outputs from the last
// apply, and a log that becomes part of the event stream.
type Env struct {
	// StepID is the ID of the step being run.
	StepID string
	// Dir is the state directory. Steps keep generated files under it;
	// secret files must be written with mode 0600.
	Dir string
	// Replace is set when the run replaces the step on request
	// (Options.Replace): a step that keeps what it finds valid (a
	// certificate) makes it anew.
	Replace bool

	previous map[string]string            // this step's outputs from the last successful apply
	deps     map[string]map[string]string // outputs of every step, by step ID, as of now
	outputs  map[string]string            // outputs set during this run
	sink     Sink

	mu    sync.Mutex   // guards waits: a step may wait on several goroutines
	waits []WaitRecord // what Wait reported during this run
}

// NewEnv makes an Env. Tests of single steps use it; the executor makes its
// own. deps maps step IDs to their recorded outputs.
func NewEnv(stepID, dir string, previous map[string]string, deps map[string]map[string]string, sink Sink) *Env {
	if sink == nil {
		sink = Discard
	}
	return &Env{StepID: stepID, Dir: dir, previous: previous, deps: deps, outputs: map[string]string{}, sink: sink}
}

// Output returns an output recorded by another step (normally a dependency).
func (e *Env) Output(stepID, key string) (string, bool) {
	v, ok := e.deps[stepID][key]
	return v, ok
}

// Previous returns this step's own output from the last successful apply.
func (e *Env) Previous(key string) (string, bool) {
	v, ok := e.previous[key]
	return v, ok
}

// SetOutput records an output for later steps and later applies. Outputs
// are stored in the state file in clear: never put a secret here.
func (e *Env) SetOutput(key, value string) { e.outputs[key] = value }

// Outputs returns what SetOutput recorded during this run.
func (e *Env) Outputs() map[string]string { return e.outputs }

// Logf adds a line to the step's log in the event stream. Never log secrets.
func (e *Env) Logf(format string, args ...any) {
	e.sink(Event{Time: time.Now(), Type: EventLog, Step: e.StepID, Message: fmt.Sprintf(format, args...)})
}
