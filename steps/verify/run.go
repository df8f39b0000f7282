package verify

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/plans"
)

// Options say what Run checks and where its progress goes.
type Options struct {
	// Mesh limits Run to one mesh; "" means every mesh of the plan.
	Mesh string
	// XDS and Traffic add those checks to the control plane's, in meshes
	// whose verify.enabled is true.
	XDS, Traffic bool
	// Hosts, when set, reach the nodes for the podroutes check (meshes
	// with clusters on one network); nil leaves it out.
	Hosts HostDialer
	// Logf receives progress, each line starting "mesh <name>: "; nil
	// drops it.
	Logf func(format string, args ...any)
	// Done, when set, receives each mesh's result as soon as it is
	// known; an error stops Run.
	Done func(Result) error
}

// Result is what verify found in one mesh.
type Result struct {
	Mesh     string
	Findings []Finding
	XDS      []XDSReport
}

// Run verifies the meshes of a plan that apply has built, mesh by mesh,
// against the clusters whose admin kubeconfigs are in the plan's state
// directory. It returns every mesh's result; an error means it could not
// go on (no such mesh, a cancelled context, an error from Done), not that
// a check failed: see Failed.
func Run(ctx context.Context, p *plans.Plan, opts Options) ([]Result, error) {
	var meshes []plans.Mesh
	for _, m := range p.Meshes {
		if opts.Mesh == "" || m.Name == opts.Mesh {
			meshes = append(meshes, m)
		}
	}
	if len(meshes) == 0 {
		return nil, fmt.Errorf("%s: no mesh %q", p.File(), opts.Mesh)
	}
	var results []Result
	for _, m := range meshes {
		r := runMesh(ctx, p, m, opts, meshLogf(m.Name, opts.Logf))
		results = append(results, r)
		if opts.Done != nil {
			if err := opts.Done(r); err != nil {
				return results, err
			}
		}
		if err := ctx.Err(); err != nil {
			return results, err
		}
	}
	return results, nil
}

// runMesh runs the checks opts asks for on one mesh.
func runMesh(ctx context.Context, p *plans.Plan, m plans.Mesh, opts Options, logf func(string, ...any)) Result {
	v := New(p, m)
	if opts.Hosts != nil {
		v = v.WithHosts(opts.Hosts)
	}
	r := Result{Mesh: m.Name, Findings: v.ControlPlane(ctx, p.StateDir())}
	if !v.Enabled() {
		if opts.XDS || opts.Traffic {
			logf("verify.enabled is false: no xDS or traffic check")
		}
		return r
	}
	if opts.XDS {
		fs, reports := v.XDS(ctx, p.StateDir(), nil, logf)
		r.Findings, r.XDS = append(r.Findings, fs...), reports
	}
	if opts.Traffic {
		r.Findings = append(r.Findings, v.Traffic(ctx, p.StateDir(), nil, logf)...)
	}
	return r
}

// meshLogf prefixes each line of logf with the mesh, unless the line
// already names it.
func meshLogf(mesh string, logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	prefix := "mesh " + mesh + ": "
	return func(format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if !strings.HasPrefix(msg, prefix) {
			msg = prefix + msg
		}
		logf("%s", msg)
	}
}
