package status

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"mcplan.io/mcplan/internal/golden"
	"mcplan.io/mcplan/steps"
)

// TestRender: reports as Judge judges them, rendered as text and JSON,
// healthy and broken in each way Judge knows.
func TestRender(t *testing.T) {
	readAt := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	applied := LastApply{StartedAt: readAt.Add(-10 * time.Minute), FinishedAt: readAt.Add(-10*time.Minute + 98765*time.Millisecond), Steps: 23}
	creds := func(cluster string) []steps.Credential {
		return []steps.Credential{
			{What: "root CA of mesh mesh1", Where: ".mcplan/ca/mesh1/root-cert.pem", NotAfter: readAt.AddDate(10, 0, 0), Status: steps.CredentialOK, Note: "3652 days left"},
			{What: "admin client certificate of " + cluster, Where: ".mcplan/kubeconfig/" + cluster + ".yaml", NotAfter: readAt.AddDate(1, 0, 0), Status: steps.CredentialOK, Note: "365 days left"},
		}
	}
	cluster := func(name, other string) Cluster {
		return Cluster{
			Name: name, Mesh: "mesh1",
			Nodes: []Node{{Name: "h-" + name, Ready: true, KubeletVersion: "v1.31.4+k3s1", InPlan: true}},
			Istiods: []Istiod{{Revision: "default", Expected: true, Pod: "istio-system/istiod-5d4f8-" + name, Ready: true, RemoteClusters: []RemoteCluster{
				{ID: name, SyncStatus: "synced", Local: true, Expected: true},
				{ID: other, Secret: "istio-system/istio-remote-secret-" + other, SyncStatus: "synced", Expected: true},
			}}},
			EastWest:    &EastWest{Addresses: []string{"10.0.0.1"}},
			Credentials: creds(name),
		}
	}
	healthy := func() *Report {
		return &Report{Plan: "walkthrough", ReadAt: readAt, LastApply: applied, Clusters: []Cluster{cluster("cluster1", "cluster2"), cluster("cluster2", "cluster1")}}
	}
	for _, tc := range []struct {
		name     string
		breakIt  func(r *Report)
		problems int
	}{
		{"healthy", func(*Report) {}, 0},
		// What `kubectl delete secret istio-remote-secret-cluster2` in
		// cluster1 leaves: istiod no longer lists cluster2.
		{"remote-secret-deleted", func(r *Report) {
			ist := &r.Clusters[0].Istiods[0]
			ist.RemoteClusters = markExpected(ist.RemoteClusters[:1], "cluster1", []string{"cluster2"})
		}, 1},
		{"broken", func(r *Report) {
			r.LastApply.Failed = []string{"cluster/cluster2/istio/eastwest", "mesh/mesh1/verify/sample"}
			c1 := &r.Clusters[0]
			c1.Nodes = append(c1.Nodes, Node{Name: "h9", Condition: "Ready=Unknown NodeStatusUnknown", KubeletVersion: "v1.31.4+k3s1", InPlan: true},
				Node{Name: "h8", InPlan: true, Missing: true}, Node{Name: "stray", Ready: true, KubeletVersion: "v1.31.4+k3s1"})
			c1.Istiods[0].RemoteClusters[1].SyncStatus = "timeout"
			c1.Istiods = append(c1.Istiods, Istiod{Revision: "r2", State: "istiod-r2-abc: Pending (Unschedulable)", RemoteClusters: []RemoteCluster{}})
			c1.EastWest = &EastWest{Addresses: []string{}, PlanAddress: "10.0.0.9"}
			c1.Credentials[1].Status, c1.Credentials[1].NotAfter, c1.Credentials[1].Note = steps.CredentialExpired, readAt.AddDate(0, 0, -2), "expired 2 days ago"
			r.Clusters[1] = Cluster{Name: "cluster2", Mesh: "mesh1", Unreachable: "API https://10.0.0.2:6443 does not answer (waited 10s)",
				Nodes: []Node{}, Istiods: []Istiod{}, Credentials: creds("cluster2")}
		}, 8},
		{"istiod-missing", func(r *Report) {
			r.LastApply.Interrupted = []string{"cluster/cluster1/istio/controlplane"}
			r.Clusters[0].Istiods = []Istiod{{Revision: "default", Expected: true, Missing: true, RemoteClusters: []RemoteCluster{}}}
			r.Clusters[1].Istiods[0].ReadError = "istio-system/istiod-5d4f8-cluster2 /debug/clusterz: 503 Service Unavailable"
			r.Clusters[1].Istiods[0].RemoteClusters = []RemoteCluster{}
			r.Clusters[1].EastWest = &EastWest{Addresses: []string{}, Missing: true}
			r.Clusters[1].ReadErrors = []string{"list nodes of cluster2: context deadline exceeded"}
		}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := healthy()
			tc.breakIt(r)
			Judge(r)
			if got := r.ProblemCount(); got != tc.problems {
				t.Errorf("%d problems, want %d: %q %+v", got, tc.problems, r.Problems, r.Clusters)
			}
			if r.Healthy() != (tc.problems == 0) {
				t.Errorf("Healthy() = %v with %d problems", r.Healthy(), tc.problems)
			}
			var text, js bytes.Buffer
			if err := WriteText(&text, r); err != nil {
				t.Fatal(err)
			}
			if err := WriteJSON(&js, r); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Healthy      bool `json:"healthy"`
				ProblemCount int  `json:"problemCount"`
				LastApply    struct {
					Result string `json:"result"`
				} `json:"lastApply"`
			}
			if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, js.String())
			}
			if doc.Healthy != r.Healthy() || doc.ProblemCount != tc.problems || doc.LastApply.Result != r.LastApply.Result() {
				t.Errorf("JSON says healthy %v, %d problems, result %q", doc.Healthy, doc.ProblemCount, doc.LastApply.Result)
			}
			golden.Check(t, filepath.Join("testdata", tc.name+".txt"), text.String())
			golden.Check(t, filepath.Join("testdata", tc.name+".json"), js.String())
		})
	}
}
