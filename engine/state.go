package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"mcplan.io/mcplan/internal/atomicfile"
)

// StateVersion is the version of the state file format this mcplan writes.
const StateVersion = 1

// StateFile is the name of the state file inside the state directory.
const StateFile = "state.json"

// Status is the outcome of a step's last apply.
type Status string

// Step statuses.
const (
	StatusRunning   Status = "running" // Apply started and did not report back: interrupted
	StatusSucceeded Status = "succeeded"
	StatusFailed    Status = "failed"
	// StatusRemoving: a Remove started (the step left the plan or is
	// being destroyed) and has not succeeded; the next run resumes it.
	StatusRemoving Status = "removing"
)

// StepRecord is what the state keeps of one step.
type StepRecord struct {
	Kind string `json:"kind"`
	// Fingerprint of the inputs of the last successful apply; empty when
	// the step never succeeded.
	Fingerprint string `json:"fingerprint,omitempty"`
	Status      Status `json:"status"`
	// Error of the last failed apply.
	Error      string            `json:"error,omitempty"`
	StartedAt  time.Time         `json:"startedAt,omitzero"`
	FinishedAt time.Time         `json:"finishedAt,omitzero"`
	Outputs    map[string]string `json:"outputs,omitempty"`
	// DependsOn are the steps it depended on when it last ran: removals
	// run in the reverse of this order, also once the plan no longer
	// says it.
	DependsOn []string `json:"dependsOn,omitempty"`
	// Waits are what its last Apply waited for (Env.Wait), in order.
	Waits []WaitRecord `json:"waits,omitempty"`
}

// State is the content of the state file.
type State struct {
	Version int `json:"version"`
	// Lineage is a random ID made when the state is first written and
	// kept by every later write (see LineageError); a state written by an
	// older mcplan has none until its next write.
	Lineage string `json:"lineage,omitempty"`
	// Serial grows with every write, so two copies of one lineage can be
	// told apart.
	Serial int64                  `json:"serial"`
	Steps  map[string]*StepRecord `json:"steps"`
	// Trusted holds values trusted on first use, such as pinned SSH host
	// keys (public keys: never secrets).
	Trusted map[string]string `json:"trusted,omitempty"`
	// LastApply is when the last run that applied a step began and
	// ended: the run graph --timeline shows.
	LastApply *RunRecord `json:"lastApply,omitempty"`
}

// RunRecord is when a run began and ended.
type RunRecord struct {
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
}

// Store is the state of one state directory, kept in memory and written
// to disk atomically after every change. It is safe for concurrent use.
//
// Writes are group-committed: when several steps finish together, one
// write can cover all of them, but Update never returns before a write
// holding its change has reached the disk.
type Store struct {
	dir  string
	path string

	mu      sync.Mutex // guards state and pending
	state   State
	pending int64 // serial of the newest in-memory change

	writeMu sync.Mutex // serialises writes; guards written and disk
	written int64      // serial of the newest write on disk
	disk    onDisk     // the state file as last read or written
	// mirror, when set, runs after every write of the state file, still
	// serialised with the writes: it copies the state directory to a
	// shared backend. A write is done only once it returned nil.
	mirror func() error
}

// MirrorTo makes every write of the state file also run push (see
// Store.mirror); set it before the first Update.
func (s *Store) MirrorTo(push func() error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	s.mirror = push
}

// OpenStore reads the state in dir, or starts an empty one when there is
// none. Nothing is written until the first Update.
func OpenStore(dir string) (*Store, error) {
	s := &Store{dir: dir, path: filepath.Join(dir, StateFile)}
	s.state = State{Version: StateVersion, Steps: map[string]*StepRecord{}}
	data, err := os.ReadFile(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, &s.state); err != nil {
		return nil, fmt.Errorf("read state %s: it is damaged (%v; %d bytes): mcplan neither reads nor overwrites it; "+
			"restore it from where you keep it (version control, a backup), or move it aside to start from an empty state", s.path, err, len(data))
	}
	switch {
	case s.state.Version > StateVersion:
		return nil, fmt.Errorf("read state %s: version %d was written by a newer mcplan; this one reads version %d and leaves the file as it is: use the newer mcplan",
			s.path, s.state.Version, StateVersion)
	case s.state.Version != StateVersion:
		return nil, fmt.Errorf("read state %s: version %d, this mcplan reads version %d", s.path, s.state.Version, StateVersion)
	}
	if s.state.Steps == nil {
		s.state.Steps = map[string]*StepRecord{}
	}
	s.pending, s.written = s.state.Serial, s.state.Serial
	s.disk = onDisk{found: true, lineage: s.state.Lineage}
	return s, nil
}

