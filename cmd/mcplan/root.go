package main

import (
	"io"
	"os"

	"github.com/spf13/cobra"
)

// cli holds what every command shares: where output goes and the drain
// channel closed by the first Ctrl-C. stdout and stderr escape control
// characters (text from hosts and clusters must not drive the terminal);
// terminal is the raw standard output when it is a terminal, for the live
// view's own cursor movements.
type cli struct {
	stdout   io.Writer
	stderr   io.Writer
	terminal *os.File
	drain    <-chan struct{}
	// stdin is where destroy reads its confirmation; stdinTerminal says
	// whether it is a terminal.
	stdin         io.Reader
	stdinTerminal bool
	// build is this mcplan's version, which saved plans record and check.
	build build
}

// onTerminal says whether standard output is a terminal.
func (c *cli) onTerminal() bool { return c.terminal != nil }

func (c *cli) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "mcplan",
		Short: "Build Istio multicluster meshes on k3s from one plan file",
		Long: `mcplan turns one declarative plan into k3s clusters on your VMs and an
Istio multicluster mesh across them, verified end to end.

  mcplan validate plan.yaml   check the plan
  mcplan plan plan.yaml       show what would change; changes nothing
  mcplan apply plan.yaml      make it so
  mcplan status plan.yaml     show the clusters and the mesh as they are

Exit codes: 0 success (plan --detailed-exitcode: no changes), 1 error
(status: a problem),
2 plan --detailed-exitcode: changes pending, 130 interrupted (apply again
to resume).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(c.stdout)
	root.SetErr(c.stderr)
	root.AddCommand(
		c.validateCommand(),
		c.graphCommand(),
		c.planCommand(),
		c.applyCommand(),
		c.showCommand(),
		c.destroyCommand(),
		c.verifyCommand(),
		c.statusCommand(),
		c.stateCommand(),
		c.kubeconfigCommand(),
		c.schemaCommand(),
		c.versionCommand(),
	)
	return root
}
