package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps"
)

func (c *cli) verifyCommand() *cobra.Command {
	var mesh string
	var traffic bool
	cmd := &cobra.Command{
		Use:   "verify PLAN",
		Short: "Check the meshes' control plane, and with --traffic send requests through the sample",
		Long: `Verify the meshes of a plan that apply has built, read-only:
  cacerts       every cluster's Secret istio-system/cacerts chains to the mesh root
  eastwest      every east-west gateway has an address
  remotesecret  every remote secret's kubeconfig, used as it is, lists services
                and endpoint slices in its cluster (requests go from this machine)
  network       istio-system carries the cluster's network label

--traffic also deploys the helloworld sample (namespace sample; Service
helloworld everywhere, Deployment helloworld-v<N> in the Nth cluster, a
sleep pod per cluster), curls helloworld.sample:5000/hello verify.requests
times from each cluster through pods/exec, counts the answers per version
and fails when a version never answers. It skips meshes whose verify.enabled
is false. The apply step verify/sample runs the control-plane checks only.

Exit codes: 0 all checks passed, 1 a check failed or an error.`,
		Example: `  mcplan verify plan.yaml
  mcplan verify --mesh mesh1 --traffic plan.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := c.loadPlan(args[0])
			if err != nil {
				return err
			}
			var meshes []plans.Mesh
			for _, m := range p.Meshes {
				if mesh == "" || m.Name == mesh {
					meshes = append(meshes, m)
				}
			}
			if len(meshes) == 0 {
				return fmt.Errorf("%s: no mesh %q", p.File(), mesh)
			}
			ctx := cmd.Context()
			failed, total := 0, 0
			for _, m := range meshes {
				v := steps.NewVerifySample(p, m)
				fs := v.ControlPlane(ctx, p.StateDir())
				if traffic {
					if m.Verify.Enabled != nil && !*m.Verify.Enabled {
						fmt.Fprintf(c.stderr, "mesh %s: verify.enabled is false: no traffic check\n", m.Name)
					} else {
						fs = append(fs, v.Traffic(ctx, p.StateDir(), nil, func(f string, a ...any) {
							fmt.Fprintf(c.stderr, "mesh %s: %s\n", m.Name, fmt.Sprintf(f, a...))
						})...)
					}
				}
				if err := c.printFindings(m.Name, fs); err != nil {
					return err
				}
				failed += len(steps.Failed(fs))
				total += len(fs)
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: verify: %d of %d checks failed", failed, total)}
			}
			fmt.Fprintf(c.stdout, "All %d checks passed.\n", total)
			return nil
		},
	}
	cmd.Flags().StringVar(&mesh, "mesh", "", "verify only this mesh")
	cmd.Flags().BoolVar(&traffic, "traffic", false, "also deploy the helloworld sample and send requests through the mesh (needs clusters that run pods)")
	return cmd
}

// printFindings prints a mesh's findings as a table.
func (c *cli) printFindings(mesh string, fs []steps.Finding) error {
	fmt.Fprintf(c.stdout, "Mesh %s:\n", mesh)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tCLUSTER\tOBJECT\tRESULT\tDETAIL")
	for _, f := range fs {
		result := "OK"
		if !f.OK {
			result = "FAIL"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Check, f.Cluster, f.Object, result, f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout)
	return nil
}
