package plans

import (
	"fmt"
	"slices"
	"strings"
)

// Step kinds: the catalogue of what mcplan does. The steps package has an
// implementation (or an explicit "not implemented") for each.
const (
	KindHostFacts         = "host/facts"
	KindK3sServer         = "k3s/server"
	KindK3sJoin           = "k3s/join"
	KindK3sSnapshot       = "k3s/snapshot"
	KindKubeconfigFetch   = "kubeconfig/fetch"
	KindKubeconfigImport  = "kubeconfig/import"
	KindKubeconfigMerge   = "kubeconfig/merge"
	KindCARoot            = "ca/root"
	KindCAIntermediate    = "ca/intermediate"
	KindIstioNamespace    = "istio/namespace"
	KindIstioCACerts      = "istio/cacerts"
	KindIstioControlPlane = "istio/controlplane"
	KindIstioEastWest     = "istio/eastwest"
	KindIstioExpose       = "istio/expose"
	KindIstioRemoteSecret = "istio/remotesecret"
	KindIstioGate         = "istio/gate"
	KindIstioTags         = "istio/tags"
	KindIstioRestart      = "istio/restart"
	KindIstioRetire       = "istio/retire"
	KindVerifySample      = "verify/sample"
	KindManifestsApply    = "manifests/apply"
)

// Kinds lists every step kind, in the order a plan's steps run.
func Kinds() []string {
	return []string{KindHostFacts, KindK3sSnapshot, KindK3sServer, KindK3sJoin, KindKubeconfigFetch, KindKubeconfigImport,
		KindKubeconfigMerge, KindCARoot, KindCAIntermediate, KindIstioNamespace, KindIstioCACerts, KindIstioControlPlane,
		KindIstioEastWest, KindIstioExpose, KindIstioRemoteSecret, KindIstioGate, KindIstioTags, KindIstioRestart,
		KindIstioRetire, KindVerifySample, KindManifestsApply}
}

// Passing reports whether steps of a kind exist only while an upgrade is
// under way (a rolling k3s upgrade's snapshot; a canary's gate, restarts
// and retirements): once they leave the graph their records are dropped
// without a trace in plan output (engine.Options.Passing).
func Passing(kind string) bool {
	switch kind {
	case KindK3sSnapshot, KindIstioGate, KindIstioRestart, KindIstioRetire:
		return true
	}
	return false
}

// StepSpec is one step a plan asks for: a stable ID, its kind, what it
// depends on, the subject it works on and the inputs that decide whether
// it must run again. It is plain data, built from the plan alone.
type StepSpec struct {
	ID        string
	Kind      string
	DependsOn []string
	// Subject of the step; which fields are set depends on the kind.
	Host    string
	Cluster string
	Mesh    string
	Source  string // remote secrets: the cluster whose API is read
	Target  string // remote secrets: the cluster the secret is written to
	// Reads is the step whose outputs this one reads, one of DependsOn (a
	// step sees only its direct dependencies' outputs): ca/intermediate
	// reads its mesh's root, istio/expose its east-west gateway, a
	// remote's istio/controlplane its primary's expose.
	Reads string
	// Inputs is what the fingerprint covers: every plan setting the step
	// acts on, and nothing else. Never secret content.
	Inputs any
}

