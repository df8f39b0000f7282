package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/engine/progress"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/statebackend"
	"mcplan.io/mcplan/steps"
	"mcplan.io/mcplan/steps/remote"
	"mcplan.io/mcplan/steps/statedir"
)

// runFlags are the flags plan and apply share.
type runFlags struct {
	targets     []string
	parallelism int
	output      string
	// noNewPins fails a host without a pinned key instead of pinning it.
	noNewPins bool
	// force lets a k3s upgrade go while a node of its cluster is not
	// Ready.
	force bool
	// replace are step IDs to run again (--replace).
	replace []string
	// lockTimeout is how long to wait for a state lock another run holds
	// (--lock-timeout).
	lockTimeout time.Duration
}

func (f *runFlags) validate() error { return checkOutput(f.output) }

// prepared is what plan and apply work on: the plan, its state (locked
// for apply), the runtime its steps share and the graph, narrowed by
// --target.
type prepared struct {
	// ctx is the run's: cancelled, with statebackend.ErrLockLost as its
	// cause, when a backend's lock is lost.
	ctx    context.Context
	cancel context.CancelCauseFunc
	plan   *plans.Plan
	// planSHA256 is the digest of the plan file, which a saved plan
	// records.
	planSHA256 string
	store      *engine.Store
	runtime    *steps.Runtime
	lock       *engine.Lock
	// backend is the kubernetes state backend (nil for local state).
	backend *backend
	stderr  io.Writer
	graph   *engine.Graph
	// upgrades are the k3s rollouts and Istio canaries under way.
	upgrades plans.Upgrades
	// whole is true when graph is the whole plan's: only then may records
	// of steps that left the plan be forgotten.
	whole bool
}

// prepare validates the run flags, loads the plan, takes the state lock
// when command is set, opens the state and builds the graph.
func (c *cli) prepare(ctx context.Context, path string, flags runFlags, lockFor string) (_ *prepared, err error) {
	if err := flags.validate(); err != nil {
		return nil, err
	}
	p, err := c.loadPlan(path)
	if err != nil {
		return nil, err
	}
	sum, err := digest.FileSHA256(path)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	pr := &prepared{plan: p, planSHA256: sum, stderr: c.stderr}
	pr.ctx, pr.cancel = context.WithCancelCause(ctx)
	defer func() {
		if err != nil {
			pr.close()
		}
	}()
	if lockFor != "" {
		if pr.lock, err = c.acquireLocalLock(pr.ctx, p.StateDir(), lockFor, flags.lockTimeout, p.StateBackend() == plans.BackendKubernetes); err != nil {
			return nil, err
		}
	}
	if err := pr.openBackend(lockFor, flags.lockTimeout, c.logf); err != nil {
		return nil, err
	}
	if pr.store, err = engine.OpenStore(p.StateDir()); err != nil {
		return nil, err
	}
	if pr.backend != nil && pr.lock != nil {
		pr.store.MirrorTo(func() error { return pr.backend.mirror.Push(pr.ctx) })
	}
	// Pins an earlier version kept in the state move to the pin file, which
	// is written only under the lock (an offline plan takes none and dials
	// nothing).
	var legacyPins map[string]string
	if pr.lock != nil {
		legacyPins = pr.store.TrustedValues()
	}
	pins, err := remote.OpenPinFile(statedir.Pins(p.StateDir()), legacyPins, flags.noNewPins)
	if err != nil {
		return nil, err
	}
	pr.runtime = steps.NewRuntime(p, pins)
	pr.runtime.Force = flags.force
	if pr.upgrades, err = steps.Upgrades(p, pr.store.Record); err != nil {
		return nil, err
	}
	g, err := steps.Graph(p, pr.runtime, pr.upgrades)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if pr.graph, err = c.selectTargets(g, flags.targets); err != nil {
		return nil, err
	}
	for _, id := range flags.replace {
		switch {
		case g.Node(id) == nil:
			return nil, fmt.Errorf("--replace %s: the plan has no such step (mcplan graph lists them)", id)
		case pr.graph.Node(id) == nil:
			return nil, fmt.Errorf("--replace %s: not among the targeted steps", id)
		case g.Node(id).Kind == plans.KindCARoot:
			return nil, fmt.Errorf("--replace %s: a mesh's root CA is never replaced (clusters and workloads trust it); an intermediate is: --replace cluster/<c>/ca/intermediate", id)
		}
	}
	pr.whole = pr.graph == g
	return pr, nil
}

