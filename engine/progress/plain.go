package progress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/printable"
)

// Plain writes one timestamped line per event, for logs and CI.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
	// Verbose also prints the planned action of every step.
	Verbose bool
}

// NewPlain returns a Plain writer.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

// Sink is the engine.Sink of this writer.
func (p *Plain) Sink(ev engine.Event) {
	line, ok := formatLine(ev, p.Verbose)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s  %s\n", ev.Time.UTC().Format(time.RFC3339), line)
}

// formatLine is the text of an event without its timestamp, control
// characters escaped (messages carry text from hosts and clusters).
func formatLine(ev engine.Event, verbose bool) (string, bool) {
	line, ok := eventText(ev, verbose)
	return printable.String(line), ok
}

// eventText is the text of an event. Planned events are shown only when
// verbose; unchanged steps are shown, so a re-apply visibly did nothing.
func eventText(ev engine.Event, verbose bool) (string, bool) {
	switch ev.Type {
	case engine.EventPlanned:
		if !verbose {
			return "", false
		}
		return fmt.Sprintf("%s  %s %s  %s", ev.Step, ev.Action.Symbol(), ev.Action, ev.Message), true
	case engine.EventLog:
		return fmt.Sprintf("%s  | %s", ev.Step, ev.Message), true
	case engine.EventStarted:
		return fmt.Sprintf("%s  %s (%s)", ev.Step, actionVerb(ev.Action), ev.Message), true
	case engine.EventUnchanged:
		return fmt.Sprintf("%s  unchanged", ev.Step), true
	case engine.EventSucceeded:
		if ev.Action == engine.ActionForget {
			return fmt.Sprintf("%s  %s", ev.Step, ev.Message), true
		}
		return fmt.Sprintf("%s  done after %s", ev.Step, roundDuration(ev.Elapsed)), true
	case engine.EventFailed:
		return fmt.Sprintf("%s  FAILED after %s: %s", ev.Step, roundDuration(ev.Elapsed), ev.Error), true
	case engine.EventBlocked, engine.EventCancelled:
		return fmt.Sprintf("%s  %s", ev.Step, ev.Message), true
	}
	return "", false
}

func actionVerb(a engine.Action) string {
	switch a {
	case engine.ActionCreate:
		return "creating"
	case engine.ActionUpdate:
		return "updating"
	case engine.ActionForget:
		return "removing"
	}
	return string(a)
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
