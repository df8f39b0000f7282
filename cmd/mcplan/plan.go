package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/engine/progress"
	"mcplan.io/mcplan/steps"
)

func (c *cli) planCommand() *cobra.Command {
	var flags runFlags
	var offline, detailed, full, destroy bool
	var out string
	cmd := &cobra.Command{
		Use:   "plan PLAN",
		Short: "Show what apply would change, changing nothing",
		Long: `Show, per step, what apply would do: + create, ~ update, = no change,
- remove (left the plan: what it made goes, then its record; each line
says what). --destroy shows what mcplan destroy would remove. Steps whose
inputs are unchanged are checked
against the live system (read-only) unless --offline is given, in which
case the plan file and the state alone decide.

-out FILE saves the plan (0600, no secret in it): mcplan show FILE prints
it again, and mcplan apply FILE carries out exactly these decisions without
deciding again, refused if the plan file, the state or mcplan changed
since.`,
		Example: `  mcplan plan plan.yaml
  mcplan plan --offline --detailed-exitcode plan.yaml   # exit 2 when there are changes
  mcplan plan --target 'mesh/*/ca/*' plan.yaml
  mcplan plan -out changes.plan plan.yaml && mcplan apply changes.plan`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Online, plan may pin host keys: it holds the lock like apply.
			lockFor := ""
			if !offline {
				lockFor = "mcplan plan " + args[0]
			}
			saved := savedPlanFlags{Targets: flags.targets, Replace: flags.replace, Destroy: destroy, Offline: offline, Force: flags.force, NoNewPins: flags.noNewPins}
			// With --destroy, --target picks what goes with its dependents,
			// not with its dependencies.
			var targets []string
			if destroy {
				targets, flags.targets = flags.targets, nil
			}
			pr, err := c.prepare(cmd.Context(), args[0], flags, lockFor)
			if err != nil {
				return err
			}
			defer pr.close()
			if err := pr.checkAgainstState(); err != nil && !destroy {
				return err
			}
			scope, err := planScope(pr, destroy, targets)
			if err != nil {
				return err
			}
			opts := c.runOptions(pr, scope, flags)
			opts.DryRun, opts.Check = true, !offline
			rep := engine.Run(pr.ctx, scope.graph, opts)
			if flags.output == "json" {
				if err := writeReportJSON(json.NewEncoder(c.stdout), rep); err != nil {
					return err
				}
			} else {
				progress.WritePlan(c.stdout, rep, progress.PlanView{Offline: offline, Targeted: !scope.whole, Full: full, Destroy: destroy})
				if !offline && !destroy {
					writeCredentials(c.stdout, c.stderr, steps.Credentials(cmd.Context(), pr.plan, pr.plan.StateDir(), time.Now()))
				}
			}
			if rep.Err != nil {
				return fmt.Errorf("plan: %w", rep.Err)
			}
			if out != "" {
				if err := c.savePlan(out, pr, saved, rep, flags.output); err != nil {
					return err
				}
			}
			if detailed && rep.Changes() {
				return &exitCodeError{code: exitChanges}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&offline, "offline", false, "decide from the plan and state alone; contact no host or cluster")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 0 when there are no changes, 2 when there are, 1 on error")
	cmd.Flags().BoolVar(&destroy, "destroy", false, "show what mcplan destroy would remove")
	cmd.Flags().StringVar(&out, "out", "", "save the plan to this file (0600) for mcplan show and mcplan apply FILE")
	cmd.Flags().BoolVar(&full, "full", false, "show every changed field of every object (Istio's objects are summarised otherwise)")
	addRunFlags(cmd, &flags)
	return cmd
}

func addRunFlags(cmd *cobra.Command, flags *runFlags) {
	cmd.Flags().StringArrayVar(&flags.targets, "target", nil, "only steps matching this glob on step IDs, and what they depend on (repeatable)")
	cmd.Flags().IntVar(&flags.parallelism, "parallelism", engine.DefaultParallelism, "how many steps run at once")
	cmd.Flags().StringArrayVar(&flags.replace, "replace", nil, "run this step again whatever its record and the live system say, as Terraform's -replace; what depends on it follows (repeatable, a step ID)")
	cmd.Flags().BoolVar(&flags.force, "force", false, "let a k3s upgrade go while a node of its cluster is not Ready")
	cmd.Flags().DurationVar(&flags.lockTimeout, "lock-timeout", 0, "wait this long for a state lock another run holds (as terraform's -lock-timeout); 0 refuses at once, naming the holder")
	cmd.Flags().BoolVar(&flags.noNewPins, "no-new-pins", false, "with ssh.knownHosts: pin, fail on a host that has no pinned key instead of pinning it (for CI)")
	addOutputFlag(cmd, &flags.output)
}

// savePlan writes the plan's report rep to path as a saved plan and, in
// text output, says how to carry it out.
func (c *cli) savePlan(path string, pr *prepared, flags savedPlanFlags, rep *engine.Report, output string) error {
	sp, err := newSavedPlan(c.build, pr.plan.File(), pr.planSHA256, pr.store, flags, rep)
	if err != nil {
		return err
	}
	if err := sp.write(path); err != nil {
		return err
	}
	if output != "json" {
		fmt.Fprintf(c.stdout, "\nSaved the plan to %s. To carry out exactly these actions: mcplan apply %s\n", path, path)
	}
	return nil
}
