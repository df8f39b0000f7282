package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/steps"
	"mcplan.io/mcplan/steps/remote"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/verify"
)

func (c *cli) verifyCommand() *cobra.Command {
	var mesh, output string
	var traffic, xds bool
	cmd := &cobra.Command{
		Use:   "verify PLAN",
		Short: "Check the meshes' control plane; --xds asks each istiod what it tells the sidecars, --traffic sends requests",
		Long: `Verify the meshes of a plan that apply has built, read-only:
  cacerts       every cluster's Secret istio-system/cacerts chains to the mesh root
  eastwest      every east-west gateway has an address
  remotesecret  every remote secret's kubeconfig, used as it is, lists services
                and endpoint slices in its cluster (requests go from this machine)
  network       istio-system carries the cluster's network label
  podroutes     clusters of the mesh on one network: their pod CIDRs (the Nodes'
                spec.podCIDRs, else the plan's k3s --cluster-cidr, else k3s's
                10.42.0.0/16) are disjoint, and every node of each routes the
                others' (over SSH, read-only: ip -o route get fibmatch; only the
                default route, or none, fails: sidecars reach those pods
                straight at their pod IPs)

--xds deploys the helloworld sample (namespace sample; Service helloworld
everywhere, Deployment helloworld-v<N> in the Nth cluster, a sleep pod per
cluster), waits for it, then asks the istiod of every primary cluster,
through a port-forward to its pod's port 15010, what it tells the sleep
pod's sidecar of every network about helloworld (Istio's ADS client as that
sidecar, CDS and EDS): the ready helloworld pod IPs of the clusters on the
sidecar's network at port 5000, and each other network only as its
east-west gateway addresses at 15443. It asks again for a minute while the
answers differ (istiod is eventually consistent), then prints a table per
istiod and network, with the likely cause of a difference and its fix
(network label, remote secret, gateway address, tlsMode label, stale istiod).
apply runs the same check in verify/sample when verify.enabled.

--traffic also deploys the sample, curls helloworld.sample:5000/hello
verify.requests times from each cluster through pods/exec, counts the
answers per version and fails when a version never answers.

--xds and --traffic skip meshes whose verify.enabled is false.

Exit codes: 0 all checks passed, 1 a check failed or an error.`,
		Example: `  mcplan verify plan.yaml
  mcplan verify --xds plan.yaml
  mcplan verify --mesh mesh1 --traffic -o json plan.yaml`,
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
			// podroutes reaches the nodes as apply does, checking host keys
			// against what apply pinned; verify pins none of its own.
			pins, err := remote.OpenPinFile(statedir.Pins(p.StateDir()), nil, true)
			if err != nil {
				return err
			}
			hosts := steps.NewRuntime(p, pins)
			defer hosts.Close()
			opts := verify.Options{Mesh: mesh, XDS: xds, Traffic: traffic, Hosts: hosts, Logf: func(f string, a ...any) { fmt.Fprintf(c.stderr, f+"\n", a...) }}
			if output == "text" {
				opts.Done = func(r verify.Result) error { return verify.WriteText(c.stdout, r) }
			}
			results, err := verify.Run(cmd.Context(), p, opts)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := verify.WriteJSON(c.stdout, results); err != nil {
					return err
				}
			}
			expired := 0
			if output == "text" {
				expired = writeCredentials(c.stdout, c.stderr, steps.Credentials(cmd.Context(), p, p.StateDir(), time.Now()))
			}
			if expired > 0 {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: verify: %d credentials have expired", expired)}
			}
			if total, failed := verify.Count(results); failed > 0 {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: verify: %d of %d checks failed", failed, total)}
			} else if output == "text" {
				fmt.Fprintf(c.stdout, "All %d checks passed.\n", total)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&mesh, "mesh", "", "verify only this mesh")
	cmd.Flags().BoolVar(&xds, "xds", false, "also deploy the helloworld sample and ask each istiod what it tells every network's sidecars (port-forward to istiod's port 15010)")
	cmd.Flags().BoolVar(&traffic, "traffic", false, "also deploy the helloworld sample and send requests through the mesh (needs clusters that run pods)")
	addOutputFlag(cmd, &output)
	return cmd
}
