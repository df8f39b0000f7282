package engine

import (
	"time"
)

// WaitRecord is one wait of a step's Apply: what it waited for (a node
// Ready, a Deployment Available, a LoadBalancer address) and how long.
// What a step's run took beyond its waits is its own work.
type WaitRecord struct {
	What    string        `json:"what"`
	Start   time.Time     `json:"start"`
	Elapsed time.Duration `json:"elapsedNs"`
}

// Wait runs wait, something the step waits for rather than works at,
// and reports it: an EventWait naming what, with how long it took, and
// the step's record keeps it (StepRecord.Waits), so that where the time
// of a run went is told apart from the data. Its error is wait's.
func (e *Env) Wait(what string, wait func() error) error {
	start := time.Now()
	err := wait()
	elapsed := time.Since(start)
	e.mu.Lock()
	e.waits = append(e.waits, WaitRecord{What: what, Start: start.UTC(), Elapsed: elapsed})
	e.mu.Unlock()
	ev := Event{Time: time.Now(), Type: EventWait, Step: e.StepID, Message: what, Elapsed: elapsed}
	if err != nil {
		ev.Error = err.Error()
	}
	e.sink(ev)
	return err
}

// Waits returns the waits reported during this run, in the order they
// began.
func (e *Env) Waits() []WaitRecord {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]WaitRecord, len(e.waits))
	copy(out, e.waits)
	return out
}
