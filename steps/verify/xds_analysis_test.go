package verify

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/steps/xds"
)

// injected are the labels of a pod with the sidecar.
func injected() map[string]string {
	return map[string]string{"app": "helloworld", TLSModeLabel: TLSModeIstio}
}

// walkthroughClusters are the walkthrough's two clusters as the xDS
// check reads them when all is well; pod IPs overlap, as with k3s's
// default cluster CIDR on both.
func walkthroughClusters() []xdsCluster {
	return []xdsCluster{
		{Name: "cluster1", Network: "network1", Context: "context-cluster1", NamespaceNetwork: "network1", HasGateway: true,
			Gateways: []string{"10.213.24.11"}, Hello: []xdsPod{{Name: "helloworld-v1-7b9c", IP: "10.42.0.9", Labels: injected()}}},
		{Name: "cluster2", Network: "network2", Context: "context-cluster2", NamespaceNetwork: "network2", HasGateway: true,
			Gateways: []string{"10.213.24.12"}, Hello: []xdsPod{{Name: "helloworld-v2-5d4f", IP: "10.42.0.9", Labels: injected()}}},
	}
}

func pod(ip string, port uint32, cluster, workload string) xds.Endpoint {
	return xds.Endpoint{Address: ip, Port: port, Weight: 1, TLSMode: TLSModeIstio, Cluster: cluster, Workload: workload}
}

func gateway(ip, cluster string) xds.Endpoint {
	return xds.Endpoint{Address: ip, Port: CrossNetworkPort, Weight: 1, TLSMode: TLSModeIstio, Cluster: cluster}
}

// network1Case is what cluster1's istiod is asked for network1's sidecar.
func network1Case(clusters []xdsCluster, endpoints ...xds.Endpoint) xdsCase {
	return xdsCase{Primary: "cluster1", Network: "network1", ProxyCluster: "cluster1", Proxy: "sample/sleep-6d5f (10.42.0.7)",
		Istiod: "pod istio-system/istiod-7f8d port 15010 (port-forward)", Clusters: clusters,
		RemoteSecrets: map[string]string{"cluster2": ""},
		View:          &xds.View{Found: true, Clusters: []string{HelloworldCluster}, Endpoints: endpoints}}
}

