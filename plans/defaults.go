package plans

import (
	"net/netip"
	"time"
)

// Built-in defaults. Every default of a plan is applied in this file.
const (
	DefaultSSHUser             = "root"
	DefaultSSHPort             = 22
	DefaultIdentityFile        = "~/.ssh/id_ed25519"
	DefaultKnownHosts          = "~/.ssh/known_hosts"
	DefaultConnectTimeout      = "10s"
	DefaultNetwork             = "network1"
	DefaultK3sChannel          = "stable"
	DefaultK3sClusterCIDR      = "10.42.0.0/16" // k3s's pod CIDR without --cluster-cidr
	DefaultAPIPort             = 6443
	DefaultModel               = ModelMultiPrimary
	DefaultRootValidityDays    = 3650
	DefaultIntermediateDays    = 730
	DefaultKeySize             = 4096
	DefaultSample              = "helloworld"
	DefaultVerifyRequests      = 20
	DefaultVerifyTimeout       = "5m"
	DefaultKubeconfigPath      = "./kubeconfig"
	DefaultKubeconfigCluster   = "{cluster}"
	DefaultKubeconfigUser      = "user-{cluster}"
	DefaultKubeconfigContext   = "context-{cluster}"
	DefaultStateDir            = ".mcplan"
	KnownHostsPin              = "pin"
	ClusterPlaceholder         = "{cluster}"
	defaultAccessLogFile       = "/dev/stdout"
	defaultAccessLogEncoding   = "JSON"
	meshConfigAccessLogFile    = "accessLogFile"
	meshConfigAccessLogEncoder = "accessLogEncoding"
)

// DefaultTimeouts bound one run of a step of each kind (and of its
// removal) unless the plan's timeouts say otherwise: long enough for the
// slowest honest run (a k3s download and install, then up to 5 minutes
// for the node to be Ready; a drain of up to 5 minutes), short enough
// that a hung command or API call ends the run with an error naming the
// step.
func DefaultTimeouts() map[string]time.Duration {
	return map[string]time.Duration{
		KindHostFacts:         2 * time.Minute,
		KindK3sSnapshot:       5 * time.Minute,
		KindK3sServer:         15 * time.Minute,
		KindK3sJoin:           15 * time.Minute,
		KindKubeconfigFetch:   2 * time.Minute,
		KindKubeconfigImport:  time.Minute,
		KindKubeconfigMerge:   time.Minute,
		KindCARoot:            2 * time.Minute,
		KindCAIntermediate:    2 * time.Minute,
		KindIstioNamespace:    5 * time.Minute,
		KindIstioCACerts:      2 * time.Minute,
		KindIstioControlPlane: 10 * time.Minute,
		KindIstioEastWest:     10 * time.Minute,
		KindIstioExpose:       5 * time.Minute,
		KindIstioRemoteSecret: 5 * time.Minute,
		KindIstioGate:         10 * time.Minute,
		KindIstioTags:         2 * time.Minute,
		KindIstioRestart:      30 * time.Minute,
		KindIstioRetire:       5 * time.Minute,
		KindVerifySample:      15 * time.Minute,
		KindManifestsApply:    10 * time.Minute,
	}
}

// DefaultMeshConfig is the meshConfig a mesh gets when it sets none: access
// logs to stdout as JSON, as in the walkthrough.
func DefaultMeshConfig() map[string]any {
	return map[string]any{
		meshConfigAccessLogFile:    defaultAccessLogFile,
		meshConfigAccessLogEncoder: defaultAccessLogEncoding,
	}
}

