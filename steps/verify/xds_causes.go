package verify

import (
	"fmt"
	"slices"
	"strings"

	"mcplan.io/mcplan/steps/istiorender"
)

// causeList collects the likely causes of what the xDS check found, each
// once, in the order found. Each names what was read from the clusters
// and how to fix it.
type causeList struct {
	keys []string
	list []string
}

func (l *causeList) add(key, text string) {
	for _, k := range l.keys {
		if k == key {
			return
		}
	}
	l.keys = append(l.keys, key)
	l.list = append(l.list, text)
}

// rankOf orders causes by key: what the clusters show to be wrong
// first, istiod being behind them last.
func rankOf(key string) int {
	rank := []string{"unreadable/", "no-cluster", "remote-secret/", "network-label/", "gateway/", "tlsmode/", "pod-network/", "stale-gateway/", "stale"}
	for i, prefix := range rank {
		if strings.HasPrefix(key, prefix) {
			return i
		}
	}
	return len(rank)
}

// done returns the causes, most telling first; a stale gateway, once
// found, explains what the general "stale istiod" would.
func (l *causeList) done() []string {
	staleGateway := l.has("stale-gateway/")
	idx := make([]int, 0, len(l.keys))
	for i, k := range l.keys {
		if k == "stale" && staleGateway {
			continue
		}
		idx = append(idx, i)
	}
	slices.SortStableFunc(idx, func(a, b int) int { return rankOf(l.keys[a]) - rankOf(l.keys[b]) })
	out := make([]string, len(idx))
	for i, j := range idx {
		out[i] = l.list[j]
	}
	return out
}

