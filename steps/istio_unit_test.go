package steps

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/statedir"
)

func TestRemoteSecretRefusesLoopback(t *testing.T) {
	p := &plans.Plan{Clusters: []plans.Cluster{{Name: "cluster1", API: plans.API{MeshAddress: "127.0.0.1", Port: 6443}}}}
	_, err := NewIstioRemoteSecret(p, plans.StepSpec{Mesh: "mesh1", Source: "cluster1", Target: "cluster2"}, nil).meshServer()
	if err == nil || !strings.Contains(err.Error(), "clusters[cluster1].api.meshAddress") || !strings.Contains(err.Error(), "classic multicluster failure") {
		t.Fatalf("err = %v", err)
	}
}

func TestCheckMeshRootsFindsAForeignRoot(t *testing.T) {
	r := caMesh(t, fastCA(), "cluster1", "cluster2")
	if err := CheckMeshRoots(r.dir, caTestMesh, []string{"cluster1", "cluster2", "not-made-yet"}); err != nil {
		t.Fatalf("same root: %v", err)
	}
	// cluster2's directory from another mesh's CA: a different root.
	other := caMesh(t, fastCA(), "cluster2")
	foreign, err := os.ReadFile(filepath.Join(statedir.CACluster(other.dir, caTestMesh, "cluster2"), statedir.RootCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(statedir.CACluster(r.dir, caTestMesh, "cluster2"), statedir.RootCertFile), foreign, 0o644); err != nil {
		t.Fatal(err)
	}
	err = CheckMeshRoots(r.dir, caTestMesh, []string{"cluster1", "cluster2"})
	if err == nil || !strings.Contains(err.Error(), "do not chain to the same root") || !strings.Contains(err.Error(), "cluster2 has root") {
		t.Fatalf("err = %v", err)
	}
	// istio/cacerts refuses before touching any cluster.
	_, err = NewIstioCACerts(&plans.Plan{Meshes: []plans.Mesh{{Name: caTestMesh, Clusters: []string{"cluster1", "cluster2"}}}}, plans.StepSpec{Mesh: caTestMesh, Cluster: "cluster1"}, nil).files(r.env("x"))
	if err == nil || !strings.Contains(err.Error(), "same root") {
		t.Fatalf("cacerts files: %v", err)
	}
}