// ApplyDefaults fills every field the user left empty. It never overwrites
// a value the user set, and it never fills a field whose default would be
// ambiguous (a cluster without network when there are several networks), so
// Validate still reports those. It is idempotent.
func ApplyDefaults(p *Plan) {
	applySSHDefaults(&p.SSH)

	for i := range p.Hosts {
		h := &p.Hosts[i]
		if h.PrivateIP == "" {
			if ip, err := netip.ParseAddr(h.Address); err == nil {
				h.PrivateIP = ip.String()
			}
		}
	}

	if len(p.Networks) == 0 {
		p.Networks = []Network{{Name: DefaultNetwork}}
		for i := range p.Clusters {
			if p.Clusters[i].Network == "" {
				p.Clusters[i].Network = DefaultNetwork
			}
		}
	}
	for i := range p.Clusters {
		c := &p.Clusters[i]
		if c.Network == "" && len(p.Networks) == 1 {
			c.Network = p.Networks[0].Name
		}
		if c.API.Port == 0 {
			c.API.Port = DefaultAPIPort
		}
		if !c.Installed() {
			continue // no k3s settings; reached at its kubeconfig's server
		}
		if c.K3s.Version == "" && c.K3s.Channel == "" {
			c.K3s.Channel = DefaultK3sChannel
		}
		first := p.firstServerIP(*c)
		if c.API.OperatorAddress == "" {
			c.API.OperatorAddress = first
		}
		if c.API.MeshAddress == "" {
			c.API.MeshAddress = first
		}
	}

	for i := range p.Meshes {
		m := &p.Meshes[i]
		if m.Model == "" {
			m.Model = DefaultModel
		}
		if len(m.Istio.MeshConfig) == 0 {
			m.Istio.MeshConfig = DefaultMeshConfig()
		}
		if m.CA.RootValidityDays == 0 {
			m.CA.RootValidityDays = DefaultRootValidityDays
		}
		if m.CA.IntermediateValidityDays == 0 {
			m.CA.IntermediateValidityDays = DefaultIntermediateDays
		}
		if m.CA.KeySize == 0 {
			m.CA.KeySize = DefaultKeySize
		}
		if m.Verify.Enabled == nil {
			enabled := true
			m.Verify.Enabled = &enabled
		}
		if m.Verify.Sample == "" {
			m.Verify.Sample = DefaultSample
		}
		if m.Verify.Requests == 0 {
			m.Verify.Requests = DefaultVerifyRequests
		}
		if m.Verify.Timeout == "" {
			m.Verify.Timeout = DefaultVerifyTimeout
		}
	}

	if p.Kubeconfig == nil {
		p.Kubeconfig = &Kubeconfig{}
	}
	k := p.Kubeconfig
	if k.Path == "" {
		k.Path = DefaultKubeconfigPath
	}
	if k.Cluster == "" {
		k.Cluster = DefaultKubeconfigCluster
	}
	if k.User == "" {
		k.User = DefaultKubeconfigUser
	}
	if k.Context == "" {
		k.Context = DefaultKubeconfigContext
	}

	if p.State == nil {
		p.State = &State{}
	}
	if p.State.Dir == "" {
		p.State.Dir = DefaultStateDir
	}
}

// applySSHDefaults fills the built-in SSH defaults into s.
func applySSHDefaults(s *SSH) {
	if s.User == "" {
		s.User = DefaultSSHUser
	}
	if s.Port == 0 {
		s.Port = DefaultSSHPort
	}
	if s.IdentityFile == "" && (s.UseAgent == nil || !*s.UseAgent) {
		s.IdentityFile = DefaultIdentityFile
	}
	if s.KnownHosts == "" {
		s.KnownHosts = DefaultKnownHosts
	}
	if s.ConnectTimeout == "" {
		s.ConnectTimeout = DefaultConnectTimeout
	}
}

// firstServerIP is the private IP of the cluster's first server as it will
// be after defaults (privateIP, else address when that is an IP); "" when
// unknown.
func (p *Plan) firstServerIP(c Cluster) string {
	if len(c.Servers) == 0 {
		return ""
	}
	h := p.Host(c.Servers[0])
	if h == nil {
		return ""
	}
	if h.PrivateIP != "" {
		return h.PrivateIP
	}
	if ip, err := netip.ParseAddr(h.Address); err == nil {
		return ip.String()
	}
	return ""
}