// checkAgainstState refuses a plan that the state's records rule out:
// one that gives a host being removed to another host
// (steps.CheckHostReuse), gives by kubeconfig a cluster whose k3s it
// would then uninstall (steps.CheckInstalledClustersKept), a k3s version
// its nodes cannot go to
// (steps.CheckUpgrades), or names as a cluster's first server a host
// that has not joined it (steps.CheckFirstServer).
func (pr *prepared) checkAgainstState() error {
	records := map[string]engine.StepRecord{}
	for _, id := range pr.store.IDs() {
		records[id], _ = pr.store.Record(id)
	}
	if err := steps.CheckHostReuse(pr.plan, records); err != nil {
		return err
	}
	if err := steps.CheckInstalledClustersKept(pr.plan, records); err != nil {
		return err
	}
	if err := steps.CheckUpgrades(pr.plan, pr.store.Record); err != nil {
		return err
	}
	if err := steps.CheckCanaries(pr.plan, pr.upgrades.Istio); err != nil {
		return err
	}
	return steps.CheckFirstServer(pr.plan, records)
}

// runScope is what a run of plan, apply or destroy works on.
type runScope struct {
	// graph is pr.graph, or what a destroy removes.
	graph *engine.Graph
	// whole is true when graph is the whole plan's: only then are the
	// records of steps that left the plan forgotten.
	whole bool
	// destroy removes graph's steps instead of applying them; purgeCA
	// deletes the meshes' root CAs it removes instead of moving them
	// aside.
	destroy, purgeCA bool
}

// runOptions are the engine options plan, apply and destroy share; the
// caller adds what is its own (DryRun, Check, Sink, Replay).
func (c *cli) runOptions(pr *prepared, scope runScope, flags runFlags) engine.Options {
	removal := steps.RemovalOptions{PurgeCA: scope.purgeCA, Runtime: pr.runtime, Records: pr.store.Record}
	if scope.destroy {
		removal.Destroying = scope.graph.IDs()
	}
	return engine.Options{
		Store: pr.store, Dir: pr.plan.StateDir(), Destroy: scope.destroy, Parallelism: flags.parallelism,
		Drain: c.drain, Forget: scope.whole, Passing: plans.Passing, Retire: steps.Retirement(pr.plan, removal),
		StepTimeout: pr.plan.StepTimeout, Replace: flags.replace,
	}
}

// openBackend, for a plan whose state is kept in Kubernetes or sealed,
// takes the backend's lock when lockFor is set (waiting up to wait) and
// makes the state directory hold the state (see backend.open).
func (pr *prepared) openBackend(lockFor string, wait time.Duration, logf func(string, ...any)) error {
	b, err := openBackend(pr.plan, lockFor)
	if err != nil || b == nil {
		return err
	}
	pr.backend = b
	return b.open(pr.ctx, pr.plan, lockFor != "", wait, logf, pr.cancel)
}

// lockLost is the error of a run whose backend lock was lost (its context
// then ended with that cause), else nil.
func (pr *prepared) lockLost() error {
	if cause := context.Cause(pr.ctx); errors.Is(cause, statebackend.ErrLockLost) {
		return fmt.Errorf("%w; what this run did after that is only in the local state directory %s", cause, pr.plan.StateDir())
	}
	return nil
}

// close ends the run: SSH connections, the backend (its last write, its
// lock), then the local lock.
func (pr *prepared) close() {
	if pr.runtime != nil {
		pr.runtime.Close()
	}
	if pr.backend != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(pr.ctx), 30*time.Second)
		if err := pr.backend.close(ctx, pr.lock != nil); err != nil {
			fmt.Fprintf(pr.stderr, "Error: %v\n", err)
		}
		cancel()
	}
	if pr.lock != nil {
		pr.lock.Release()
	}
	if pr.cancel != nil {
		pr.cancel(nil)
	}
}

// acquireLocalLock takes the state directory's lock, waiting up to wait
// for another run on this machine to release it. With takeStale (the
// directory is the cache of a backend, whose own lock guards the state) a
// lock whose process is gone from this host is taken over, as the
// backend's lock of a killed run is.
func (c *cli) acquireLocalLock(ctx context.Context, dir, command string, wait time.Duration, takeStale bool) (*engine.Lock, error) {
	deadline := time.Now().Add(wait)
	for {
		lock, err := engine.AcquireLock(dir, command)
		var locked *engine.LockedError
		if errors.As(err, &locked) && locked.Stale && takeStale {
			c.logf("state lock: taking over the local lock of %q (pid %d on this host, no longer running)", locked.Holder.Command, locked.Holder.PID)
			if _, err := engine.ForceUnlock(dir); err != nil {
				return nil, err
			}
			continue
		}
		if !errors.As(err, &locked) || locked.Stale || time.Now().After(deadline) {
			return lock, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Second, time.Until(deadline)+time.Millisecond)):
		}
	}
}

