package verify

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"mcplan.io/mcplan/steps/xds"
)

// Ports the xDS check expects: helloworld's pods, and the east-west
// gateways' AUTO_PASSTHROUGH port through which other networks reach them.
const (
	HelloworldPort   = 5000
	CrossNetworkPort = 15443
)

// The pod label istiod reads to send an endpoint to other networks:
// injected pods take mutual TLS.
const (
	TLSModeLabel = "security.istio.io/tlsMode"
	TLSModeIstio = "istio"
)

// xdsCluster is what one cluster of the mesh shows, as far as the xDS
// check needs it.
type xdsCluster struct {
	Name string
	// Network is the cluster's network in the plan; Context its
	// kubeconfig context, for the fix hints.
	Network string
	Context string
	// Unreadable says why the cluster's API could not be read; then
	// nothing else is known of it.
	Unreadable string
	// NamespaceNetwork is istio-system's topology.istio.io/network label,
	// "" when absent.
	NamespaceNetwork string
	// HasGateway: the plan gives the cluster an east-west gateway;
	// Gateways are its Service's addresses (LoadBalancer ingress,
	// externalIPs); GatewayProblem says why there are none.
	HasGateway     bool
	Gateways       []string
	GatewayProblem string
	// Hello are helloworld's ready endpoints (its EndpointSlices).
	Hello []xdsPod
}

// xdsPod is one ready helloworld endpoint and its pod's labels.
type xdsPod struct {
	Name   string
	IP     string
	Labels map[string]string
}

// xdsCase is one question: what the istiod of Primary tells a sidecar on
// Network, and what the clusters say it should.
type xdsCase struct {
	Primary      string
	Network      string
	ProxyCluster string
	Proxy        string
	Istiod       string
	// IstiodDeployment is the name of istiod's Deployment, for the fix
	// hints; "" means the default revision's.
	IstiodDeployment string
	Clusters         []xdsCluster
	// RemoteSecrets holds, for each other cluster, why Primary's remote
	// secret for it is not usable ("" when it is).
	RemoteSecrets map[string]string
	View          *xds.View
}

// cluster returns the named cluster of the case.
func (c xdsCase) cluster(name string) *xdsCluster {
	for i := range c.Clusters {
		if c.Clusters[i].Name == name {
			return &c.Clusters[i]
		}
	}
	return nil
}

func (c xdsCase) primaryContext() string {
	if p := c.cluster(c.Primary); p != nil {
		return p.Context
	}
	return "context-" + c.Primary
}

// expected is one endpoint the sidecar should get.
type expected struct {
	addr string
	port uint32
	// clusters are those it stands for (a gateway can stand for several
	// clusters of its network); pod is the pod, for a local endpoint.
	clusters []string
	network  string
	pod      string
	gateway  bool
	matched  bool
}

func (e *expected) key() string { return net.JoinHostPort(e.addr, strconv.Itoa(int(e.port))) }

func (e *expected) standsFor() string {
	if e.gateway {
		return fmt.Sprintf("%s (%s) via east-west gateway", strings.Join(e.clusters, ", "), e.network)
	}
	return fmt.Sprintf("%s pod %s (%s)", e.clusters[0], e.pod, e.network)
}

