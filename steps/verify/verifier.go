package verify

import (
	"context"
	"time"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/xds"
)

// Verifier checks one mesh of a plan that apply has built, read-only
// unless it deploys the sample: part (a) of the walkthrough's
// verification, the control plane (ControlPlane: every cluster's Secret
// cacerts chains to the mesh root, every east-west gateway has an
// address, and every remote secret's kubeconfig, used as it is, lists
// services and endpoint slices in its cluster, what istiod needs); part
// (b), traffic through the sample application (Traffic, needs real pods);
// part (c), what each istiod tells the sample's sidecars (XDS).
type Verifier struct {
	mesh plans.Mesh
	// topo is the mesh's shape, from the plan.
	topo Topology

	// XDSTimeout bounds how long the xDS check asks again while istiod's
	// answers differ from the clusters (istiod is eventually
	// consistent); 0 means DefaultXDSTimeout, at most verify.timeout.
	XDSTimeout time.Duration
	// DialIstiod reaches the istiods for the xDS check of Apply; nil, as
	// in the product, means through the API's pods/portforward. Tests set
	// it to reach istiods run outside the clusters.
	DialIstiod xds.DialIstiod

	// runOnHost runs a read-only command on a host of the plan and
	// returns its stdout, for the podroutes check (WithHosts); nil leaves
	// that check out.
	runOnHost func(ctx context.Context, host, command string) (string, error)

	// wait runs what the checks wait for (WithWait); nil runs it as is.
	wait func(what string, wait func() error) error
}

// WithWait is a copy of the verifier that runs what its checks wait for
// (the sample's Deployments, istiod catching up with the clusters)
// through wait, saying what each waits for: a step passes engine.Env.Wait.
func (s *Verifier) WithWait(wait func(what string, wait func() error) error) *Verifier {
	v := *s
	v.wait = wait
	return &v
}

// waitFor runs one wait of the checks through wait, when set.
func (s *Verifier) waitFor(what string, wait func() error) error {
	if s.wait == nil {
		return wait()
	}
	return s.wait(what, wait)
}

// New returns the verifier of a mesh of p. Which clusters have gateways
// and remote secrets is the plan's topology.
func New(p *plans.Plan, mesh plans.Mesh) *Verifier {
	return &Verifier{mesh: mesh, topo: TopologyOf(p, mesh)}
}

// Topology is the shape the verifier expects of its mesh.
func (s *Verifier) Topology() Topology { return s.topo }

// Clusters are the mesh's clusters, in the plan's order.
func (s *Verifier) Clusters() []string { return s.mesh.Clusters }

// Mesh is the name of the step's mesh.
func (s *Verifier) Mesh() string { return s.mesh.Name }
