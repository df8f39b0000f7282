package main

import (
	"bufio"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/engine/progress"
	"mcplan.io/mcplan/plans"
)

func (c *cli) destroyCommand() *cobra.Command {
	var flags runFlags
	var autoApprove, purgeCA bool
	cmd := &cobra.Command{
		Use:   "destroy PLAN",
		Short: "Remove what the plan made (or the targeted steps and what depends on them)",
		Long: `Undo every step of the plan that an apply recorded, in reverse dependency
order (what depends on a thing goes first), in parallel where independent,
then drop its record: Istio's objects by each step's inventory (only what
mcplan made; a CRD only without custom resources), namespaces only when
nothing anyone else made is in them, remote secrets and reader tokens,
kubeconfig entries, intermediate CA files; agents are drained and their
Nodes deleted, then k3s is uninstalled from every host with the script the
install wrote. A mesh's root CA is moved to .mcplan/removed/<time>/ unless
--purge-ca.

mcplan plan --destroy shows the same without changing anything. On a
terminal, destroy asks for the plan's name (metadata.name); elsewhere it
needs --auto-approve. Interrupted, it leaves each removal recorded: destroy
again resumes.`,
		Example: `  mcplan plan --destroy plan.yaml
  mcplan destroy plan.yaml
  mcplan destroy --auto-approve --target 'cluster/cluster3/*' plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !autoApprove && !c.canConfirm() {
				return errors.New("destroy: not on a terminal, so it cannot ask: pass --auto-approve to destroy without asking")
			}
			targets := flags.targets
			flags.targets = nil
			pr, err := c.prepare(cmd.Context(), args[0], flags, "mcplan destroy "+args[0])
			if err != nil {
				return err
			}
			defer pr.close()
			scope, err := destroyScope(pr, targets)
			if err != nil {
				return err
			}
			scope.purgeCA = purgeCA
			graph := scope.graph
			opts := c.runOptions(pr, scope, flags)
			if !autoApprove {
				dry := opts
				dry.DryRun = true
				progress.WritePlan(c.stdout, engine.Run(pr.ctx, graph, dry), progress.PlanView{Offline: true, Targeted: !scope.whole, Destroy: true})
				if ok, err := c.confirm(pr.plan.Metadata.Name); err != nil || !ok {
					return &exitCodeError{code: exitError, msg: "Destroy cancelled: nothing was changed."}
				}
			}
			sink, stop := c.progressSink(pr.ctx, flags.output, len(pr.store.IDs()))
			opts.Sink = sink
			rep := engine.Run(pr.ctx, graph, opts)
			stop()
			if err := pr.lockLost(); err != nil {
				return err
			}
			return c.reportRun(rep, flags.output, "destroy", func() { c.writeDestroySummary(rep, pr.statePath()) })
		},
	}
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "destroy without asking (required off a terminal)")
	cmd.Flags().BoolVar(&purgeCA, "purge-ca", false, "delete the meshes' root CAs instead of moving them to .mcplan/removed/")
	addRunFlags(cmd, &flags)
	return cmd
}

// destroyScope is what destroy removes of pr's graph (prepared without
// --target): the whole plan, or the targeted steps and everything that
// depends on them.
func destroyScope(pr *prepared, targets []string) (runScope, error) {
	scope := runScope{graph: pr.graph, whole: pr.whole && len(targets) == 0, destroy: true}
	if len(targets) > 0 {
		ids, err := pr.graph.MatchTargets(targets)
		if err != nil {
			return runScope{}, err
		}
		scope.graph = pr.graph.WithDependents(ids)
	}
	if err := pr.checkBackendSurvives(scope.graph); err != nil {
		return runScope{}, err
	}
	return scope, nil
}

// checkBackendSurvives refuses a destroy that removes the cluster holding
// the plan's kubernetes state backend (locked by this run): the state
// would go with it.
func (pr *prepared) checkBackendSurvives(graph *engine.Graph) error {
	if pr.backend == nil {
		return nil
	}
	cl := pr.backend.cluster(pr.plan)
	if cl == "" || !pr.plan.Cluster(cl).Installed() {
		return nil // destroy leaves a cluster mcplan did not install running
	}
	for _, h := range pr.plan.Cluster(cl).Servers {
		if graph.Node(plans.K3sServerID(h)) != nil {
			return fmt.Errorf("destroy: the state is kept in cluster %s, which this destroy removes, and would go with it: run \"mcplan state migrate --to local\" and set state.backend: local first", cl)
		}
	}
	return nil
}

// planScope is what plan and apply of a saved plan work on: pr's graph,
// or, for a destroy, destroyScope's.
func planScope(pr *prepared, destroy bool, destroyTargets []string) (runScope, error) {
	if destroy {
		return destroyScope(pr, destroyTargets)
	}
	return runScope{graph: pr.graph, whole: pr.whole}, nil
}

// canConfirm says whether destroy can ask: standard input and output are
// a terminal.
func (c *cli) canConfirm() bool { return c.onTerminal() && c.stdinTerminal }

// confirm asks for the plan's name and says whether it was typed.
func (c *cli) confirm(name string) (bool, error) {
	fmt.Fprintf(c.stdout, "\nThis removes what mcplan made, as listed above. Type the plan's name (%s) to go on: ", name)
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(line) == name, nil
}

func (c *cli) writeDestroySummary(rep *engine.Report, statePath string) {
	counts := map[engine.EventType]int{}
	for _, r := range rep.Removals {
		counts[r.Outcome]++
	}
	fmt.Fprintln(c.stdout)
	if rep.Err == nil {
		fmt.Fprintf(c.stdout, "Destroy complete: %d removed, %d forgotten. State: %s\n",
			len(rep.Removing), len(rep.Forgotten)-len(rep.Removing), statePath)
		return
	}
	fmt.Fprintf(c.stdout, "Destroy failed: %d done, %d failed, %d not removed. State: %s\n",
		counts[engine.EventSucceeded], counts[engine.EventFailed], counts[engine.EventBlocked]+counts[engine.EventCancelled], statePath)
	c.writeErrors(rep.Err)
}
