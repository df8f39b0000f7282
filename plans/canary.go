package plans

import "slices"

// DefaultRevisionTag is the revision tag a revisioned mesh points at its
// revision when istio.tags is not set: it is what namespaces labelled
// istio-injection=enabled are injected by.
const DefaultRevisionTag = "default"

// RevisionTags are the revision tags the mesh points at its revision:
// istio.tags, by default [default]; none without a revision (the
// non-revisioned control plane's own webhooks inject).
func (m Mesh) RevisionTags() []string {
	switch {
	case m.Istio.Revision == "":
		return nil
	case len(m.Istio.Tags) > 0:
		return m.Istio.Tags
	}
	return []string{DefaultRevisionTag}
}

// RestartsWorkloads is istio.upgrade.restartWorkloads.
func (m Mesh) RestartsWorkloads() bool {
	return m.Istio.Upgrade != nil && m.Istio.Upgrade.RestartWorkloads
}

// KeepsPrevious is istio.upgrade.keepPrevious.
func (m Mesh) KeepsPrevious() bool { return m.Istio.Upgrade != nil && m.Istio.Upgrade.KeepPrevious }

// Canaries are the meshes being moved to a new Istio revision: for each,
// the other revisions still installed in its clusters ("" is the
// non-revisioned control plane), sorted. A canary's steps (the gate, the
// tag move, the restarts, the gateways one cluster at a time, the old
// revisions' removal) are in the graph while they are (see
// stepBuilder.canary).
type Canaries map[string][]string

// Upgrades are what the state says is being upgraded: the clusters whose
// k3s rolls and the meshes being canaried. The zero value is none.
type Upgrades struct {
	K3s   Rollouts
	Istio Canaries
}

// RevisionName is how plan output and step IDs name a revision: the
// non-revisioned control plane is "default".
func RevisionName(revision string) string {
	if revision == "" {
		return "default"
	}
	return revision
}

// Step IDs of a canary, and of a revisioned mesh's tags.
func IstioGateID(mesh string) string       { return "mesh/" + mesh + "/istio/gate" }
func IstioTagsID(cluster string) string    { return "cluster/" + cluster + "/istio/tags" }
func IstioRestartID(cluster string) string { return "cluster/" + cluster + "/istio/restart" }
func IstioRetireID(cluster, revision string) string {
	return "cluster/" + cluster + "/istio/retire/" + RevisionName(revision)
}

// CanaryInputs are what a canary step's fingerprint covers (its spec's
// Inputs).
type CanaryInputs struct {
	Mesh     string   `json:"mesh"`
	Cluster  string   `json:"cluster,omitempty"`
	From     []string `json:"from"`
	To       string   `json:"to"`
	Tags     []string `json:"tags,omitempty"`
	Revision string   `json:"revision,omitempty"` // a retire step's revision
}

// tags adds a revisioned mesh's tags step of a cluster: after its control
// plane, and during a canary after the gate. It returns its ID ("" when
// the mesh has no revision). A remote's tags point at its primary's
// istiod of the revision, through the address its control plane was
// given (which the step reads).
func (b *stepBuilder) tags(v meshView, c string, from []string) string {
	if v.Istio.Revision == "" {
		return ""
	}
	deps := []string{IstioControlPlaneID(c)}
	if len(from) > 0 {
		deps = append(deps, IstioGateID(v.Name))
	}
	reads := ""
	if !b.plan.IsPrimary(v.Name, c) {
		reads = IstioControlPlaneID(c)
	}
	b.add(StepSpec{ID: IstioTagsID(c), Kind: KindIstioTags, Mesh: v.Name, Cluster: c, DependsOn: deps, Reads: reads,
		Inputs: struct {
			Cluster  string   `json:"cluster"`
			Revision string   `json:"revision"`
			Tags     []string `json:"tags"`
		}{c, v.Istio.Revision, v.RevisionTags()}})
	return IstioTagsID(c)
}

// canary adds the steps of a mesh's move to its revision that run once
// every cluster has it installed beside the old ones (from): the gate
// (the xDS check against the new istiods) before any tag moves, and the
// workload restarts after their cluster's tags moved.
func (b *stepBuilder) canary(v meshView, from []string) {
	gateDeps := []string{}
	for _, c := range v.Clusters {
		gateDeps = append(gateDeps, IstioControlPlaneID(c))
	}
	for _, s := range b.specs {
		if s.Kind == KindIstioRemoteSecret && s.Mesh == v.Name {
			gateDeps = append(gateDeps, s.ID)
		}
	}
	b.add(StepSpec{ID: IstioGateID(v.Name), Kind: KindIstioGate, Mesh: v.Name, DependsOn: gateDeps,
		Inputs: CanaryInputs{Mesh: v.Name, From: from, To: v.Istio.Revision}})
	for _, c := range v.Clusters {
		if !v.RestartsWorkloads() {
			continue
		}
		restartDeps := []string{IstioControlPlaneID(c)}
		if v.Istio.Revision != "" {
			restartDeps = []string{IstioTagsID(c)}
		}
		b.add(StepSpec{ID: IstioRestartID(c), Kind: KindIstioRestart, Mesh: v.Name, Cluster: c,
			DependsOn: restartDeps,
			Inputs:    CanaryInputs{Mesh: v.Name, Cluster: c, From: from, To: v.Istio.Revision, Tags: v.RevisionTags()}})
	}
}

// retire adds the removal of the old revisions of a canary, in every
// cluster once every cluster's gateways and workloads moved (after),
// unless istio.upgrade.keepPrevious. It returns their IDs.
func (b *stepBuilder) retire(v meshView, from []string, after []string) []string {
	if v.KeepsPrevious() {
		return nil
	}
	var ids []string
	for _, c := range v.Clusters {
		for _, rev := range from {
			id := IstioRetireID(c, rev)
			ids = append(ids, id)
			b.add(StepSpec{ID: id, Kind: KindIstioRetire, Mesh: v.Name, Cluster: c, DependsOn: slices.Clone(after),
				Inputs: CanaryInputs{Mesh: v.Name, Cluster: c, From: from, To: v.Istio.Revision, Revision: rev}})
		}
	}
	return ids
}
