package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/status"
)

func (c *cli) statusCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status PLAN",
		Short: "Show the whole plan's clusters, istiods, remote clusters, gateways and credentials, and the last apply; read-only",
		Long: `Status reads every cluster of a plan that apply has built, read-only,
through the admin kubeconfigs in the plan's state (4 clusters at a time,
90s each; a cluster that does not answer is a problem, not an error):
  nodes        each node, whether it is Ready, and its k3s (kubelet) version
  istiod       each revision's istiod and, as istioctl remote-clusters shows
               them, the clusters it reads with their sync status (its
               /debug/clusterz on port 15014, through a port-forward); a
               cluster the plan has it read that it does not list is missing
  east-west    the east-west gateway's addresses
  credentials  the cluster's certificates and their expiry, the ages of the
               reader tokens its mesh's istiods hold for it
and, from the state, when the last apply ran and whether it succeeded.

Exit codes: 0 everything is healthy; 1 a problem (a node not Ready, an
istiod missing or not Ready, a remote cluster missing or not synced, an
east-west gateway without address, an expired credential, a failed or
interrupted last apply), or an error (such as a plan never applied).`,
		Example: `  mcplan status plan.yaml
  mcplan status -o json plan.yaml | jq '.clusters[].istiods[].remoteClusters[] | {id, syncStatus}'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			p, err := c.loadPlan(args[0])
			if err != nil {
				return err
			}
			done, err := openReadOnly(cmd.Context(), p, c.logf)
			if err != nil {
				return err
			}
			defer done()
			store, err := engine.OpenStore(p.StateDir())
			if err != nil {
				return err
			}
			last, err := status.ReadLastApply(store)
			if errors.Is(err, engine.ErrNoApply) {
				return fmt.Errorf("status: %s has not been applied: its state %s records no apply. Run mcplan apply %s first", args[0], store.Path(), args[0])
			}
			if err != nil {
				return fmt.Errorf("status: %w", err)
			}
			r := status.Gather(cmd.Context(), p, last, status.Options{Now: time.Now(), Logf: c.logf})
			if output == "json" {
				err = status.WriteJSON(c.stdout, r)
			} else {
				err = status.WriteText(c.stdout, r)
			}
			if err != nil {
				return err
			}
			switch n := r.ProblemCount(); n {
			case 0:
				return nil
			case 1:
				return &exitCodeError{code: exitError, msg: "Error: status: not healthy: 1 problem"}
			default:
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: status: not healthy: %d problems", n)}
			}
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
