package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNoApply is returned by NewTimeline when the state records no run
// that applied a step (State.LastApply is nil).
var ErrNoApply = errors.New("no apply has run a step yet")

// Timeline is where the time of the last apply went (State.LastApply):
// the steps it ran, when each began and ended, what each waited for, and
// the critical path, the chain of dependencies that ended last.
type Timeline struct {
	StartedAt  time.Time      `json:"startedAt"`
	FinishedAt time.Time      `json:"finishedAt"`
	Steps      []TimelineStep `json:"steps"`
	// CriticalPath is the IDs of the critical steps, in run order.
	CriticalPath []string `json:"criticalPath"`
}

// TimelineStep is one step the last apply ran.
type TimelineStep struct {
	ID    string    `json:"id"`
	Kind  string    `json:"kind"`
	Start time.Time `json:"start"`
	// End is when the step finished, or the end of the run when it was
	// interrupted (no FinishedAt).
	End   time.Time    `json:"end"`
	Waits []WaitRecord `json:"waits,omitempty"`
	// Critical says the step is on the timeline's critical path.
	Critical bool   `json:"critical"`
	Status   Status `json:"status"`
}

// Elapsed is how long the step ran.
func (s TimelineStep) Elapsed() time.Duration { return s.End.Sub(s.Start) }

// Waiting is how long the step waited: its waits clipped to its span,
// time covered by several overlapping waits counted once.
func (s TimelineStep) Waiting() time.Duration {
	var total time.Duration
	var cur span
	open := false
	for _, w := range s.clippedWaits() {
		switch {
		case !open:
			cur, open = w, true
		case !w.start.After(cur.end):
			if w.end.After(cur.end) {
				cur.end = w.end
			}
		default:
			total += cur.end.Sub(cur.start)
			cur = w
		}
	}
	if open {
		total += cur.end.Sub(cur.start)
	}
	return total
}

// Work is the time the step ran without waiting: Elapsed − Waiting.
func (s TimelineStep) Work() time.Duration { return s.Elapsed() - s.Waiting() }

// span is an interval of time.
type span struct{ start, end time.Time }

// clippedWaits are the step's waits clipped to its span, sorted by start;
// waits wholly outside it are left out.
func (s TimelineStep) clippedWaits() []span {
	var out []span
	for _, w := range s.Waits {
		if c, ok := s.clip(w); ok {
			out = append(out, c)
		}
	}
	slices.SortStableFunc(out, func(a, b span) int { return a.start.Compare(b.start) })
	return out
}

// clip is wait w clipped to the step's span; false when none of it is
// inside.
func (s TimelineStep) clip(w WaitRecord) (span, bool) {
	c := span{start: w.Start, end: w.Start.Add(w.Elapsed)}
	if c.start.Before(s.Start) {
		c.start = s.Start
	}
	if c.end.After(s.End) {
		c.end = s.End
	}
	return c, !c.end.Before(c.start)
}

// MarshalJSON adds the step's durations, in nanoseconds: elapsedNs,
// waitingNs and workNs.
func (s TimelineStep) MarshalJSON() ([]byte, error) {
	type plain TimelineStep // without this method
	return json.Marshal(struct {
		plain
		ElapsedNs time.Duration `json:"elapsedNs"`
		WaitingNs time.Duration `json:"waitingNs"`
		WorkNs    time.Duration `json:"workNs"`
	}{plain(s), s.Elapsed(), s.Waiting(), s.Work()})
}

