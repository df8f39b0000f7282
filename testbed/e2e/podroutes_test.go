package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/steps/verify"
	"mcplan.io/mcplan/testbed"
)

// singleNetworkMesh is a multi-primary mesh over cluster1 and cluster2
// without the sample: this test is about routes, not traffic.
const singleNetworkMesh = `meshes:
  - name: mesh1
    model: multi-primary
    clusters: [cluster1, cluster2]
    ca: {keySize: 2048}
    verify: {enabled: false}
`

// TestPodRoutesOnTestHosts builds the walkthrough's single-network shape,
// two clusters of one mesh on one network (h1 and h2, distinct pod CIDRs
// from their k3s args), and runs mcplan verify: its podroutes check fails
// for each direction, naming the pair, while nothing routes the pod CIDRs
// between the hosts (they have no route but their own subnet's); after
// the test routes cluster2's pod CIDR from h1, only cluster2's direction
// fails; with both routes, verify passes. The routes are real (the
// hosts' network namespaces), as is the lookup on them.
func TestPodRoutesOnTestHosts(t *testing.T) {
	w := newWorld(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	w.writePlan(planOptions{noAgent: true, noHost3: true, oneNetwork: true, mesh: singleNetworkMesh})
	w.mustApply(t, ctx, "apply")
	h1, h2 := w.bed.Hosts[0], w.bed.Hosts[1]
	cidr1, cidr2 := w.nodePodCIDR(t, ctx, "cluster1"), w.nodePodCIDR(t, ctx, "cluster2")
	t.Logf("pod CIDRs: cluster1 %s, cluster2 %s", cidr1, cidr2)

	// want is the podroutes rows verify should show, cluster -> OK.
	check := func(t *testing.T, want map[string]bool) {
		t.Helper()
		code, doc, out := w.verifyJSON(t, ctx)
		rows := map[string]verify.FindingDocument{}
		for _, m := range doc.Meshes {
			for _, c := range m.Checks {
				switch {
				case c.Check == verify.CheckPodRoutes:
					rows[c.Cluster] = c
				case !c.OK:
					t.Errorf("check %s of %s failed: %s", c.Check, c.Cluster, c.Detail)
				}
			}
		}
		failed := false
		for cluster, ok := range want {
			peer, host, peerCIDR := "cluster2", "h1", cidr2
			if cluster == "cluster2" {
				peer, host, peerCIDR = "cluster1", "h2", cidr1
			}
			row, found := rows[cluster]
			switch {
			case !found:
				t.Errorf("no podroutes row of %s:\n%s", cluster, out)
				continue
			case row.Object != "host "+host+" -> "+peer+" pods":
				t.Errorf("%s's podroutes row is about %q, want host %s -> %s pods", cluster, row.Object, host, peer)
			case row.OK != ok:
				t.Errorf("%s's podroutes row: OK %v, want %v: %s", cluster, row.OK, ok, row.Detail)
			case !strings.Contains(row.Detail, peerCIDR):
				t.Errorf("%s's podroutes row does not name %s's pod CIDR %s: %s", cluster, peer, peerCIDR, row.Detail)
			case !ok && !strings.Contains(row.Detail, "nothing routes "+peer+"'s pod CIDRs (Nodes' spec.podCIDRs) from node "+host+" of "+cluster):
				t.Errorf("%s's failure does not name the pair: %s", cluster, row.Detail)
			case !ok && !strings.Contains(row.Detail, "ip route add "+peerCIDR+" via "):
				t.Errorf("%s's failure gives no route to add: %s", cluster, row.Detail)
			}
			failed = failed || !ok
		}
		if len(rows) != len(want) {
			t.Errorf("podroutes rows %v, want one of each of %v", rows, want)
		}
		if wantCode := map[bool]int{false: 0, true: 1}[failed]; code != wantCode {
			t.Errorf("verify exit %d, want %d:\n%s", code, wantCode, out)
		}
	}

	t.Run("no routes between the clusters", func(t *testing.T) {
		check(t, map[string]bool{"cluster1": false, "cluster2": false})
		// The text table names the pair too.
		out, err := exec.CommandContext(ctx, w.mcplan, "verify", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "podroutes") || !strings.Contains(string(out), "host h1 -> cluster2 pods") {
			t.Errorf("verify (text): %v\n%s", err, out)
		}
		t.Logf("verify without routes:\n%s", out)
	})
	t.Run("cluster2's pods routed from h1", func(t *testing.T) {
		routePodCIDR(t, h1, cidr2, h2)
		check(t, map[string]bool{"cluster1": true, "cluster2": false})
	})
	t.Run("routes both ways", func(t *testing.T) {
		routePodCIDR(t, h2, cidr1, h1)
		check(t, map[string]bool{"cluster1": true, "cluster2": true})
		out, err := exec.CommandContext(ctx, w.mcplan, "verify", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err != nil {
			t.Errorf("verify (text): %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "podroutes") {
				t.Logf("%s", line)
			}
		}
	})
}

// nodePodCIDR is the podCIDR of a cluster's only Node.
func (w *world) nodePodCIDR(t *testing.T, ctx context.Context, cluster string) string {
	t.Helper()
	nodes, err := w.clientFor("context-"+cluster).CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != 1 || nodes.Items[0].Spec.PodCIDR == "" {
		t.Fatalf("%s: want one Node with a podCIDR: %+v", cluster, nodes.Items)
	}
	return nodes.Items[0].Spec.PodCIDR
}

// verifyJSON runs mcplan verify -o json: its exit code, document and
// whole output.
func (w *world) verifyJSON(t *testing.T, ctx context.Context) (int, verify.Document, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, "verify", "-o", "json", filepath.Join(w.dir, "plan.yaml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	code := 0
	if err := cmd.Run(); err != nil {
		exit, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		code = exit.ExitCode()
	}
	var doc verify.Document
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		t.Fatalf("verify -o json: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	return code, doc, stdout.String() + stderr.String()
}

// routePodCIDR routes cidr, in host from's network namespace, via host
// via's address: the flat routing a single-network mesh needs.
func routePodCIDR(t *testing.T, from testbed.Host, cidr string, via testbed.Host) {
	t.Helper()
	if out, err := exec.Command("ip", "-n", from.Namespace, "route", "replace", cidr, "via", via.Address).CombinedOutput(); err != nil {
		t.Fatalf("route %s via %s in %s: %v\n%s", cidr, via.Name, from.Name, err, out)
	}
}
