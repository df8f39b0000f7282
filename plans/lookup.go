package plans

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Dir is the absolute directory of the plan file; relative paths in the
// plan are resolved against it. For a plan built in Go code it is the
// current directory.
func (p *Plan) Dir() string {
	if p.src != nil && p.src.dir != "" {
		return p.src.dir
	}
	if wd, err := os.Getwd(); err == nil {
		return wd
	}
	return "."
}

// File is the plan's file name as given to Load or Parse ("" for a plan
// built in Go code).
func (p *Plan) File() string {
	if p.src == nil {
		return ""
	}
	return p.src.file
}

// Resolve makes a plan-relative path absolute: ~ is expanded, relative
// paths are resolved against Dir.
func (p *Plan) Resolve(path string) string { return ResolvePath(p.Dir(), path) }

// ResolvePath makes path absolute as Plan.Resolve does, relative to dir.
func ResolvePath(dir, path string) string {
	if path == "" {
		return ""
	}
	if path == "~" || strings.HasPrefix(path, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			path = filepath.Join(home, strings.TrimPrefix(path[1:], "/"))
		}
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return filepath.Clean(path)
}

// StateDir is the absolute state directory (state.dir, default .mcplan).
func (p *Plan) StateDir() string {
	dir := DefaultStateDir
	if p.State != nil && p.State.Dir != "" {
		dir = p.State.Dir
	}
	return p.Resolve(dir)
}

// KubeconfigPath is the absolute path of the merged kubeconfig.
func (p *Plan) KubeconfigPath() string {
	path := DefaultKubeconfigPath
	if p.Kubeconfig != nil && p.Kubeconfig.Path != "" {
		path = p.Kubeconfig.Path
	}
	return p.Resolve(path)
}

// Host returns the host named name, or nil.
func (p *Plan) Host(name string) *Host {
	for i := range p.Hosts {
		if p.Hosts[i].Name == name {
			return &p.Hosts[i]
		}
	}
	return nil
}

// Cluster returns the cluster named name, or nil.
func (p *Plan) Cluster(name string) *Cluster {
	for i := range p.Clusters {
		if p.Clusters[i].Name == name {
			return &p.Clusters[i]
		}
	}
	return nil
}

// Network returns the network named name, or nil.
func (p *Plan) Network(name string) *Network {
	for i := range p.Networks {
		if p.Networks[i].Name == name {
			return &p.Networks[i]
		}
	}
	return nil
}

// Mesh returns the mesh named name, or nil.
func (p *Plan) Mesh(name string) *Mesh {
	for i := range p.Meshes {
		if p.Meshes[i].Name == name {
			return &p.Meshes[i]
		}
	}
	return nil
}

// MeshOf returns the mesh the cluster belongs to, or nil.
func (p *Plan) MeshOf(cluster string) *Mesh {
	for i := range p.Meshes {
		if slices.Contains(p.Meshes[i].Clusters, cluster) {
			return &p.Meshes[i]
		}
	}
	return nil
}

// ClusterNetwork is the network a cluster is on, with the defaults applied
// (its network, else the only network, else network1 when the plan declares
// none); "" when it cannot be told.
func (p *Plan) ClusterNetwork(cluster string) string {
	c := p.Cluster(cluster)
	if c == nil {
		return ""
	}
	if c.Network != "" {
		return c.Network
	}
	switch len(p.Networks) {
	case 0:
		return DefaultNetwork
	case 1:
		return p.Networks[0].Name
	}
	return ""
}

// Hosts returns the cluster's hosts: servers, then agents (none for a
// cluster mcplan did not install).
func (c Cluster) Hosts() []string {
	out := make([]string, 0, len(c.Servers)+len(c.Agents))
	out = append(out, c.Servers...)
	return append(out, c.Agents...)
}

