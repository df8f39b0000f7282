package verify

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// verifiedMesh is a mesh's verification as verify prints it: two
// control-plane checks and an xDS view of each kind.
func verifiedMesh() Result {
	ok := XDSReport{Primary: "cluster1", Network: "network1", ProxyCluster: "cluster1", Proxy: "sample/sleep-6d5f (10.42.0.7)",
		EnvoyCluster: HelloworldCluster, Istiod: "pod istio-system/istiod-7f8d port 15010 (port-forward)",
		Rows: []XDSRow{
			{Endpoint: "10.42.0.9", Port: 5000, StandsFor: "cluster1 pod helloworld-v1-7b9c (network1)", Verdict: VerdictOK},
			{Endpoint: "10.213.24.12", Port: 15443, Locality: "eu/eu-1", StandsFor: "cluster2 (network2) via east-west gateway", Verdict: VerdictOK},
		}}
	bad := XDSReport{Primary: "cluster1", Network: "network2", ProxyCluster: "cluster2", Proxy: "sample/sleep-8c2a (10.42.0.7)",
		EnvoyCluster: HelloworldCluster, Istiod: ok.Istiod,
		Rows: []XDSRow{
			{Endpoint: "10.213.24.11", Port: 15443, StandsFor: "cluster1 (network1) via east-west gateway", Verdict: VerdictOK},
			{Endpoint: "10.42.0.9", Port: 5000, StandsFor: "cluster2 pod helloworld-v2-5d4f (network2)", Verdict: VerdictMissing,
				Why: "cluster1's istiod cannot read cluster2"},
		},
		Causes: []string{"remote secret: the istiod of cluster1 does not see cluster2's endpoints: Secret istio-system/istio-remote-secret-cluster2 in cluster1: missing."}}
	down := XDSReport{Primary: "cluster2", Network: "network1", EnvoyCluster: HelloworldCluster,
		Error: "cluster cluster2: istiod pod istio-system/istiod-5c1e: xDS port closed: ... connection refused. istiod runs with --grpcAddr= (empty), ..."}
	r := Result{Mesh: "mesh1", Findings: []Finding{
		{Check: CheckNetwork, Cluster: "cluster1", Object: "Namespace istio-system", OK: true, Detail: "topology.istio.io/network=network1"},
		{Check: CheckEastWest, Cluster: "cluster2", Object: "Service istio-system/istio-eastwestgateway", OK: true, Detail: "10.213.24.12 (LoadBalancer ingress)"},
	}, XDS: []XDSReport{ok, bad, down}}
	for _, x := range r.XDS {
		r.Findings = append(r.Findings, x.Finding())
	}
	return r
}

func TestVerifyPrintsXDSTables(t *testing.T) {
	r := verifiedMesh()
	var out bytes.Buffer
	if err := WriteText(&out, r); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "xds.txt"), out.String())

	out.Reset()
	if err := WriteJSON(&out, []Result{r}); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "xds.json"), out.String())
	var doc struct {
		Meshes []struct {
			XDS []struct {
				OK   bool `json:"ok"`
				Rows []struct {
					Verdict string `json:"verdict"`
				} `json:"rows"`
			} `json:"xds"`
		} `json:"meshes"`
	}
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if x := doc.Meshes[0].XDS; len(x) != 3 || !x[0].OK || x[1].OK || x[1].Rows[1].Verdict != VerdictMissing {
		t.Errorf("xds in JSON: %+v", x)
	}
}
