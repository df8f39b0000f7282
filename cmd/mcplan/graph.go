package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (c *cli) graphCommand() *cobra.Command {
	var format string
	var targets []string
	cmd := &cobra.Command{
		Use:   "graph PLAN",
		Short: "Print the step graph of a plan (DOT or Mermaid); contacts no host",
		Example: `  mcplan graph plan.yaml | dot -Tsvg > plan.svg
  mcplan graph --format mermaid plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
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
				return fmt.Errorf("--format %q: want dot or mermaid", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "dot", "output format: dot or mermaid")
	cmd.Flags().StringArrayVar(&targets, "target", nil, "only these steps (glob on step IDs) and what they depend on")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"dot", "mermaid"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}