func (l *causeList) has(prefix string) bool {
	for _, k := range l.keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// istiodDeployment is the name of the case's istiod Deployment.
func (c xdsCase) istiodDeployment() string {
	if c.IstiodDeployment == "" {
		return istiorender.IstiodName
	}
	return c.IstiodDeployment
}

// restartIstiod is the command that restarts the istiod of a cluster.
func restartIstiod(in xdsCase) string {
	return fmt.Sprintf("kubectl --context %s -n %s rollout restart deployment/%s", in.primaryContext(), istiorender.Namespace, in.istiodDeployment())
}

// addLeak explains a pod IP of c (on another network than the sidecar's)
// that istiod sent as is: the first of these that the clusters show.
func (l *causeList) addLeak(in xdsCase, c *xdsCluster, pod *xdsPod) {
	switch {
	case c.NamespaceNetwork != c.Network:
		label := fmt.Sprintf("lacks label %s", istiorender.NetworkLabel)
		if c.NamespaceNetwork != "" {
			label = fmt.Sprintf("has label %s=%s", istiorender.NetworkLabel, c.NamespaceNetwork)
		}
		l.add("network-label/"+c.Name, fmt.Sprintf("network label: namespace %s of %s %s (want %s), so the istiod of %s does not put %s's pods on %s "+
			"and sends their pod IPs, which %s cannot reach, instead of %s's east-west gateway. "+
			"Fix: mcplan apply (istio/namespace sets the label), or kubectl --context %s label namespace %s %s=%s --overwrite; "+
			"if the pod IPs stay, restart istiod: %s.",
			istiorender.Namespace, c.Name, label, c.Network, in.Primary, c.Name, c.Network, in.Network, c.Network,
			c.Context, istiorender.Namespace, istiorender.NetworkLabel, c.Network, restartIstiod(in)))
	case len(gatewaysOf(in.Clusters, c)) == 0:
		l.addGatewayAddress(in, c)
	case pod.Labels[istiorender.NetworkLabel] != "" && pod.Labels[istiorender.NetworkLabel] != c.Network:
		l.add("pod-network/"+c.Name, fmt.Sprintf("pod network label: pod %s/%s in %s carries %s=%s, which wins over the namespace's %s. "+
			"Fix: remove the label from the pod template (kubectl --context %s -n %s label pod %s %s-).",
			SampleNamespace, pod.Name, c.Name, istiorender.NetworkLabel, pod.Labels[istiorender.NetworkLabel], c.Network,
			c.Context, SampleNamespace, pod.Name, istiorender.NetworkLabel))
	default:
		l.addStale(in)
	}
}

// addGatewayAddress: the east-west gateway of c (and of every other
// cluster of its network) has no address.
func (l *causeList) addGatewayAddress(in xdsCase, c *xdsCluster) {
	what := "has no address (no LoadBalancer ingress, no externalIPs)"
	switch {
	case !c.HasGateway:
		what = "does not exist: the plan gives " + c.Name + " no east-west gateway"
	case c.GatewayProblem != "":
		what = c.GatewayProblem
	}
	l.add("gateway/"+c.Name, fmt.Sprintf("gateway address: %s's east-west gateway (Service %s/%s) %s, and no other gateway of %s has one, "+
		"so the istiod of %s cannot route %s to %s through a gateway (it sends %s's pod IPs, which %s cannot reach, or nothing). "+
		"Fix: set clusters[%s].eastWest.address in the plan to an address of %s's nodes that the other networks reach "+
		"(k3s's servicelb gives LoadBalancer Services the node's IP unless it is disabled), and mcplan apply.",
		c.Name, istiorender.Namespace, istiorender.EastWestGatewayName, what, c.Network,
		in.Primary, in.Network, c.Network, c.Name, in.Network, c.Name, c.Name))
}

// addRemoteSecret: the primary cannot read cluster name.
func (l *causeList) addRemoteSecret(in xdsCase, name, problem string) {
	l.add("remote-secret/"+name, fmt.Sprintf("remote secret: the istiod of %s does not see %s's endpoints: Secret %s/%s in %s: %s",
		in.Primary, name, istiorender.Namespace, istiorender.RemoteSecretName(name), in.Primary, strings.TrimSuffix(problem, ".")+"."))
}

// addTLSMode: c's helloworld pods lack the label that marks them as
// taking mutual TLS.
func (l *causeList) addTLSMode(in xdsCase, c *xdsCluster, pods []string) {
	l.add("tlsmode/"+c.Name, fmt.Sprintf("tlsMode label: %s's helloworld pods (%s) lack label %s=%s, which sidecar injection adds; "+
		"istiod sends endpoints of another network only for pods that take mutual TLS (the gateway routes by SNI), so %s drops out for %s. "+
		"Fix: check that namespace %s has label %s=enabled and the pods run the istio-proxy sidecar (kubectl --context %s -n %s get pods: 2/2), "+
		"then kubectl --context %s -n %s rollout restart deployment.",
		c.Name, strings.Join(pods, ", "), TLSModeLabel, TLSModeIstio, c.Name, in.Network,
		SampleNamespace, injectionLabel, c.Context, SampleNamespace, c.Context, SampleNamespace))
}

// addStaleGateway: istiod sends a gateway address of c that its Service
// no longer has.
func (l *causeList) addStaleGateway(in xdsCase, c *xdsCluster, addr string) {
	l.add("stale-gateway/"+c.Name+"/"+addr, fmt.Sprintf("stale istiod: the istiod of %s sends %s's east-west gateway at %s:%d, but Service %s/%s now has %s: istiod missed the change. "+
		"Fix: restart istiod: %s.",
		in.Primary, c.Name, addr, CrossNetworkPort, istiorender.Namespace, istiorender.EastWestGatewayName, addressesOrNone(c.Gateways), restartIstiod(in)))
}

// addStale: nothing read from the clusters explains the difference.
func (l *causeList) addStale(in xdsCase) {
	if l.has("stale-gateway/") {
		return
	}
	l.add("stale", fmt.Sprintf("stale istiod: the istiod of %s sends endpoints that differ from the EndpointSlices and gateways, "+
		"while the network labels, gateway addresses and remote secrets look right. Fix: restart istiod (%s) and read its log "+
		"(kubectl --context %s -n %s logs deployment/%s) for errors about the remote clusters.",
		in.Primary, restartIstiod(in), in.primaryContext(), istiorender.Namespace, in.istiodDeployment()))
}
