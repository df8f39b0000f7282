package engine

import "time"

// EventType says what happened to a step.
type EventType string

// Event types, in the order a step sees them.
const (
	EventPlanned   EventType = "planned"   // the step's action was decided
	EventStarted   EventType = "started"   // Apply began
	EventLog       EventType = "log"       // a line of step output
	EventWait      EventType = "wait"      // the step waited for something (Env.Wait): Message says what, Elapsed how long
	EventUnchanged EventType = "unchanged" // nothing to do
	EventSucceeded EventType = "succeeded" // Apply returned nil
	EventFailed    EventType = "failed"    // Check or Apply returned an error
	EventBlocked   EventType = "blocked"   // a dependency failed or was blocked
	EventCancelled EventType = "cancelled" // not started because the run was stopped
)

// Event is one entry of the progress stream.
type Event struct {
	Time    time.Time     `json:"time"`
	Type    EventType     `json:"type"`
	Step    string        `json:"step,omitempty"`
	Kind    string        `json:"kind,omitempty"`
	Action  Action        `json:"action,omitempty"`
	Message string        `json:"message,omitempty"`
	Elapsed time.Duration `json:"elapsedNs,omitempty"`
	Error   string        `json:"error,omitempty"`
}

// Sink receives events. It is called from many goroutines and must be
// safe for concurrent use; it should not block for long.
type Sink func(Event)

// Discard is a Sink that drops every event.
func Discard(Event) {}
