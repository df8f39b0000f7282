package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

func (c *cli) stateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "Inspect and repair mcplan's state",
		Long: `mcplan keeps, beside the plan (state.dir, default .mcplan/), a state file
with each step's input fingerprint, status, times and non-secret outputs,
the generated CA files (keys 0600) and a lock while apply runs. With state.backend kubernetes all of it is kept in
Secrets of a cluster, locked by a Lease, and .mcplan/ is a cache.`,
	}
	cmd.AddCommand(c.stateListCommand(), c.stateShowCommand(), c.stateUnlockCommand(), c.stateRmCommand(), c.stateRBACCommand(), c.stateMigrateCommand())
	return cmd
}

// openState opens the state of a plan for reading (from its backend,
// when it is kept in Kubernetes or sealed); done ends that.
func (c *cli) openState(ctx context.Context, path string) (_ *engine.Store, done func(), err error) {
	p, err := statePlan(path)
	if err != nil {
		return nil, nil, err
	}
	if done, err = openReadOnly(ctx, p, c.logf); err != nil {
		return nil, nil, err
	}
	store, err := engine.OpenStore(p.StateDir())
	if err != nil {
		done()
		return nil, nil, err
	}
	return store, done, nil
}

// statePlan loads a plan for its state settings without validating the
// whole plan: state commands must work on a plan that no longer validates.
func statePlan(path string) (*plans.Plan, error) {
	p, err := plans.Load(path)
	if err != nil {
		return nil, planError(err)
	}
	plans.ApplyDefaults(p)
	return p, nil
}

func (c *cli) stateListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list PLAN",
		Short: "List the steps recorded in the state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, done, err := c.openState(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer done()
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "STEP\tKIND\tSTATUS\tFINISHED")
			for _, id := range store.IDs() {
				r, _ := store.Record(id)
				finished := "-"
				if !r.FinishedAt.IsZero() {
					finished = r.FinishedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, r.Kind, r.Status, finished)
			}
			return tw.Flush()
		},
	}
}

func (c *cli) stateShowCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "show PLAN STEP",
		Short: "Show the recorded state of one step as JSON",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, done, err := c.openState(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			defer done()
			r, ok := store.Record(args[1])
			if !ok {
				return fmt.Errorf("no step %q in the state (see \"mcplan state list %s\")", args[1], args[0])
			}
			enc := json.NewEncoder(c.stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				ID string `json:"id"`
				engine.StepRecord
			}{args[1], r})
		},
	}
}

func (c *cli) stateUnlockCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "unlock PLAN",
		Short: "Remove a stale state lock left by a crashed apply",
		Long: `Remove the state lock. Only do this when no mcplan apply is running on
this state: two applies at once can corrupt what they install.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := statePlan(args[0])
			if err != nil {
				return err
			}
			unlocked := false
			if p.StateBackend() == plans.BackendKubernetes {
				b := &backend{}
				if err := b.connect(p, ""); err != nil {
					return err
				}
				h, ok, err := b.lock.ForceUnlock(cmd.Context())
				if err != nil {
					return err
				}
				if ok {
					unlocked = true
					fmt.Fprintf(c.stdout, "Removed the lock held by %s (Lease %s/%s).\n", h, b.lock.Namespace, b.lock.Name)
				}
			}
			h, err := engine.ForceUnlock(p.StateDir())
			switch {
			case errors.Is(err, fs.ErrNotExist):
			case err != nil:
				return err
			default:
				unlocked = true
				fmt.Fprintf(c.stdout, "Removed the lock held by %q (pid %d on %s since %s).\n", h.Command, h.PID, h.Host, h.Since.Format(time.RFC3339))
			}
			if !unlocked {
				fmt.Fprintln(c.stdout, "The state is not locked.")
			}
			return nil
		},
	}
}

func (c *cli) stateRmCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rm PLAN STEP...",
		Short: "Forget steps, so the next apply runs them as new",
		Long: `Remove steps' records from the state. Nothing on the hosts or on disk is
changed; the next apply treats the steps as never applied. This is how to
start over on purpose, for example with a new root CA.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := statePlan(args[0])
			if err != nil {
				return err
			}
			st, err := c.lockState(cmd.Context(), p, "mcplan state rm")
			if err != nil {
				return err
			}
			defer st.close()
			store := st.store
			for _, id := range args[1:] {
				if _, ok := store.Record(id); !ok {
					return fmt.Errorf("no step %q in the state", id)
				}
			}
			if err := store.Forget(args[1:]...); err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed %d step(s) from the state.\n", len(args)-1)
			return nil
		},
	}
}

// lockedState is the state of a plan locked for a change outside a run:
// the local lock, the backend's (with the cache pulled), the store.
type lockedState struct {
	pr    *prepared
	store *engine.Store
}

// lockState locks a plan's state as prepare does, without building its
// graph (the plan need not validate).
func (c *cli) lockState(ctx context.Context, p *plans.Plan, command string) (*lockedState, error) {
	pr := &prepared{plan: p, stderr: c.stderr}
	pr.ctx, pr.cancel = context.WithCancelCause(ctx)
	var err error
	if pr.lock, err = engine.AcquireLock(p.StateDir(), command); err != nil {
		pr.close()
		return nil, err
	}
	if err := pr.openBackend(command, 0, c.logf); err != nil {
		pr.close()
		return nil, err
	}
	if pr.store, err = engine.OpenStore(p.StateDir()); err != nil {
		pr.close()
		return nil, err
	}
	return &lockedState{pr: pr, store: pr.store}, nil
}

// close writes the state back to its backend and unlocks.
func (s *lockedState) close() { s.pr.close() }