// gatewaysOf returns the addresses through which istiod sends the
// endpoints of cluster c: its own gateway's, or, when it has none, those
// of every gateway on its network.
func gatewaysOf(clusters []xdsCluster, c *xdsCluster) []string {
	if len(c.Gateways) > 0 {
		return c.Gateways
	}
	var out []string
	for _, o := range clusters {
		if o.Network == c.Network {
			for _, a := range o.Gateways {
				if !slices.Contains(out, a) {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// expectations are the endpoints the sidecar should get: the ready
// helloworld pods of the clusters on its network at port 5000, and for
// each other network's cluster running helloworld, its gateway
// addresses at 15443 (an entry with no address when there is none).
func expectations(in xdsCase) []*expected {
	var out []*expected
	byKey := map[string]*expected{}
	add := func(e *expected) {
		// A gateway stands for every cluster behind it; pods of
		// different clusters may share an IP (k3s's default cluster CIDR
		// everywhere) and stay apart.
		if e.gateway && e.addr != "" {
			if have := byKey[e.key()]; have != nil {
				for _, c := range e.clusters {
					if !slices.Contains(have.clusters, c) {
						have.clusters = append(have.clusters, c)
					}
				}
				return
			}
			byKey[e.key()] = e
		}
		out = append(out, e)
	}
	for i := range in.Clusters {
		c := &in.Clusters[i]
		if len(c.Hello) == 0 {
			continue
		}
		if c.Network == in.Network {
			for _, p := range c.Hello {
				add(&expected{addr: p.IP, port: HelloworldPort, clusters: []string{c.Name}, network: c.Network, pod: p.Name})
			}
			continue
		}
		gws := gatewaysOf(in.Clusters, c)
		if len(gws) == 0 {
			add(&expected{port: CrossNetworkPort, clusters: []string{c.Name}, network: c.Network, gateway: true})
		}
		for _, a := range gws {
			add(&expected{addr: a, port: CrossNetworkPort, clusters: []string{c.Name}, network: c.Network, gateway: true})
		}
	}
	return out
}

// analyseXDS compares what istiod sent with what the clusters say: one
// row per endpoint received (OK or WRONG) and per endpoint expected but
// not received (MISSING), and the likely causes.
func analyseXDS(in xdsCase) XDSReport {
	rep := XDSReport{Primary: in.Primary, Network: in.Network, ProxyCluster: in.ProxyCluster, Proxy: in.Proxy,
		EnvoyCluster: HelloworldCluster, Istiod: in.Istiod, Rows: []XDSRow{}}
	causes := &causeList{}
	if in.View == nil || !in.View.Found {
		n := 0
		if in.View != nil {
			n = len(in.View.Clusters)
		}
		causes.add("no-cluster", fmt.Sprintf("istiod of %s sends no cluster %s (%d EDS clusters in CDS): it does not know Service %s/%s. "+
			"Fix: check that the Service exists in %s (mcplan verify --xds deploys it) and that meshConfig.discoverySelectors, if set, select namespace %s.",
			in.Primary, HelloworldCluster, n, SampleNamespace, SampleService, in.Primary, SampleNamespace))
		rep.Causes = causes.list
		return rep
	}
	for _, c := range in.Clusters {
		if c.Unreadable != "" {
			causes.add("unreadable/"+c.Name, fmt.Sprintf("cluster %s could not be read (%s): what istiod sends for it is not checked.", c.Name, c.Unreadable))
		}
	}
	exps := expectations(in)
	for _, ep := range in.View.Endpoints {
		row := XDSRow{Endpoint: ep.Address, Port: ep.Port, Locality: ep.Locality}
		if e := matchExpected(exps, ep); e != nil {
			e.matched = true
			row.StandsFor, row.Verdict = e.standsFor(), VerdictOK
			rep.Rows = append(rep.Rows, row)
			continue
		}
		row.Verdict = VerdictWrong
		row.StandsFor, row.Why = explainWrong(in, ep, causes)
		rep.Rows = append(rep.Rows, row)
	}
	for _, e := range exps {
		if e.matched {
			continue
		}
		row := XDSRow{Endpoint: e.addr, Port: e.port, StandsFor: e.standsFor(), Verdict: VerdictMissing}
		row.Why = explainMissing(in, e, rep.Rows, causes)
		rep.Rows = append(rep.Rows, row)
	}
	rep.Causes = causes.done()
	return rep
}

// matchExpected finds the expectation a received endpoint meets: a
// gateway at its address (a gateway may come once per locality), or a
// pod not matched yet at its address, of the cluster istiod's metadata
// names when it names one.
func matchExpected(exps []*expected, ep xds.Endpoint) *expected {
	var anyCluster *expected
	for _, e := range exps {
		if e.addr == "" || e.key() != ep.HostPort() {
			continue
		}
		switch {
		case e.gateway:
			return e
		case e.matched:
		case ep.Cluster == "":
			if anyCluster == nil {
				anyCluster = e
			}
		case slices.Contains(e.clusters, ep.Cluster):
			return e
		}
	}
	return anyCluster
}

// podOf finds the helloworld pod with the IP, preferring the cluster
// istiod's metadata names.
func podOf(in xdsCase, ip, preferCluster string) (*xdsCluster, *xdsPod) {
	var found *xdsCluster
	var pod *xdsPod
	for i := range in.Clusters {
		c := &in.Clusters[i]
		for j := range c.Hello {
			if c.Hello[j].IP != ip {
				continue
			}
			if found == nil || c.Name == preferCluster {
				found, pod = c, &c.Hello[j]
			}
		}
	}
	return found, pod
}

// gatewayOf finds the cluster whose east-west gateway has the address.
func gatewayOf(in xdsCase, addr string) *xdsCluster {
	for i := range in.Clusters {
		if slices.Contains(in.Clusters[i].Gateways, addr) {
			return &in.Clusters[i]
		}
	}
	return nil
}

// explainWrong says what a received endpoint that no expectation matched
// stands for and why it is wrong, and adds its likely cause.
func explainWrong(in xdsCase, ep xds.Endpoint, causes *causeList) (standsFor, why string) {
	if c := in.cluster(ep.Cluster); c != nil && c.Unreadable != "" {
		return fmt.Sprintf("%s, per istiod", c.Name), "not checked: the cluster could not be read"
	}
	if c, pod := podOf(in, ep.Address, ep.Cluster); c != nil && (ep.Cluster == "" || ep.Cluster == c.Name) {
		standsFor = fmt.Sprintf("%s pod %s (%s)", c.Name, pod.Name, c.Network)
		if c.Network == in.Network {
			return standsFor, fmt.Sprintf("port %d, want %d", ep.Port, HelloworldPort)
		}
		causes.addLeak(in, c, pod)
		return standsFor, fmt.Sprintf("pod IP of %s, which %s cannot reach: must be %s's east-west gateway", c.Network, in.Network, c.Network)
	}
	if c := gatewayOf(in, ep.Address); c != nil {
		standsFor = fmt.Sprintf("%s (%s) east-west gateway", c.Name, c.Network)
		switch {
		case c.Network == in.Network:
			causes.addStale(in)
			return standsFor, "the gateway of the sidecar's own network"
		case ep.Port != CrossNetworkPort:
			causes.addStale(in)
			return standsFor, fmt.Sprintf("port %d, want %d", ep.Port, CrossNetworkPort)
		}
		causes.addStale(in)
		return standsFor, fmt.Sprintf("%s runs no ready helloworld", c.Name)
	}
	if ep.Port == CrossNetworkPort {
		if c := in.cluster(ep.Cluster); c != nil {
			causes.addStaleGateway(in, c, ep.Address)
			return fmt.Sprintf("%s (%s) east-west gateway, per istiod", c.Name, c.Network),
				fmt.Sprintf("not the gateway's address now (%s)", addressesOrNone(c.Gateways))
		}
		causes.addStale(in)
		return "an east-west gateway unknown to the clusters", "no gateway Service of the mesh has this address"
	}
	causes.addStale(in)
	who := "unknown"
	if ep.Cluster != "" {
		who = "cluster " + ep.Cluster + ", per istiod"
		if ep.Workload != "" {
			who = fmt.Sprintf("%s workload %s, per istiod", ep.Cluster, ep.Workload)
		}
	}
	return who, "not a ready helloworld endpoint of the clusters"
}

// explainMissing says why an expected endpoint may be missing, and adds
// its likely cause.
func explainMissing(in xdsCase, e *expected, rows []XDSRow, causes *causeList) string {
	for _, name := range e.clusters {
		if name == in.Primary {
			continue
		}
		if problem, ok := in.RemoteSecrets[name]; ok && problem != "" {
			causes.addRemoteSecret(in, name, problem)
			return fmt.Sprintf("%s's istiod cannot read %s", in.Primary, name)
		}
	}
	if !e.gateway {
		causes.addStale(in)
		return "ready in the EndpointSlices, not in xDS"
	}
	c := in.cluster(e.clusters[0])
	if e.addr == "" {
		causes.addGatewayAddress(in, c)
		return "the gateway has no address"
	}
	for _, name := range e.clusters {
		c := in.cluster(name)
		var plain []string
		for _, p := range c.Hello {
			if p.Labels[TLSModeLabel] != TLSModeIstio {
				plain = append(plain, p.Name)
			}
		}
		if len(plain) > 0 {
			causes.addTLSMode(in, c, plain)
			return fmt.Sprintf("%s's pods lack %s=%s", name, TLSModeLabel, TLSModeIstio)
		}
	}
	for _, r := range rows {
		if r.Verdict == VerdictWrong && strings.HasPrefix(r.StandsFor, c.Name+" ") {
			return "istiod sends something else for " + c.Name + " (see above)"
		}
	}
	causes.addStale(in)
	return "not in xDS"
}

func addressesOrNone(addrs []string) string {
	if len(addrs) == 0 {
		return "none"
	}
	return strings.Join(addrs, ", ")
}