// NewTimeline is the timeline of the last apply recorded in store: the
// steps that started within it (from LastApply.StartedAt to its
// FinishedAt), sorted by start then ID. It is an error wrapping
// ErrNoApply when no run has applied a step yet.
func NewTimeline(store *Store) (*Timeline, error) {
	run := store.LastApply()
	if run == nil {
		return nil, fmt.Errorf("no timeline: %w", ErrNoApply)
	}
	t := &Timeline{StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Steps: []TimelineStep{}, CriticalPath: []string{}}
	deps := map[string][]string{}
	for _, id := range store.IDs() {
		r, _ := store.Record(id)
		if r.StartedAt.IsZero() || r.StartedAt.Before(run.StartedAt) || r.StartedAt.After(run.FinishedAt) {
			continue
		}
		end := r.FinishedAt
		if end.IsZero() {
			end = run.FinishedAt // interrupted: it ran until the run ended
		}
		t.Steps = append(t.Steps, TimelineStep{
			ID: id, Kind: r.Kind, Start: r.StartedAt, End: end,
			Waits: slices.Clone(r.Waits), Status: r.Status,
		})
		deps[id] = slices.Clone(r.DependsOn)
	}
	slices.SortStableFunc(t.Steps, func(a, b TimelineStep) int {
		if c := a.Start.Compare(b.Start); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	t.markCritical(deps)
	return t, nil
}

// markCritical finds the critical path: from the step that ended last,
// to its dependency (among the timeline's steps) that ended last, and so
// on until a step has none. Ties go to the smaller ID.
func (t *Timeline) markCritical(deps map[string][]string) {
	index := make(map[string]int, len(t.Steps))
	for i, s := range t.Steps {
		index[s.ID] = i
	}
	endedLater := func(i, j int) bool {
		a, b := t.Steps[i], t.Steps[j]
		if c := a.End.Compare(b.End); c != 0 {
			return c > 0
		}
		return a.ID < b.ID
	}
	cur := -1
	for i := range t.Steps {
		if cur < 0 || endedLater(i, cur) {
			cur = i
		}
	}
	var path []int
	for cur >= 0 && !t.Steps[cur].Critical {
		t.Steps[cur].Critical = true
		path = append(path, cur)
		next := -1
		for _, dep := range deps[t.Steps[cur].ID] {
			if i, ok := index[dep]; ok && (next < 0 || endedLater(i, next)) {
				next = i
			}
		}
		cur = next
	}
	slices.Sort(path) // run order: the order of t.Steps
	for _, i := range path {
		t.CriticalPath = append(t.CriticalPath, t.Steps[i].ID)
	}
}

// Wall is how long the run took.
func (t *Timeline) Wall() time.Duration { return t.FinishedAt.Sub(t.StartedAt) }

// Totals are how long the run took (wall), and how the critical path's
// time splits into its steps' own work and their waiting.
func (t *Timeline) Totals() (wall, criticalWork, criticalWaiting time.Duration) {
	for _, s := range t.Steps {
		if s.Critical {
			criticalWork += s.Work()
			criticalWaiting += s.Waiting()
		}
	}
	return t.Wall(), criticalWork, criticalWaiting
}

// MarshalJSON adds the totals, in nanoseconds: wallNs, criticalWorkNs
// and criticalWaitingNs.
func (t Timeline) MarshalJSON() ([]byte, error) {
	type plain Timeline // without this method
	wall, work, waiting := t.Totals()
	return json.Marshal(struct {
		plain
		WallNs            time.Duration `json:"wallNs"`
		CriticalWorkNs    time.Duration `json:"criticalWorkNs"`
		CriticalWaitingNs time.Duration `json:"criticalWaitingNs"`
	}{plain(t), wall, work, waiting})
}

// Mermaid renders the timeline as a Mermaid gantt chart on the wall
// clock (dateFormat x: milliseconds since the epoch): one section per
// step kind, in the order the kinds first started; in each, a bar per
// step, followed by a bar per wait of it ("wait for ...", tagged active,
// clipped to the step). Critical-path steps and their waits are tagged
// crit. Step IDs and wait descriptions may hold characters Mermaid's
// gantt syntax takes for its own, so bars are named s<i> and s<i>w<j>,
// and labels escape those characters as entity codes.
func (t *Timeline) Mermaid() string {
	var b strings.Builder
	wall, work, waiting := t.Totals()
	b.WriteString("gantt\n")
	fmt.Fprintf(&b, "  title Last apply %s, %s wall, critical path %s work + %s waiting\n",
		t.StartedAt.UTC().Format(time.RFC3339), round(wall), round(work), round(waiting))
	b.WriteString("  dateFormat x\n  axisFormat %H:%M:%S\n  todayMarker off\n")
	var kinds []string
	byKind := map[string][]int{}
	for i, s := range t.Steps {
		if _, ok := byKind[s.Kind]; !ok {
			kinds = append(kinds, s.Kind)
		}
		byKind[s.Kind] = append(byKind[s.Kind], i)
	}
	for _, kind := range kinds {
		fmt.Fprintf(&b, "  section %s\n", mermaidLabel(kind))
		for _, i := range byKind[kind] {
			s := t.Steps[i]
			crit := ""
			if s.Critical {
				crit = "crit, "
			}
			fmt.Fprintf(&b, "    %s : %ss%d, %d, %d\n", mermaidLabel(s.ID), crit, i, s.Start.UnixMilli(), s.End.UnixMilli())
			for j, w := range s.Waits {
				c, ok := s.clip(w)
				if !ok {
					continue
				}
				fmt.Fprintf(&b, "    %s : %sactive, s%dw%d, %d, %d\n",
					mermaidLabel("wait for "+w.What), crit, i, j, c.start.UnixMilli(), c.end.UnixMilli())
			}
		}
	}
	return b.String()
}

// mermaidLabel escapes the characters that end a gantt task's or
// section's text (":"), start a comment ("#", "%%") or end a statement
// (";") as Mermaid entity codes, and folds line breaks into spaces.
func mermaidLabel(s string) string {
	return strings.NewReplacer(
		":", "#58;", "#", "#35;", ";", "#59;", "%", "#37;", "\r", " ", "\n", " ",
	).Replace(s)
}

// round rounds d to the millisecond, for display.
func round(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