// Step IDs. They are part of the state file and of --target, so they stay
// stable across versions.
func HostFactsID(host string) string            { return "host/" + host + "/facts" }
func K3sServerID(host string) string            { return "host/" + host + "/k3s/server" }
func K3sJoinID(host string) string              { return "host/" + host + "/k3s/join" }
func K3sSnapshotID(cluster string) string       { return "cluster/" + cluster + "/k3s/snapshot" }
func KubeconfigFetchID(cluster string) string   { return "cluster/" + cluster + "/kubeconfig/fetch" }
func KubeconfigImportID(cluster string) string  { return "cluster/" + cluster + "/kubeconfig/import" }
func CARootID(mesh string) string               { return "mesh/" + mesh + "/ca/root" }
func CAIntermediateID(cluster string) string    { return "cluster/" + cluster + "/ca/intermediate" }
func IstioNamespaceID(cluster string) string    { return "cluster/" + cluster + "/istio/namespace" }
func IstioCACertsID(cluster string) string      { return "cluster/" + cluster + "/istio/cacerts" }
func IstioControlPlaneID(cluster string) string { return "cluster/" + cluster + "/istio/controlplane" }
func IstioEastWestID(cluster string) string     { return "cluster/" + cluster + "/istio/eastwest" }
func IstioExposeID(cluster string) string       { return "cluster/" + cluster + "/istio/expose" }
func VerifySampleID(mesh string) string         { return "mesh/" + mesh + "/verify/sample" }
func ManifestsApplyID(cluster string) string    { return "cluster/" + cluster + "/manifests" }
func RemoteSecretID(mesh, src, dst string) string {
	return "mesh/" + mesh + "/remotesecret/" + src + "->" + dst
}

// ParseRemoteSecretID is the inverse of RemoteSecretID; ok is false for
// any other ID.
func ParseRemoteSecretID(id string) (mesh, src, dst string, ok bool) {
	rest, ok := strings.CutPrefix(id, "mesh/")
	if !ok {
		return "", "", "", false
	}
	mesh, pair, ok := strings.Cut(rest, "/remotesecret/")
	if !ok || mesh == "" || strings.Contains(mesh, "/") {
		return "", "", "", false
	}
	src, dst, ok = strings.Cut(pair, "->")
	if !ok || src == "" || dst == "" || strings.ContainsAny(src+dst, "/>") {
		return "", "", "", false
	}
	return mesh, src, dst, true
}

// SubjectOfID is the inverse of the one-subject ID builders above: the
// scope ("host", "cluster" or "mesh") and the name in it of a step ID such
// as cluster/c1/istio/controlplane; ok is false for any other shape.
func SubjectOfID(id string) (scope, name string, ok bool) {
	scope, rest, ok := strings.Cut(id, "/")
	if !ok || (scope != "host" && scope != "cluster" && scope != "mesh") {
		return "", "", false
	}
	name, _, ok = strings.Cut(rest, "/")
	if !ok || name == "" {
		return "", "", false
	}
	return scope, name, true
}

// KubeconfigStepID is the step after which mcplan's copy of a cluster's
// admin kubeconfig is kept (statedir.Kubeconfig): fetched from the first
// server of a cluster mcplan installs, imported from the plan's
// kubeconfig file for one it did not. Every step that talks to the
// cluster depends on it.
func KubeconfigStepID(c Cluster) string {
	if c.Installed() {
		return KubeconfigFetchID(c.Name)
	}
	return KubeconfigImportID(c.Name)
}

// KubeconfigMergeID is the ID of the plan's one kubeconfig merge step.
const KubeconfigMergeID = "kubeconfig/merge"

// Rollouts are the clusters whose k3s release (Cluster.K3sRelease)
// differs from what their nodes last installed: an upgrade rolls over
// them (see stepBuilder.cluster).
type Rollouts map[string]bool

// Steps returns the steps of a validated plan with defaults applied, in a
// stable order: hosts and clusters in plan order, then meshes.
func Steps(p *Plan) []StepSpec { return StepsUpgrading(p, Upgrades{}) }

// StepsUpgrading is Steps with the upgrades the state says are under
// way: the clusters of u.K3s rolled in order, the meshes of u.Istio
// canaried.
func StepsUpgrading(p *Plan, u Upgrades) []StepSpec {
	b := stepBuilder{plan: p, rolling: u.K3s, canaries: u.Istio, hosts: map[string]Host{}, clusters: map[string]Cluster{}}
	for _, h := range p.Hosts {
		b.hosts[h.Name] = h
	}
	for _, c := range p.Clusters {
		b.clusters[c.Name] = c
	}
	for _, c := range p.Clusters {
		b.cluster(c)
	}
	b.kubeconfigMerge()
	for _, m := range p.Meshes {
		b.mesh(m)
	}
	for _, c := range p.Clusters {
		b.manifests(c)
	}
	return b.specs
}

