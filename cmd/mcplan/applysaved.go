package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
)

// applySaved carries out the saved plan at path: exactly its decisions,
// without asking or deciding again, refused (changing nothing) when
// another mcplan made it, its plan file or the state changed since, or
// the graph no longer matches it. A saved plan --destroy destroys.
func (c *cli) applySaved(ctx context.Context, cmd *cobra.Command, path string, sp *savedPlan, flags runFlags) error {
	// The flags that shape a plan were fixed when it was made.
	for _, name := range []string{"target", "replace", "force", "no-new-pins"} {
		if cmd.Flags().Changed(name) {
			return fmt.Errorf("apply %s: --%s cannot be given with a saved plan: it was fixed when the plan was made (mcplan show %s)", path, name, path)
		}
	}
	flags.targets, flags.replace, flags.force, flags.noNewPins = sp.Flags.Targets, sp.Flags.Replace, sp.Flags.Force, sp.Flags.NoNewPins
	var destroyTargets []string
	if sp.Flags.Destroy {
		destroyTargets, flags.targets = flags.targets, nil
	}
	pr, err := c.prepare(ctx, sp.Plan.Path, flags, "mcplan apply "+path)
	if err != nil {
		return err
	}
	defer pr.close()
	if err := sp.checkCurrent(path, c.build, pr.planSHA256, pr.store); err != nil {
		return err
	}
	scope, err := planScope(pr, sp.Flags.Destroy, destroyTargets)
	if err != nil {
		return err
	}
	if !scope.destroy {
		if err := pr.checkAgainstState(); err != nil {
			return err
		}
	}
	opts := c.runOptions(pr, scope, flags)
	opts.Replay = engine.ReplayOf(sp.report())
	if err := engine.CheckReplay(scope.graph, opts); err != nil {
		return fmt.Errorf("apply %s: %w", path, err)
	}
	command, total, summary := "apply", scope.graph.Len(), c.writeApplySummary
	if scope.destroy {
		command, total, summary = "destroy", len(pr.store.IDs()), c.writeDestroySummary
	}
	sink, stop := c.progressSink(pr.ctx, flags.output, total)
	opts.Sink = sink
	rep := engine.Run(pr.ctx, scope.graph, opts)
	stop()
	if err := pr.lockLost(); err != nil {
		return err
	}
	return c.reportRun(rep, flags.output, command, func() { summary(rep, pr.statePath()) })
}