func TestAnalyseXDS(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   func() xdsCase
		ok   bool
		// causes: one substring per expected cause, in order.
		causes []string
	}{
		{
			name: "healthy",
			in: func() xdsCase {
				return network1Case(walkthroughClusters(), pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
			},
			ok: true,
		},
		{
			name: "healthy-network2-view",
			in: func() xdsCase {
				in := network1Case(walkthroughClusters(), pod("10.42.0.9", 5000, "cluster2", "helloworld-v2"), gateway("10.213.24.11", "cluster1"))
				in.Network, in.ProxyCluster = "network2", "cluster2"
				return in
			},
			ok: true,
		},
		{
			name: "network-label-removed",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].NamespaceNetwork = ""
				// Overlapping pod IPs: istiod's metadata tells them apart.
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), pod("10.42.0.9", 5000, "cluster2", "helloworld-v2"))
			},
			causes: []string{"network label: namespace istio-system of cluster2 lacks label topology.istio.io/network (want network2)"},
		},
		{
			name: "network-label-wrong-no-metadata",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].NamespaceNetwork = "network1"
				cs[1].Hello[0].IP = "10.43.0.4"
				return network1Case(cs, pod("10.42.0.9", 5000, "", ""), pod("10.43.0.4", 5000, "", ""))
			},
			causes: []string{"has label topology.istio.io/network=network1 (want network2)"},
		},
		{
			name: "remote-secret-missing",
			in: func() xdsCase {
				in := network1Case(walkthroughClusters(), pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"))
				in.RemoteSecrets["cluster2"] = "missing: cluster1's istiod does not see cluster2's services and endpoints. Fix: mcplan apply (istio/remotesecret rewrites it)"
				return in
			},
			causes: []string{"remote secret: the istiod of cluster1 does not see cluster2's endpoints: Secret istio-system/istio-remote-secret-cluster2 in cluster1: missing"},
		},
		{
			name: "gateway-without-address",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Gateways = nil
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), pod("10.42.0.9", 5000, "cluster2", "helloworld-v2"))
			},
			causes: []string{"gateway address: cluster2's east-west gateway (Service istio-system/istio-eastwestgateway) has no address"},
		},
		{
			name: "gateway-service-missing",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Gateways, cs[1].GatewayProblem = nil, "does not exist (mcplan apply installs it: istio/eastwest)"
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"))
			},
			causes: []string{"gateway address: cluster2's east-west gateway (Service istio-system/istio-eastwestgateway) does not exist"},
		},
		{
			name: "tlsmode-label-missing",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Hello[0].Labels = map[string]string{"app": "helloworld"}
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"))
			},
			causes: []string{"tlsMode label: cluster2's helloworld pods (helloworld-v2-5d4f) lack label security.istio.io/tlsMode=istio"},
		},
		{
			name: "stale-gateway",
			in: func() xdsCase {
				return network1Case(walkthroughClusters(), pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.99", "cluster2"))
			},
			causes: []string{"stale istiod: the istiod of cluster1 sends cluster2's east-west gateway at 10.213.24.99:15443, but Service istio-system/istio-eastwestgateway now has 10.213.24.12"},
		},
		{
			name: "stale-gateway-revisioned-istiod",
			in: func() xdsCase {
				c := network1Case(walkthroughClusters(), pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.99", "cluster2"))
				c.IstiodDeployment = "istiod-1-31"
				return c
			},
			causes: []string{"now has 10.213.24.12: istiod missed the change. Fix: restart istiod: kubectl --context context-cluster1 -n istio-system rollout restart deployment/istiod-1-31."},
		},
		{
			// What a real istiod did when the gateway Service became a
			// NodePort: it kept the last address.
			name: "gateway-without-address-stale-istiod",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Gateways = nil
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
			},
			causes: []string{"gateway address: cluster2's east-west gateway", "stale istiod: the istiod of cluster1 sends cluster2's east-west gateway at 10.213.24.12:15443, but Service istio-system/istio-eastwestgateway now has none"},
		},
		{
			name: "stale-pod",
			in: func() xdsCase {
				return network1Case(walkthroughClusters(), pod("10.42.0.3", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
			},
			causes: []string{"stale istiod: the istiod of cluster1 sends endpoints that differ"},
		},
		{
			name: "no-helloworld-cluster",
			in: func() xdsCase {
				in := network1Case(walkthroughClusters())
				in.View = &xds.View{Clusters: []string{"outbound|80||kubernetes.default.svc.cluster.local"}}
				return in
			},
			causes: []string{"sends no cluster outbound|5000||helloworld.sample.svc.cluster.local (1 EDS clusters in CDS)"},
		},
		{
			name: "one-network",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Network, cs[1].NamespaceNetwork, cs[1].Hello[0].IP = "network1", "network1", "10.43.0.4"
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), pod("10.43.0.4", 5000, "cluster2", "helloworld-v2"))
			},
			ok: true,
		},
		{
			// primary-remote on one network, k3s's default cluster CIDR in
			// both clusters: the pods share an IP, istiod's metadata
			// tells them apart.
			name: "one-network-same-pod-ips",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Network, cs[1].NamespaceNetwork = "network1", "network1"
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster2", "helloworld-v2"), pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"))
			},
			ok: true,
		},
		{
			name: "one-network-same-pod-ips-one-missing",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1].Network, cs[1].NamespaceNetwork = "network1", "network1"
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"))
			},
			causes: []string{"stale istiod"},
		},
		{
			name: "three-clusters-two-networks",
			in: func() xdsCase {
				cs := append(walkthroughClusters(), xdsCluster{Name: "cluster3", Network: "network2", Context: "context-cluster3",
					NamespaceNetwork: "network2", HasGateway: true, Gateways: []string{"10.213.24.13"},
					Hello: []xdsPod{{Name: "helloworld-v3-1a2b", IP: "10.42.1.5", Labels: injected()}}})
				in := network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
				in.RemoteSecrets["cluster3"] = ""
				return in
			},
			causes: []string{"stale istiod"},
		},
		{
			name: "cluster-without-gateway-shares-its-networks",
			in: func() xdsCase {
				cs := append(walkthroughClusters(), xdsCluster{Name: "cluster3", Network: "network2", Context: "context-cluster3",
					NamespaceNetwork: "network2", HasGateway: true, GatewayProblem: "does not exist (mcplan apply installs it: istio/eastwest)",
					Hello: []xdsPod{{Name: "helloworld-v3-1a2b", IP: "10.42.1.5", Labels: injected()}}})
				in := network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
				in.RemoteSecrets["cluster3"] = ""
				return in
			},
			ok: true,
		},
		{
			name: "cluster-unreadable",
			in: func() xdsCase {
				cs := walkthroughClusters()
				cs[1] = xdsCluster{Name: "cluster2", Network: "network2", Context: "context-cluster2", HasGateway: true, Unreadable: "its API did not answer"}
				return network1Case(cs, pod("10.42.0.9", 5000, "cluster1", "helloworld-v1"), gateway("10.213.24.12", "cluster2"))
			},
			causes: []string{"cluster cluster2 could not be read (its API did not answer)"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := analyseXDS(tc.in())
			if rep.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v", rep.OK(), tc.ok)
			}
			if len(rep.Causes) != len(tc.causes) {
				t.Errorf("%d causes, want %d: %q", len(rep.Causes), len(tc.causes), rep.Causes)
			}
			for i, want := range tc.causes {
				if i < len(rep.Causes) && !strings.Contains(rep.Causes[i], want) {
					t.Errorf("cause %d = %q, want it to contain %q", i, rep.Causes[i], want)
				}
			}
			f := rep.Finding()
			if f.OK != tc.ok || f.Check != CheckXDS || f.Cluster != "cluster1" {
				t.Errorf("finding %+v", f)
			}
			got := XDSReportsText([]XDSReport{rep}) + "finding: " + fmt.Sprintf("%s | %s | %v | %s\n", f.Cluster, f.Object, f.OK, f.Detail)
			golden.Check(t, filepath.Join("testdata", "xds", tc.name+".txt"), got)
		})
	}
}

func TestXDSReportWithError(t *testing.T) {
	rep := XDSReport{Primary: "cluster1", Network: "network2", EnvoyCluster: HelloworldCluster,
		Error: "cluster cluster1: istiod pod istio-system/istiod-7f8d: xDS port closed: ... connection refused"}
	if rep.OK() {
		t.Error("a report with an error is OK")
	}
	golden.Check(t, filepath.Join("testdata", "xds", "error.txt"), XDSReportsText([]XDSReport{rep}))
}