type stepBuilder struct {
	plan     *Plan
	rolling  Rollouts
	canaries Canaries
	hosts    map[string]Host
	clusters map[string]Cluster
	specs    []StepSpec
}

func (b *stepBuilder) add(s StepSpec) { b.specs = append(b.specs, s) }

// has reports whether a step of that ID was added.
func (b *stepBuilder) has(id string) bool {
	return slices.ContainsFunc(b.specs, func(s StepSpec) bool { return s.ID == id })
}

// NodeStepIDs returns the k3s step IDs of every host of a cluster,
// servers first; none for a cluster mcplan did not install.
func NodeStepIDs(c Cluster) []string {
	if !c.Installed() {
		return nil
	}
	ids := make([]string, 0, len(c.Servers)+len(c.Agents))
	for _, s := range c.Servers {
		ids = append(ids, K3sServerID(s))
	}
	for _, a := range c.Agents {
		ids = append(ids, K3sJoinID(a))
	}
	return ids
}

type hostInputs struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	PrivateIP string `json:"privateIP"`
	SSH       SSH    `json:"ssh"`
}

func (b *stepBuilder) hostInputs(name string) hostInputs {
	h := b.hosts[name]
	return hostInputs{Name: h.Name, Address: h.Address, PrivateIP: h.PrivateIP, SSH: b.plan.HostSSH(name)}
}

type k3sInputs struct {
	Host    hostInputs `json:"host"`
	Cluster string     `json:"cluster"`
	K3s     K3s        `json:"k3s"`
	API     API        `json:"api"`
	// Join is the first server's private IP for every node but the first.
	Join string `json:"join,omitempty"`
	// TLSSANs are every address the API is reached by.
	TLSSANs []string `json:"tlsSANs,omitempty"`
}

func (b *stepBuilder) cluster(c Cluster) {
	if !c.Installed() {
		b.kubeconfigImport(c)
		return
	}
	first := c.Servers[0]
	sans := b.plan.APISANs(c.Name)
	for _, h := range append(slices.Clone(c.Servers), c.Agents...) {
		b.add(StepSpec{ID: HostFactsID(h), Kind: KindHostFacts, Host: h, Cluster: c.Name, Inputs: b.hostInputs(h)})
	}
	// An upgrade rolls: an etcd snapshot on the first server (embedded
	// etcd only), then the servers one at a time in plan order, then the
	// agents in batches of AgentBatch, each batch after the one before.
	rolling := b.rolling[c.Name]
	if rolling && c.EmbeddedEtcd() {
		b.add(StepSpec{ID: K3sSnapshotID(c.Name), Kind: KindK3sSnapshot, Host: first, Cluster: c.Name,
			DependsOn: []string{HostFactsID(first)},
			Inputs: struct {
				Host    hostInputs `json:"host"`
				Release string     `json:"release"`
			}{b.hostInputs(first), c.K3sRelease()}})
	}
	for i, s := range c.Servers {
		in := k3sInputs{Host: b.hostInputs(s), Cluster: c.Name, K3s: c.K3s, API: c.API, TLSSANs: sans}
		deps := []string{HostFactsID(s)}
		if i > 0 {
			in.Join = b.hosts[first].PrivateIP
			deps = append(deps, K3sServerID(first))
		}
		switch {
		case rolling && i == 0 && c.EmbeddedEtcd():
			deps = append(deps, K3sSnapshotID(c.Name))
		case rolling && i > 1:
			deps = append(deps, K3sServerID(c.Servers[i-1]))
		}
		b.add(StepSpec{ID: K3sServerID(s), Kind: KindK3sServer, Host: s, Cluster: c.Name, DependsOn: deps, Inputs: in})
	}
	batch := c.AgentBatch()
	for j, a := range c.Agents {
		in := k3sInputs{Host: b.hostInputs(a), Cluster: c.Name, K3s: c.K3s, API: API{Port: c.API.Port}, Join: b.hosts[first].PrivateIP}
		deps := []string{HostFactsID(a), K3sServerID(first)}
		if last := c.Servers[len(c.Servers)-1]; rolling && last != first {
			deps = append(deps, K3sServerID(last))
		}
		if rolling && j >= batch {
			deps = append(deps, K3sJoinID(c.Agents[j-batch]))
		}
		b.add(StepSpec{ID: K3sJoinID(a), Kind: KindK3sJoin, Host: a, Cluster: c.Name, DependsOn: deps, Inputs: in})
	}
	b.add(StepSpec{ID: KubeconfigFetchID(c.Name), Kind: KindKubeconfigFetch, Cluster: c.Name,
		DependsOn: NodeStepIDs(c),
		Inputs: struct {
			Cluster    string     `json:"cluster"`
			Server     string     `json:"server"`
			API        API        `json:"api"`
			Kubeconfig Kubeconfig `json:"names"`
		}{c.Name, first, c.API, b.kubeconfig()}})
}