// logf writes a line of what mcplan does besides the steps (the state
// lock) to standard error.
func (c *cli) logf(format string, args ...any) { fmt.Fprintf(c.stderr, format+"\n", args...) }

// progressSink picks how events are shown: JSON lines with -o json, the
// live view on a terminal, plain lines otherwise. stop ends the live view.
func (c *cli) progressSink(ctx context.Context, output string, total int) (sink engine.Sink, stop func()) {
	if output == "json" {
		return progress.NewJSONLines(c.stdout).Sink, func() {}
	}
	if c.onTerminal() {
		live := progress.NewLive(c.terminal, total)
		ctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			live.Run(ctx, 200*time.Millisecond)
			close(done)
		}()
		return live.Sink, func() { cancel(); <-done }
	}
	return progress.NewPlain(c.stdout).Sink, func() {}
}

// reportRun prints what a run of command (apply, destroy) did, as JSON or
// as summary prints it, and gives its exit code: 130 when interrupted.
func (c *cli) reportRun(rep *engine.Report, output, command string, summary func()) error {
	if output == "json" {
		if err := writeReportJSON(json.NewEncoder(c.stdout), rep); err != nil {
			return err
		}
	} else {
		summary()
	}
	switch {
	case rep.Err == nil:
		return nil
	case errors.Is(rep.Err, engine.ErrInterrupted):
		what := strings.ToUpper(command[:1]) + command[1:]
		return &exitCodeError{code: exitInterrupted, msg: fmt.Sprintf("%s interrupted; state saved. Run %s again to resume.", what, command)}
	default:
		return &exitCodeError{code: exitError}
	}
}

// reportJSON is the machine-readable form of a plan or apply report.
type reportJSON struct {
	Steps []stepJSON `json:"steps"`
	// Removals are the steps that left the plan (or are destroyed), in
	// the order they are removed; Forgotten their IDs, Removing those
	// whose effect is undone.
	Removals  []removalJSON  `json:"removals,omitempty"`
	Forgotten []string       `json:"forgotten,omitempty"`
	Removing  []string       `json:"removing,omitempty"`
	Summary   map[string]int `json:"summary"`
	Changes   bool           `json:"changes"`
	Error     string         `json:"error,omitempty"`
}

type stepJSON struct {
	ID      string          `json:"id"`
	Kind    string          `json:"kind"`
	Action  engine.Action   `json:"action"`
	Reason  string          `json:"reason,omitempty"`
	Details []engine.Change `json:"details,omitempty"`
	Outcome string          `json:"outcome"`
	Error   string          `json:"error,omitempty"`
}

type removalJSON struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Removes string `json:"removes,omitempty"`
	Outcome string `json:"outcome"`
	Error   string `json:"error,omitempty"`
}

func writeReportJSON(enc *json.Encoder, rep *engine.Report) error {
	enc.SetIndent("", "  ")
	return enc.Encode(newReportJSON(rep))
}

// newReportJSON is the machine-readable form of rep.
func newReportJSON(rep *engine.Report) reportJSON {
	out := reportJSON{Forgotten: rep.Forgotten, Removing: rep.Removing, Changes: rep.Changes(), Summary: map[string]int{
		"create": rep.Count(engine.ActionCreate), "update": rep.Count(engine.ActionUpdate),
		"unchanged": rep.Count(engine.ActionNoChange), "forget": len(rep.Forgotten), "remove": len(rep.Removing),
	}}
	for _, r := range rep.Removals {
		rj := removalJSON{ID: r.ID, Kind: r.Kind, Removes: r.Removes, Outcome: string(r.Outcome)}
		if r.Err != nil {
			rj.Error = r.Err.Error()
		}
		out.Removals = append(out.Removals, rj)
	}
	for _, s := range rep.Steps {
		sj := stepJSON{ID: s.ID, Kind: s.Kind, Action: s.Action, Reason: s.Reason, Details: s.Details, Outcome: string(s.Outcome)}
		if s.Err != nil {
			sj.Error = s.Err.Error()
		}
		out.Steps = append(out.Steps, sj)
	}
	if rep.Err != nil {
		out.Error = rep.Err.Error()
	}
	return out
}

// statePath says where the run's state is kept: state.json, or its
// backend.
func (pr *prepared) statePath() string {
	if pr.backend != nil {
		return pr.backend.where()
	}
	return pr.store.Path()
}
