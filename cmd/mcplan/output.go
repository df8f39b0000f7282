package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"
)

// Output formats of plan, apply and verify.
var outputFormats = []string{"text", "json"}

// addOutputFlag defines -o/--output on cmd, into output.
func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "text", "output format: text or json")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputFormats, cobra.ShellCompDirectiveNoFileComp))
}

// checkOutput refuses an output format other than text and json.
func checkOutput(output string) error {
	if slices.Contains(outputFormats, output) {
		return nil
	}
	return fmt.Errorf("--output %q: want text or json", output)
}
