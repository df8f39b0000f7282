package xds

import (
	"path/filepath"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

func sleepProxy() Proxy {
	return Proxy{
		PodName:        "sleep-6d5f8-x2x9q",
		Namespace:      "sample",
		IPs:            []string{"10.42.0.7"},
		Labels:         map[string]string{"app": "sleep", "security.istio.io/tlsMode": "istio", "service.istio.io/canonical-name": "sleep"},
		Annotations:    map[string]string{"istio.io/rev": "default"},
		ServiceAccount: "sleep",
		NodeName:       "vm1",
		Workload:       "sleep",
		Owner:          "kubernetes://apis/apps/v1/namespaces/sample/deployments/sleep",
		Containers:     []string{"sleep"},
		ClusterID:      "cluster1",
		Network:        "network1",
		MeshID:         "mesh1",
		IstioVersion:   "1.31.0",
	}
}

func TestProxyIdentity(t *testing.T) {
	p := sleepProxy()
	if got, want := p.NodeID(), "sidecar~10.42.0.7~sleep-6d5f8-x2x9q.sample~sample.svc.cluster.local"; got != want {
		t.Errorf("NodeID() = %q, want %q", got, want)
	}
	if got, want := p.String(), "sample/sleep-6d5f8-x2x9q (10.42.0.7)"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	js, err := p.MetadataJSON()
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "sleep-metadata.json"), js+"\n")
}

func TestProxyMetadataLeavesOutEmptyFields(t *testing.T) {
	p := Proxy{PodName: "sleep-1", Namespace: "sample", IPs: []string{"10.42.0.7"}, ClusterID: "cluster1", IstioVersion: "1.31.0"}
	m, err := p.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"NETWORK", "SERVICE_ACCOUNT", "OWNER", "MESH_ID"} {
		if _, ok := m.Fields[k]; ok {
			t.Errorf("metadata has empty %s", k)
		}
	}
	if m.Fields["CLUSTER_ID"].GetStringValue() != "cluster1" || m.Fields["INSTANCE_IPS"].GetStringValue() != "10.42.0.7" {
		t.Errorf("metadata %v", m)
	}
}