// kubeconfigImport is the one step of a cluster mcplan did not install:
// no host, no k3s; its kubeconfig file is read instead.
func (b *stepBuilder) kubeconfigImport(c Cluster) {
	b.add(StepSpec{ID: KubeconfigImportID(c.Name), Kind: KindKubeconfigImport, Cluster: c.Name,
		Inputs: struct {
			Cluster    string            `json:"cluster"`
			File       ClusterKubeconfig `json:"file"`
			API        API               `json:"api"`
			Kubeconfig Kubeconfig        `json:"names"`
		}{c.Name, *c.Kubeconfig, c.API, b.kubeconfig()}})
}

func (b *stepBuilder) kubeconfig() Kubeconfig {
	if b.plan.Kubeconfig == nil {
		return Kubeconfig{}
	}
	return *b.plan.Kubeconfig
}

func (b *stepBuilder) kubeconfigMerge() {
	var deps, names []string
	for _, c := range b.plan.Clusters {
		deps = append(deps, KubeconfigStepID(c))
		names = append(names, c.Name)
	}
	b.add(StepSpec{ID: KubeconfigMergeID, Kind: KindKubeconfigMerge, DependsOn: deps,
		Inputs: struct {
			Clusters   []string   `json:"clusters"`
			Kubeconfig Kubeconfig `json:"kubeconfig"`
		}{names, b.kubeconfig()}})
}

// meshView is what the mesh steps need to know about a mesh's layout
// (the rules are the plan's, in topology.go).
type meshView struct {
	Mesh
	multiNetwork bool
	// from are the revisions a canary moves the mesh away from (none
	// when there is no canary).
	from []string
}

// movedBy are the steps of a canary after which a cluster's workloads
// use the new revision: its tags moved (a revisioned mesh has them), its
// Deployments restarted. (A canary back to the non-revisioned control
// plane has no tags step; steps.CheckCanaries refuses it, but its graph
// still holds together, so that destroy can run.)
func (v meshView) movedBy(cluster string) []string {
	var ids []string
	if v.Istio.Revision != "" {
		ids = append(ids, IstioTagsID(cluster))
	}
	if v.RestartsWorkloads() {
		ids = append(ids, IstioRestartID(cluster))
	}
	return ids
}

