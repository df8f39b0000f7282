package plans

import (
	"slices"
	"strings"

	"mcplan.io/mcplan/internal/lists"
)

// The plan's topology: which part each cluster plays. Every rule is here,
// once; the step graph, the steps and verify ask these functions.

// IsPrimary reports whether the cluster runs istiod in the mesh and reads
// the mesh's other clusters (through their remote secrets): every cluster
// of a multi-primary mesh, the listed primaries of a primary-remote one.
func (p *Plan) IsPrimary(mesh, cluster string) bool {
	m := p.Mesh(mesh)
	if m == nil || !slices.Contains(m.Clusters, cluster) {
		return false
	}
	if m.Model == ModelPrimaryRemote {
		return slices.Contains(m.Primaries, cluster)
	}
	return true
}

// PrimaryFor returns the cluster whose istiod serves cluster in mesh: the
// cluster itself when it is a primary, else (primary-remote) the first
// primary on the remote's network; "" when there is none.
func (p *Plan) PrimaryFor(mesh, cluster string) string {
	m := p.Mesh(mesh)
	if m == nil || !slices.Contains(m.Clusters, cluster) {
		return ""
	}
	if p.IsPrimary(mesh, cluster) {
		return cluster
	}
	network := p.ClusterNetwork(cluster)
	for _, primary := range m.Primaries {
		if p.ClusterNetwork(primary) == network {
			return primary
		}
	}
	return ""
}

// MultiNetwork reports whether a mesh's clusters sit on more than one
// network: then every cluster gets an east-west gateway and exposes its
// services through it.
func (p *Plan) MultiNetwork(mesh string) bool {
	m := p.Mesh(mesh)
	if m == nil {
		return false
	}
	var networks []string
	for _, c := range m.Clusters {
		networks = lists.AppendNew(networks, p.ClusterNetwork(c))
	}
	return len(networks) > 1
}

// SameNetworkPeers are the other clusters of a mesh on cluster's network,
// in the mesh's order: istiod sends cluster's sidecars straight to their
// pod IPs, so those must route between the clusters' nodes.
func (p *Plan) SameNetworkPeers(mesh, cluster string) []string {
	m := p.Mesh(mesh)
	if m == nil || !slices.Contains(m.Clusters, cluster) {
		return nil
	}
	network := p.ClusterNetwork(cluster)
	var out []string
	for _, c := range m.Clusters {
		if c != cluster && p.ClusterNetwork(c) == network {
			out = append(out, c)
		}
	}
	return out
}

// NeedsEastWest reports whether a cluster of a mesh gets an east-west
// gateway: every cluster of a mesh that spans networks, and every primary
// of a primary-remote mesh (its istiod is reached through the gateway).
func (p *Plan) NeedsEastWest(mesh, cluster string) bool {
	m := p.Mesh(mesh)
	if m == nil || !slices.Contains(m.Clusters, cluster) {
		return false
	}
	return p.MultiNetwork(mesh) || (m.Model == ModelPrimaryRemote && slices.Contains(m.Primaries, cluster))
}

// ExposesIstiod reports whether a cluster's east-west gateway also serves
// its istiod to the mesh's remotes: the primaries of a primary-remote mesh.
func (p *Plan) ExposesIstiod(mesh, cluster string) bool {
	m := p.Mesh(mesh)
	return m != nil && m.Model == ModelPrimaryRemote && p.IsPrimary(mesh, cluster)
}

// Readers are the clusters of a mesh that read source through a remote
// secret: every primary but source itself, in the mesh's order.
func (p *Plan) Readers(mesh, source string) []string {
	m := p.Mesh(mesh)
	if m == nil {
		return nil
	}
	var out []string
	for _, c := range m.Clusters {
		if c != source && p.IsPrimary(mesh, c) {
			out = append(out, c)
		}
	}
	return out
}

// Sources are the clusters of a mesh that reader reads through their
// remote secrets: those whose Readers include it, in the mesh's order.
func (p *Plan) Sources(mesh, reader string) []string {
	m := p.Mesh(mesh)
	if m == nil {
		return nil
	}
	var out []string
	for _, c := range m.Clusters {
		if slices.Contains(p.Readers(mesh, c), reader) {
			out = append(out, c)
		}
	}
	return out
}

// APISANs are every address a cluster's API is reached by, for the
// servers' certificates: each server's private and SSH address, then
// api.operatorAddress and api.meshAddress, without repeats.
func (p *Plan) APISANs(cluster string) []string {
	c := p.Cluster(cluster)
	if c == nil {
		return nil
	}
	sans := []string{}
	for _, name := range c.Servers {
		if h := p.Host(name); h != nil {
			sans = lists.AppendNew(sans, h.PrivateIP, h.Address)
		}
	}
	return lists.AppendNew(sans, c.API.OperatorAddress, c.API.MeshAddress)
}

// KubeconfigNames are a cluster's entry names in the merged kubeconfig.
type KubeconfigNames struct{ Cluster, User, Context string }

// KubeconfigNames applies the plan's name patterns (kubeconfig.cluster,
// .user, .context; the defaults where unset) to a cluster.
func (p *Plan) KubeconfigNames(cluster string) KubeconfigNames {
	k := Kubeconfig{}
	if p.Kubeconfig != nil {
		k = *p.Kubeconfig
	}
	pattern := func(set, def string) string {
		if set == "" {
			return def
		}
		return set
	}
	r := strings.NewReplacer("{cluster}", cluster)
	return KubeconfigNames{
		Cluster: r.Replace(pattern(k.Cluster, DefaultKubeconfigCluster)),
		User:    r.Replace(pattern(k.User, DefaultKubeconfigUser)),
		Context: r.Replace(pattern(k.Context, DefaultKubeconfigContext)),
	}
}

// ClusterAt is the plan's cluster whose API is reached at address (one of
// its APISANs), "" when none is.
func (p *Plan) ClusterAt(address string) string {
	for _, c := range p.Clusters {
		if slices.Contains(p.APISANs(c.Name), address) {
			return c.Name
		}
	}
	return ""
}

// ClusterManifests are the user's manifests applied to a cluster: its
// mesh's (each of a mesh's clusters gets them), then its own; none for
// a cluster not in the plan.
func (p *Plan) ClusterManifests(cluster string) []ManifestSource {
	c := p.Cluster(cluster)
	if c == nil {
		return nil
	}
	var out []ManifestSource
	if m := p.MeshOf(cluster); m != nil {
		out = append(out, m.Manifests...)
	}
	return append(out, c.Manifests...)
}
