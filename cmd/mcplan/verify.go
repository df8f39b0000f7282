package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps"
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
			var results []meshVerification
			for _, m := range meshes {
				prefix := "mesh " + m.Name + ": "
				logf := func(f string, a ...any) {
					msg := fmt.Sprintf(f, a...)
					if !strings.HasPrefix(msg, prefix) {
						msg = prefix + msg
					}
					fmt.Fprintln(c.stderr, msg)
				}
				v := steps.NewVerifySample(p, m)
				r := meshVerification{Mesh: m.Name, Findings: v.ControlPlane(ctx, p.StateDir())}
				enabled := m.Verify.On()
				if (traffic || xds) && !enabled {
					fmt.Fprintf(c.stderr, "mesh %s: verify.enabled is false: no xDS or traffic check\n", m.Name)
				}
				if xds && enabled {
					fs, reports := v.XDS(ctx, p.StateDir(), nil, logf)
					r.Findings, r.XDS = append(r.Findings, fs...), reports
				}
				if traffic && enabled {
					r.Findings = append(r.Findings, v.Traffic(ctx, p.StateDir(), nil, logf)...)
				}
				results = append(results, r)
				if output == "text" {
					if err := c.printVerification(r); err != nil {
						return err
					}
				}
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			failed, total := 0, 0
			for _, r := range results {
				failed += len(steps.Failed(r.Findings))
				total += len(r.Findings)
			}
			if output == "json" {
				if err := writeVerificationJSON(c.stdout, results, total, failed); err != nil {
					return err
				}
			}
			if failed > 0 {
				return &exitCodeError{code: exitError, msg: fmt.Sprintf("Error: verify: %d of %d checks failed", failed, total)}
			}
			if output == "text" {
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

// meshVerification is what verify found in one mesh.
type meshVerification struct {
	Mesh     string
	Findings []steps.Finding
	XDS      []steps.XDSReport
}

// printVerification prints a mesh's findings as a table, then the xDS
// tables.
func (c *cli) printVerification(r meshVerification) error {
	fmt.Fprintf(c.stdout, "Mesh %s:\n", r.Mesh)
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  CHECK\tCLUSTER\tOBJECT\tRESULT\tDETAIL")
	for _, f := range r.Findings {
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
	return steps.WriteXDSReports(c.stdout, r.XDS)
}

// The JSON document of `verify -o json`.
type (
	verificationJSON struct {
		Meshes []meshVerificationJSON `json:"meshes"`
		Checks int                    `json:"checks"`
		Failed int                    `json:"failed"`
	}
	meshVerificationJSON struct {
		Mesh   string        `json:"mesh"`
		Checks []findingJSON `json:"checks"`
		XDS    []xdsJSON     `json:"xds,omitempty"`
	}
	findingJSON struct {
		Check   string `json:"check"`
		Cluster string `json:"cluster"`
		Object  string `json:"object"`
		OK      bool   `json:"ok"`
		Detail  string `json:"detail"`
	}
	xdsJSON struct {
		steps.XDSReport
		OK bool `json:"ok"`
	}
)

// writeVerificationJSON prints the results as one JSON document.
func writeVerificationJSON(w io.Writer, results []meshVerification, total, failed int) error {
	doc := verificationJSON{Meshes: []meshVerificationJSON{}, Checks: total, Failed: failed}
	for _, r := range results {
		m := meshVerificationJSON{Mesh: r.Mesh, Checks: []findingJSON{}}
		for _, f := range r.Findings {
			m.Checks = append(m.Checks, findingJSON{Check: f.Check, Cluster: f.Cluster, Object: f.Object, OK: f.OK, Detail: f.Detail})
		}
		for _, x := range r.XDS {
			m.XDS = append(m.XDS, xdsJSON{XDSReport: x, OK: x.OK()})
		}
		doc.Meshes = append(doc.Meshes, m)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