func (b *stepBuilder) mesh(m Mesh) {
	v := meshView{Mesh: m, multiNetwork: b.plan.MultiNetwork(m.Name), from: b.canaries[m.Name]}

	b.add(StepSpec{ID: CARootID(m.Name), Kind: KindCARoot, Mesh: m.Name,
		Inputs: struct {
			Mesh string `json:"mesh"`
			CA   CA     `json:"ca"`
		}{m.Name, CA{RootValidityDays: m.CA.RootValidityDays, KeySize: m.CA.KeySize, RootCert: m.CA.RootCert, RootKey: m.CA.RootKey}}})
	previousGateway := ""
	for _, name := range m.Clusters {
		if gw := b.meshCluster(v, b.clusters[name], previousGateway); gw != "" {
			previousGateway = gw
		}
	}
	var verifyDeps []string
	for _, dst := range m.Clusters {
		if !b.plan.IsPrimary(v.Name, dst) {
			continue
		}
		for _, src := range m.Clusters {
			if src == dst {
				continue
			}
			id := RemoteSecretID(m.Name, src, dst)
			verifyDeps = append(verifyDeps, id)
			b.add(StepSpec{ID: id, Kind: KindIstioRemoteSecret, Mesh: m.Name, Source: src, Target: dst,
				DependsOn: []string{IstioControlPlaneID(src), IstioNamespaceID(dst)},
				Inputs: struct {
					Mesh   string `json:"mesh"`
					Source string `json:"source"`
					Target string `json:"target"`
					API    API    `json:"sourceAPI"`
				}{m.Name, src, dst, b.clusters[src].API}})
		}
	}
	var moved []string // what the old revisions' removal waits for
	for _, c := range m.Clusters {
		verifyDeps = append(verifyDeps, IstioControlPlaneID(c))
		if b.plan.NeedsEastWest(v.Name, c) {
			verifyDeps = append(verifyDeps, IstioExposeID(c))
			// The gateway moved, and what it routes (on a primary of a
			// primary-remote mesh, istiod's ports) to the new revision.
			moved = append(moved, IstioEastWestID(c), IstioExposeID(c))
		}
		if id := b.tags(v, c, v.from); id != "" {
			verifyDeps = append(verifyDeps, id)
		}
	}
	if len(v.from) > 0 {
		for _, c := range m.Clusters {
			moved = append(moved, v.movedBy(c)...)
		}
		b.canary(v, v.from)
		verifyDeps = append(verifyDeps, b.retire(v, v.from, moved)...)
	}
	if m.Verify.On() {
		b.add(StepSpec{ID: VerifySampleID(m.Name), Kind: KindVerifySample, Mesh: m.Name, DependsOn: verifyDeps,
			Inputs: struct {
				Mesh     string   `json:"mesh"`
				Clusters []string `json:"clusters"`
				Verify   Verify   `json:"verify"`
			}{m.Name, m.Clusters, m.Verify}})
	}
}

