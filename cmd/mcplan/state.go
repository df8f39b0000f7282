package main

import (
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
the generated CA files (keys 0600) and a lock while apply runs.`,
	}
	cmd.AddCommand(c.stateListCommand(), c.stateShowCommand(), c.stateUnlockCommand(), c.stateRmCommand())
	return cmd
}

// openState opens the state of a plan for reading.
func openState(path string) (*engine.Store, error) {
	dir, err := stateDir(path)
	if err != nil {
		return nil, err
	}
	return engine.OpenStore(dir)
}

// stateDir finds the state directory of a plan without validating the
// whole plan: state commands must work on a plan that no longer validates.
func stateDir(path string) (string, error) {
	p, err := plans.Load(path)
	if err != nil {
		return "", planError(err)
	}
	plans.ApplyDefaults(p)
	return p.StateDir(), nil
}

func (c *cli) stateListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list PLAN",
		Short: "List the steps recorded in the state",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := openState(args[0])
			if err != nil {
				return err
			}
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
			store, err := openState(args[0])
			if err != nil {
				return err
			}
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
			dir, err := stateDir(args[0])
			if err != nil {
				return err
			}
			h, err := engine.ForceUnlock(dir)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(c.stdout, "The state is not locked.")
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.stdout, "Removed the lock held by %q (pid %d on %s since %s).\n", h.Command, h.PID, h.Host, h.Since.Format(time.RFC3339))
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
			dir, err := stateDir(args[0])
			if err != nil {
				return err
			}
			lock, err := engine.AcquireLock(dir, "mcplan state rm")
			if err != nil {
				return err
			}
			defer lock.Release()
			store, err := engine.OpenStore(dir)
			if err != nil {
				return err
			}
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
