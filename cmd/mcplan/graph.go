package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
)

func (c *cli) graphCommand() *cobra.Command {
	var format string
	var targets []string
	var timeline bool
	cmd := &cobra.Command{
		Use:   "graph PLAN",
		Short: "Print the step graph of a plan (DOT or Mermaid), or the timeline of its last apply; contacts no host",
		Long: `Print the step graph of a plan, from the plan alone: in Graphviz's DOT
language (the default) or as a Mermaid flowchart.

With --timeline, print instead where the time of the plan's last apply went,
from its state (the last run that applied a step): each step it ran, when it
began and ended, what it waited for (a node Ready, a Deployment Available...),
and the critical path, the chain of dependencies that ended last. As a
Mermaid gantt chart (the default), one section per step kind, waits as bars
of their own, the critical path tagged crit; or as JSON, with each step's
elapsed, waiting and own work time in nanoseconds (elapsedNs, waitingNs,
workNs) and the run's totals (wallNs, criticalWorkNs, criticalWaitingNs).`,
		Example: `  mcplan graph plan.yaml | dot -Tsvg > plan.svg
  mcplan graph --format mermaid plan.yaml
  mcplan graph --timeline plan.yaml > last-apply.mmd
  mcplan graph --timeline --format json plan.yaml | jq '.steps[] | select(.critical) | {id, workNs, waitingNs}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeline {
				if len(targets) > 0 {
					return errors.New("--timeline shows the whole last apply: it takes no --target")
				}
				if !cmd.Flags().Changed("format") {
					format = "mermaid"
				}
				return c.printTimeline(cmd, args[0], format)
			}
			p, g, err := c.loadOffline(args[0])
			if err != nil {
				return err
			}
			if g, err = c.selectTargets(g, targets); err != nil {
				return err
			}
			switch format {
			case "dot":
				fmt.Fprint(c.stdout, g.DOT(p.Metadata.Name))
			case "mermaid":
				fmt.Fprint(c.stdout, g.Mermaid())
			default:
				return fmt.Errorf("--format %q: want dot or mermaid (json only with --timeline)", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid; with --timeline, mermaid (then the default) or json")
	cmd.Flags().StringArrayVar(&targets, "target", nil, "only these steps (glob on step IDs) and what they depend on")
	cmd.Flags().BoolVar(&timeline, "timeline", false, "print the timeline of the last apply, from the plan's state")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"dot", "mermaid", "json"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// printTimeline prints the timeline of the last apply recorded in the
// state of the plan at path, without building its graph.
func (c *cli) printTimeline(cmd *cobra.Command, path, format string) error {
	if format != "mermaid" && format != "json" {
		return fmt.Errorf("--format %q: with --timeline, want mermaid or json", format)
	}
	store, done, err := c.openState(cmd.Context(), path)
	if err != nil {
		return err
	}
	defer done()
	t, err := engine.NewTimeline(store)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if format == "mermaid" {
		fmt.Fprint(c.stdout, t.Mermaid())
		return nil
	}
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(t)
}
