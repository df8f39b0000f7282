package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/steps"
)

// TestVerifyWithoutKubeconfigs runs verify --xds on the walkthrough before
// any apply: no kubeconfig yet, so every check says so, and the xDS check
// stops at the sample it cannot deploy. Nothing is contacted.
func TestVerifyWithoutKubeconfigs(t *testing.T) {
	plan := copyExample(t, "walkthrough")
	dir := filepath.Dir(plan)
	for _, output := range []string{"text", "json"} {
		t.Run(output, func(t *testing.T) {
			r := mcplan(t, "verify", "--xds", "-o", output, plan)
			if r.code != exitError {
				t.Fatalf("exit %d, want %d\n%s\n%s", r.code, exitError, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "Error: verify: 4 of 4 checks failed") {
				t.Errorf("stderr: %s", r.stderr)
			}
			out := strings.ReplaceAll(r.stdout, dir, "$DIR")
			if output == "json" {
				var doc verificationJSON
				if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, r.stdout)
				}
				if doc.Checks != 4 || doc.Failed != 4 || len(doc.Meshes) != 1 || len(doc.Meshes[0].Checks) != 4 {
					t.Errorf("document %+v", doc)
				}
			}
			golden.Check(t, filepath.Join("testdata", "verify", "no-kubeconfigs."+output), out)
		})
	}
	if r := mcplan(t, "verify", "-o", "yaml", plan); r.code != exitError || !strings.Contains(r.stderr, `--output "yaml": want text or json`) {
		t.Errorf("-o yaml: exit %d: %s", r.code, r.stderr)
	}
}

// verifiedMesh is a mesh's verification as verify prints it: two
// control-plane checks and an xDS view of each kind.
func verifiedMesh() meshVerification {
	ok := steps.XDSReport{Primary: "cluster1", Network: "network1", ProxyCluster: "cluster1", Proxy: "sample/sleep-6d5f (10.42.0.7)",
		EnvoyCluster: steps.HelloworldCluster, Istiod: "pod istio-system/istiod-7f8d port 15010 (port-forward)",
		Rows: []steps.XDSRow{
			{Endpoint: "10.42.0.9", Port: 5000, StandsFor: "cluster1 pod helloworld-v1-7b9c (network1)", Verdict: steps.VerdictOK},
			{Endpoint: "10.213.24.12", Port: 15443, Locality: "eu/eu-1", StandsFor: "cluster2 (network2) via east-west gateway", Verdict: steps.VerdictOK},
		}}
	bad := steps.XDSReport{Primary: "cluster1", Network: "network2", ProxyCluster: "cluster2", Proxy: "sample/sleep-8c2a (10.42.0.7)",
		EnvoyCluster: steps.HelloworldCluster, Istiod: ok.Istiod,
		Rows: []steps.XDSRow{
			{Endpoint: "10.213.24.11", Port: 15443, StandsFor: "cluster1 (network1) via east-west gateway", Verdict: steps.VerdictOK},
			{Endpoint: "10.42.0.9", Port: 5000, StandsFor: "cluster2 pod helloworld-v2-5d4f (network2)", Verdict: steps.VerdictMissing,
				Why: "cluster1's istiod cannot read cluster2"},
		},
		Causes: []string{"remote secret: the istiod of cluster1 does not see cluster2's endpoints: Secret istio-system/istio-remote-secret-cluster2 in cluster1: missing."}}
	down := steps.XDSReport{Primary: "cluster2", Network: "network1", EnvoyCluster: steps.HelloworldCluster,
		Error: "cluster cluster2: istiod pod istio-system/istiod-5c1e: xDS port closed: ... connection refused. istiod runs with --grpcAddr= (empty), ..."}
	r := meshVerification{Mesh: "mesh1", Findings: []steps.Finding{
		{Check: steps.CheckNetwork, Cluster: "cluster1", Object: "Namespace istio-system", OK: true, Detail: "topology.istio.io/network=network1"},
		{Check: steps.CheckEastWest, Cluster: "cluster2", Object: "Service istio-system/istio-eastwestgateway", OK: true, Detail: "10.213.24.12 (LoadBalancer ingress)"},
	}, XDS: []steps.XDSReport{ok, bad, down}}
	for _, x := range r.XDS {
		r.Findings = append(r.Findings, x.Finding())
	}
	return r
}

func TestVerifyPrintsXDSTables(t *testing.T) {
	r := verifiedMesh()
	var out bytes.Buffer
	c := &cli{stdout: &out}
	if err := c.printVerification(r); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "verify", "xds.txt"), out.String())

	out.Reset()
	if err := writeVerificationJSON(&out, []meshVerification{r}, len(r.Findings), 2); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "verify", "xds.json"), out.String())
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
	if x := doc.Meshes[0].XDS; len(x) != 3 || !x[0].OK || x[1].OK || x[1].Rows[1].Verdict != steps.VerdictMissing {
		t.Errorf("xds in JSON: %+v", x)
	}
}
