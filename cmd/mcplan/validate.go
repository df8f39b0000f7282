package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/plans"
)

func (c *cli) validateCommand() *cobra.Command {
	var showDefaults bool
	cmd := &cobra.Command{
		Use:   "validate PLAN",
		Short: "Check a plan file and report every problem at once",
		Example: `  mcplan validate plan.yaml
  mcplan validate --show-defaults plan.yaml   # print the plan with every default filled in`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, g, err := c.loadOffline(args[0])
			if err != nil {
				return err
			}
			if showDefaults {
				out, err := plans.MarshalEffective(p)
				if err != nil {
					return err
				}
				_, err = c.stdout.Write(out)
				return err
			}
			fmt.Fprintf(c.stdout, "%s: valid plan %q: %d hosts, %d clusters, %d meshes, %d steps.\n",
				args[0], p.Metadata.Name, len(p.Hosts), len(p.Clusters), len(p.Meshes), g.Len())
			return nil
		},
	}
	cmd.Flags().BoolVar(&showDefaults, "show-defaults", false, "print the effective plan, defaults filled in, as YAML")
	return cmd
}
