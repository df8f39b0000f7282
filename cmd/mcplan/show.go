package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine/progress"
)

func (c *cli) showCommand() *cobra.Command {
	var output string
	var full bool
	cmd := &cobra.Command{
		Use:   "show SAVED",
		Short: "Print a saved plan (mcplan plan -out) as plan printed it",
		Long: `Print the actions of a saved plan, made by mcplan plan -out FILE, as
mcplan plan printed them (-o json: as plan -o json did). It reads the
saved plan only: neither the plan file, the state nor any host.`,
		Example: `  mcplan plan -out changes.plan plan.yaml
  mcplan show changes.plan
  mcplan show -o json changes.plan | jq .summary`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			sp, err := readSavedPlan(args[0])
			if err != nil {
				return err
			}
			if sp == nil {
				return fmt.Errorf("show %s: not a saved plan (mcplan plan -out FILE makes one; mcplan plan shows a plan file)", args[0])
			}
			rep := sp.report()
			if output == "json" {
				return writeReportJSON(json.NewEncoder(c.stdout), rep)
			}
			progress.WritePlan(c.stdout, rep, progress.PlanView{
				Offline: sp.Flags.Offline, Targeted: len(sp.Flags.Targets) > 0, Full: full, Destroy: sp.Flags.Destroy,
			})
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "show every changed field of every object (Istio's objects are summarised otherwise)")
	addOutputFlag(cmd, &output)
	return cmd
}