// meshCluster adds a cluster's mesh steps; previousGateway is the
// east-west step of the mesh's cluster before it that has one, which a
// canary moves first. It returns its own east-west step's ID, if any.
func (b *stepBuilder) meshCluster(v meshView, c Cluster, previousGateway string) string {
	fetch := KubeconfigStepID(c)
	b.add(StepSpec{ID: CAIntermediateID(c.Name), Kind: KindCAIntermediate, Mesh: v.Name, Cluster: c.Name,
		DependsOn: []string{CARootID(v.Name)}, Reads: CARootID(v.Name),
		Inputs: struct {
			Mesh    string `json:"mesh"`
			Cluster string `json:"cluster"`
			CA      CA     `json:"ca"`
		}{v.Name, c.Name, CA{IntermediateValidityDays: v.CA.IntermediateValidityDays, KeySize: v.CA.KeySize}}})
	b.add(StepSpec{ID: IstioNamespaceID(c.Name), Kind: KindIstioNamespace, Mesh: v.Name, Cluster: c.Name,
		DependsOn: []string{fetch},
		Inputs: struct {
			Cluster string `json:"cluster"`
			Network string `json:"network"`
		}{c.Name, c.Network}})
	b.add(StepSpec{ID: IstioCACertsID(c.Name), Kind: KindIstioCACerts, Mesh: v.Name, Cluster: c.Name,
		DependsOn: []string{IstioNamespaceID(c.Name), CAIntermediateID(c.Name)},
		Inputs: struct {
			Mesh    string `json:"mesh"`
			Cluster string `json:"cluster"`
		}{v.Name, c.Name}})

	role, primary, reads := "primary", "", ""
	cpDeps := []string{IstioCACertsID(c.Name)}
	if !b.plan.IsPrimary(v.Name, c.Name) {
		role, primary = "remote", b.plan.PrimaryFor(v.Name, c.Name)
		// A remote's install reads its primary's east-west address from
		// the primary's istio/expose. In a canary that step moves last,
		// after the remote's new revision is gated and its tags moved, so
		// the remote's install reuses the address it was given before.
		if len(v.from) == 0 {
			reads = IstioExposeID(primary)
			cpDeps = append(cpDeps, reads)
		}
	}
	b.add(StepSpec{ID: IstioControlPlaneID(c.Name), Kind: KindIstioControlPlane, Mesh: v.Name, Cluster: c.Name,
		DependsOn: cpDeps, Reads: reads,
		Inputs: struct {
			Mesh    string `json:"mesh"`
			Cluster string `json:"cluster"`
			Network string `json:"network"`
			Model   string `json:"model"`
			Role    string `json:"role"`
			Primary string `json:"primary,omitempty"`
			Istio   Istio  `json:"istio"`
		}{v.Name, c.Name, c.Network, v.Model, role, primary, Istio{Hub: v.Istio.Hub, Tag: v.Istio.Tag, Revision: v.Istio.Revision, MeshConfig: v.Istio.MeshConfig, Values: v.Istio.Values}}})
	if !b.plan.NeedsEastWest(v.Name, c.Name) {
		return ""
	}
	// A canary moves the gateways last, one cluster at a time, each once
	// its cluster's workloads moved.
	ewDeps := []string{IstioControlPlaneID(c.Name)}
	if len(v.from) > 0 {
		ewDeps = append(ewDeps, v.movedBy(c.Name)...)
		if previousGateway != "" {
			ewDeps = append(ewDeps, previousGateway)
		}
	}
	b.add(StepSpec{ID: IstioEastWestID(c.Name), Kind: KindIstioEastWest, Mesh: v.Name, Cluster: c.Name,
		DependsOn: ewDeps,
		Inputs: struct {
			Mesh     string    `json:"mesh"`
			Cluster  string    `json:"cluster"`
			Network  string    `json:"network"`
			Istio    Istio     `json:"istio"`
			EastWest *EastWest `json:"eastWest,omitempty"`
		}{v.Name, c.Name, c.Network, Istio{Hub: v.Istio.Hub, Tag: v.Istio.Tag, Revision: v.Istio.Revision, Values: v.Istio.Values}, c.EastWest}})
	b.add(StepSpec{ID: IstioExposeID(c.Name), Kind: KindIstioExpose, Mesh: v.Name, Cluster: c.Name,
		DependsOn: []string{IstioEastWestID(c.Name)}, Reads: IstioEastWestID(c.Name),
		Inputs: struct {
			Cluster      string `json:"cluster"`
			MultiNetwork bool   `json:"multiNetwork"`
			Role         string `json:"role"`
		}{c.Name, v.multiNetwork, role}})
	return IstioEastWestID(c.Name)
}

// manifests adds the step that applies a cluster's manifests
// (Plan.ClusterManifests), if it has any, once its mesh is up: after its
// control plane, its east-west gateway and what it exposes, and its
// revision tags, those of them the cluster has; a cluster in no mesh
// once its kubeconfig is fetched. The inputs are the sources as the plan
// names them: the files' content is read by the step, whose Check finds
// a changed file as drift.
func (b *stepBuilder) manifests(c Cluster) {
	sources := b.plan.ClusterManifests(c.Name)
	if len(sources) == 0 {
		return
	}
	var deps []string
	for _, id := range []string{IstioControlPlaneID(c.Name), IstioEastWestID(c.Name), IstioExposeID(c.Name), IstioTagsID(c.Name)} {
		if b.has(id) {
			deps = append(deps, id)
		}
	}
	if len(deps) == 0 {
		deps = []string{KubeconfigStepID(c)}
	}
	b.add(StepSpec{ID: ManifestsApplyID(c.Name), Kind: KindManifestsApply, Cluster: c.Name, DependsOn: deps,
		Inputs: struct {
			Cluster   string           `json:"cluster"`
			Manifests []ManifestSource `json:"manifests"`
		}{c.Name, sources}})
}

// String makes a StepSpec readable in test failures.
func (s StepSpec) String() string { return fmt.Sprintf("%s (%s) <- %v", s.ID, s.Kind, s.DependsOn) }
