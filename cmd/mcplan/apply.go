package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/go-multierror"
	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
)

func (c *cli) applyCommand() *cobra.Command {
	var flags runFlags
	cmd := &cobra.Command{
		Use:   "apply PLAN|SAVED",
		Short: "Bring hosts, clusters and meshes to what the plan says",
		Long: `Run every step that plan would show as + or ~, in dependency order, in
parallel where possible. State is saved after every step: after a failure,
a crash or Ctrl-C, apply again and it resumes where it stopped. The first
Ctrl-C lets running steps finish; the second aborts them.

Given a saved plan (mcplan plan -out FILE), apply carries out exactly its
decisions, without deciding again: it refuses, changing nothing, when the
plan file, the state (its serial or lineage) or mcplan changed since the
plan was made. A saved plan --destroy destroys, without asking.`,
		Example: `  mcplan apply plan.yaml
  mcplan apply --target 'mesh/mesh1/ca/*' --target 'cluster/*/ca/*' plan.yaml
  mcplan apply -o json plan.yaml | jq .
  mcplan plan -out changes.plan plan.yaml && mcplan apply changes.plan`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sp, err := readSavedPlan(args[0])
			if err != nil {
				return err
			}
			if sp != nil {
				return c.applySaved(cmd.Context(), cmd, args[0], sp, flags)
			}
			pr, err := c.prepare(cmd.Context(), args[0], flags, "mcplan apply "+args[0])
			if err != nil {
				return err
			}
			defer pr.close()
			if err := pr.checkAgainstState(); err != nil {
				return err
			}
			sink, stop := c.progressSink(pr.ctx, flags.output, pr.graph.Len())
			opts := c.runOptions(pr, runScope{graph: pr.graph, whole: pr.whole}, flags)
			opts.Check, opts.Sink = true, sink
			rep := engine.Run(pr.ctx, pr.graph, opts)
			stop()
			if err := pr.lockLost(); err != nil {
				return err
			}
			return c.reportRun(rep, flags.output, "apply", func() { c.writeApplySummary(rep, pr.statePath()) })
		},
	}
	addRunFlags(cmd, &flags)
	return cmd
}

func (c *cli) writeApplySummary(rep *engine.Report, statePath string) {
	counts := map[engine.EventType]int{}
	created, updated := 0, 0
	for _, s := range rep.Steps {
		counts[s.Outcome]++
		if s.Outcome == engine.EventSucceeded {
			if s.Action == engine.ActionCreate {
				created++
			} else {
				updated++
			}
		}
	}
	fmt.Fprintln(c.stdout)
	if rep.Err == nil {
		fmt.Fprintf(c.stdout, "Apply complete: %d created, %d updated, %d unchanged, %d forgotten. State: %s\n",
			created, updated, counts[engine.EventUnchanged], len(rep.Forgotten), statePath)
		return
	}
	fmt.Fprintf(c.stdout, "Apply failed: %d created, %d updated, %d unchanged, %d failed, %d not run. State: %s\n",
		created, updated, counts[engine.EventUnchanged], counts[engine.EventFailed],
		counts[engine.EventBlocked]+counts[engine.EventCancelled], statePath)
	c.writeErrors(rep.Err)
}

// writeErrors lists a run's errors, one per failed step.
func (c *cli) writeErrors(err error) {
	var merr *multierror.Error
	if errors.As(err, &merr) {
		fmt.Fprintf(c.stderr, "\n%d error(s):\n", len(merr.Errors))
		for _, e := range merr.Errors {
			fmt.Fprintf(c.stderr, "  - %s\n", strings.ReplaceAll(e.Error(), "\n", "\n    "))
		}
		return
	}
	fmt.Fprintf(c.stderr, "Error: %v\n", err)
}