// HostSSH returns the effective SSH settings of the named host: the host's
// overrides, field by field, over the plan's SSH settings, over the
// built-in defaults.
func (p *Plan) HostSSH(name string) SSH {
	eff := p.SSH
	var over SSH
	if h := p.Host(name); h != nil && h.SSH != nil {
		over = *h.SSH
	}
	identityDefaulted := eff.IdentityFile == ""
	if over.User != "" {
		eff.User = over.User
	}
	if over.Port != 0 {
		eff.Port = over.Port
	}
	if over.IdentityFile != "" {
		eff.IdentityFile = over.IdentityFile
		identityDefaulted = false
	}
	if over.PassphraseEnv != "" {
		eff.PassphraseEnv = over.PassphraseEnv
	}
	if over.UseAgent != nil {
		v := *over.UseAgent
		eff.UseAgent = &v
	} else if eff.UseAgent != nil {
		v := *eff.UseAgent
		eff.UseAgent = &v
	}
	if over.KnownHosts != "" {
		eff.KnownHosts = over.KnownHosts
	}
	if over.ProxyJump != "" {
		eff.ProxyJump = over.ProxyJump
	}
	if over.ConnectTimeout != "" {
		eff.ConnectTimeout = over.ConnectTimeout
	}
	// A host that turns the agent on and names no key does not inherit
	// the built-in default key.
	if over.UseAgent != nil && *over.UseAgent && over.IdentityFile == "" &&
		(identityDefaulted || p.SSH.IdentityFile == DefaultIdentityFile) {
		eff.IdentityFile = ""
	}
	applySSHDefaults(&eff)
	return eff
}

// StepTimeout is how long one run of a step of kind (or its removal) may
// take: the plan's timeouts entry, else the kind's default; 0 for a kind
// without either. A plan that passed Validate holds only valid durations.
func (p *Plan) StepTimeout(kind string) time.Duration {
	if s, ok := p.Timeouts[kind]; ok {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			return d
		}
	}
	return DefaultTimeouts()[kind]
}

// StateBackend is state.backend: BackendLocal unless it says kubernetes.
func (p *Plan) StateBackend() string {
	if p.State != nil && p.State.Backend == BackendKubernetes {
		return BackendKubernetes
	}
	return BackendLocal
}

// DefaultLockTimeout is how long a kubernetes backend's lock may go
// unrenewed before another run takes it over.
const DefaultLockTimeout = time.Minute

// LockTimeout is state.lockTimeout, by default DefaultLockTimeout.
func (p *Plan) LockTimeout() time.Duration {
	if p.State == nil || p.State.LockTimeout == "" {
		return DefaultLockTimeout
	}
	d, err := time.ParseDuration(p.State.LockTimeout)
	if err != nil || d <= 0 {
		return DefaultLockTimeout // a validated plan has none
	}
	return d
}

// KubernetesState is state.kubernetes with its defaults and its
// kubeconfig resolved against the plan's folder; ok is false when the
// plan has none.
func (p *Plan) KubernetesState() (k KubernetesBackend, ok bool) {
	if p.State == nil || p.State.Kubernetes == nil {
		return KubernetesBackend{}, false
	}
	k = *p.State.Kubernetes
	if k.Kubeconfig != "" {
		k.Kubeconfig = p.Resolve(k.Kubeconfig)
	}
	if k.Name == "" {
		k.Name = "mcplan-state-" + p.Metadata.Name
	}
	return k, true
}

// PassphraseEnv is state.encryption.passphraseEnv: "" when the state is
// not sealed.
func (p *Plan) PassphraseEnv() string {
	if p.State == nil || p.State.Encryption == nil {
		return ""
	}
	return p.State.Encryption.PassphraseEnv
}

// Installed says whether mcplan installs the cluster (k3s on its servers
// and agents) or was handed it by a kubeconfig (clusters[].kubeconfig):
// the one rule for which clusters have host and k3s steps, whose nodes
// destroy uninstalls.
func (c Cluster) Installed() bool { return c.Kubeconfig == nil }

// ClusterKubeconfigFile is the absolute path of the kubeconfig file of a
// cluster mcplan did not install, "" for one it installs.
func (p *Plan) ClusterKubeconfigFile(c Cluster) string {
	if c.Installed() {
		return ""
	}
	return p.Resolve(c.Kubeconfig.Path)
}