// Dir is the state directory.
func (s *Store) Dir() string { return s.dir }

// Path is the state file.
func (s *Store) Path() string { return s.path }

// Record returns a copy of the record of a step.
func (s *Store) Record(id string) (StepRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.state.Steps[id]
	if !ok {
		return StepRecord{}, false
	}
	c := *r
	c.Outputs = maps.Clone(r.Outputs)
	return c, true
}

// Lineage is the state's lineage: "" when it was never written, or was
// last written by an older mcplan.
func (s *Store) Lineage() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Lineage
}

// Serial is the serial of the state as read or last written: 0 when it
// was never written.
func (s *Store) Serial() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.Serial
}

// IDs returns the IDs of every recorded step, sorted.
func (s *Store) IDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.state.Steps))
	for id := range s.state.Steps {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Update changes the record of a step (creating it when absent) and writes
// the state before returning.
func (s *Store) Update(id string, change func(*StepRecord)) error {
	s.mu.Lock()
	r := s.state.Steps[id]
	if r == nil {
		r = &StepRecord{}
		s.state.Steps[id] = r
	}
	change(r)
	s.pending++
	serial := s.pending
	s.mu.Unlock()
	return s.flush(serial)
}

// Forget removes the records of steps and writes the state.
func (s *Store) Forget(ids ...string) error {
	s.mu.Lock()
	for _, id := range ids {
		delete(s.state.Steps, id)
	}
	s.pending++
	serial := s.pending
	s.mu.Unlock()
	return s.flush(serial)
}

// flush makes sure a write holding change number serial is on disk. It
// never writes over a state file other than the one read (checkOnDisk);
// the first write of a state gives it its lineage.
func (s *Store) flush(serial int64) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if s.written >= serial || s.path == "" {
		return nil // covered by a later write, or a memory-only store
	}
	if err := s.checkOnDisk(); err != nil {
		return err
	}
	lineage := s.disk.lineage
	if lineage == "" {
		lineage = newLineage()
	}
	s.mu.Lock()
	s.state.Lineage = lineage
	s.state.Serial = s.pending
	snapshot := s.pending
	data, err := json.MarshalIndent(&s.state, "", "  ")
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := atomicfile.Write(s.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	s.disk = onDisk{found: true, lineage: lineage}
	if s.mirror != nil {
		if err := s.mirror(); err != nil {
			return err
		}
	}
	s.written = snapshot
	return nil
}

// RecordApply records when the run that applied steps began and ended
// (State.LastApply) and writes the state.
func (s *Store) RecordApply(started, finished time.Time) error {
	s.mu.Lock()
	s.state.LastApply = &RunRecord{StartedAt: started.UTC(), FinishedAt: finished.UTC()}
	s.pending++
	serial := s.pending
	s.mu.Unlock()
	return s.flush(serial)
}

// LastApply is State.LastApply: nil when no run applied a step yet.
func (s *Store) LastApply() *RunRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.LastApply == nil {
		return nil
	}
	r := *s.state.LastApply
	return &r
}

// Trusted returns a value trusted on first use.
func (s *Store) Trusted(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.state.Trusted[key]
	return v, ok
}

// TrustedValues returns a copy of every value trusted on first use.
func (s *Store) TrustedValues() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.state.Trusted)
}

// Trust records a value trusted on first use and writes the state.
func (s *Store) Trust(key, value string) error {
	s.mu.Lock()
	if s.state.Trusted == nil {
		s.state.Trusted = map[string]string{}
	}
	s.state.Trusted[key] = value
	s.pending++
	serial := s.pending
	s.mu.Unlock()
	return s.flush(serial)
}

// NewMemoryStore returns an empty state that is never written to disk.
func NewMemoryStore() *Store {
	return &Store{state: State{Version: StateVersion, Steps: map[string]*StepRecord{}}}
}
