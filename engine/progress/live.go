package progress

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"mcplan.io/mcplan/engine"
)

// Live is the terminal view: finished steps scroll by as lines, and below
// them a footer, redrawn in place, lists the running steps with their
// elapsed time.
type Live struct {
	mu      sync.Mutex
	w       io.Writer
	running map[string]time.Time
	action  map[string]engine.Action
	footer  int // lines of footer currently on screen
	done    int
	total   int
	now     func() time.Time
}

// NewLive returns a Live view for a run of total steps.
func NewLive(w io.Writer, total int) *Live {
	return &Live{w: w, running: map[string]time.Time{}, action: map[string]engine.Action{}, total: total, now: time.Now}
}

// Sink is the engine.Sink of this view.
func (l *Live) Sink(ev engine.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch ev.Type {
	case engine.EventPlanned:
		return
	case engine.EventStarted:
		l.running[ev.Step] = ev.Time
		l.action[ev.Step] = ev.Action
		l.redraw()
		return
	case engine.EventUnchanged, engine.EventSucceeded, engine.EventFailed, engine.EventBlocked, engine.EventCancelled:
		delete(l.running, ev.Step)
		delete(l.action, ev.Step)
		if ev.Action != engine.ActionForget {
			l.done++
		}
	}
	line, ok := formatLine(ev, false)
	if !ok {
		return
	}
	l.clearFooter()
	fmt.Fprintf(l.w, "%s %s\n", mark(ev.Type), line)
	l.drawFooter()
}

// Run redraws the footer every interval until ctx ends, so elapsed times
// move while steps run.
func (l *Live) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			l.mu.Lock()
			l.clearFooter()
			l.mu.Unlock()
			return
		case <-t.C:
			l.mu.Lock()
			l.redraw()
			l.mu.Unlock()
		}
	}
}

func (l *Live) redraw() {
	l.clearFooter()
	l.drawFooter()
}

func (l *Live) clearFooter() {
	if l.footer > 0 {
		// Up one line and erase it, footer times.
		fmt.Fprint(l.w, strings.Repeat("\x1b[1A\x1b[2K", l.footer))
		l.footer = 0
	}
}

func (l *Live) drawFooter() {
	if len(l.running) == 0 {
		return
	}
	ids := make([]string, 0, len(l.running))
	for id := range l.running {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	fmt.Fprintf(l.w, "\x1b[2m── %d/%d steps done, %d running ──\x1b[0m\n", l.done, l.total, len(ids))
	now := l.now()
	for _, id := range ids {
		fmt.Fprintf(l.w, "  \x1b[33m⟳\x1b[0m %-60s %s %8s\n", id, actionVerb(l.action[id]), now.Sub(l.running[id]).Truncate(time.Second))
	}
	l.footer = len(ids) + 1
}

func mark(t engine.EventType) string {
	switch t {
	case engine.EventSucceeded:
		return "\x1b[32m✓\x1b[0m"
	case engine.EventUnchanged:
		return "\x1b[2m=\x1b[0m"
	case engine.EventFailed:
		return "\x1b[31m✗\x1b[0m"
	case engine.EventBlocked, engine.EventCancelled:
		return "\x1b[33m-\x1b[0m"
	}
	return " "
}
