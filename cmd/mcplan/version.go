package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// build is the version of this mcplan: the module version and the VCS
// revision it was built from. A saved plan is applied only by the mcplan
// that made it.
type build struct {
	version, revision string
}

// readBuild is this binary's build, from its build information.
func readBuild() build {
	b := build{version: "(devel)", revision: "unknown"}
	if info, ok := debug.ReadBuildInfo(); ok {
		b.version = info.Main.Version
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				b.revision = s.Value
			}
		}
	}
	return b
}

// String is the build as a saved plan records it.
func (b build) String() string { return fmt.Sprintf("%s (revision %s)", b.version, b.revision) }

func (c *cli) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mcplan's version and the formats it reads",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			fmt.Fprintf(c.stdout, "mcplan %s (revision %s, %s, %s/%s)\n", c.build.version, c.build.revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(c.stdout, "plan format: %s, state format: %d, saved plan format: %d\n", plans.APIVersion, engine.StateVersion, savedPlanVersion)
		},
	}
}
