package main

import (
	"github.com/spf13/cobra"

	"mcplan.io/mcplan/schemas"
)

func (c *cli) schemaCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the plan format",
		Long: `Print the JSON Schema of the plan format. Editors use it for completion
and checks, e.g. with the YAML language server:

  # yaml-language-server: $schema=./plan.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := c.stdout.Write(schemas.JSON())
			return err
		},
	}
}
