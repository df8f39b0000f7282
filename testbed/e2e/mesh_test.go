package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/steps/verify"
	"mcplan.io/mcplan/testbed"
)

// meshSection is the walkthrough's mesh over cluster1 and cluster2.
const meshSection = `meshes:
  - name: mesh1
    model: multi-primary
    clusters: [cluster1, cluster2]
    istio:
      meshConfig: {accessLogFile: /dev/stdout, accessLogEncoding: JSON}
    ca: {keySize: 2048}
    # The test world's pods are Ready within seconds; a short timeout
    # also bounds how long verify asks istiod again before failing.
    verify: {timeout: 30s}
`

// clientFor is a client of a context of the merged kubeconfig.
// remoteToken is the reader token the remote secret of source in target
// carries.
func (w *world) remoteToken(t *testing.T, ctx context.Context, target, source string) string {
	t.Helper()
	sec, err := w.clientFor("context-"+target).CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-"+source, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clientcmd.Load(sec.Data[source])
	if err != nil {
		t.Fatal(err)
	}
	return kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Token
}

func (w *world) clientFor(kubeContext string) *kubernetes.Clientset {
	w.t.Helper()
	c, err := kubernetes.NewForConfig(w.restFor(kubeContext))
	if err != nil {
		w.t.Fatal(err)
	}
	return c
}

// restFor is the client config of a context of the merged kubeconfig.
func (w *world) restFor(kubeContext string) *rest.Config {
	w.t.Helper()
	loader := &clientcmd.ClientConfigLoadingRules{ExplicitPath: filepath.Join(w.dir, "kubeconfig")}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(loader, &clientcmd.ConfigOverrides{CurrentContext: kubeContext}).ClientConfig()
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// TestWalkthroughMeshOnTestHosts applies the walkthrough's shape, two
// clusters on two networks in one multi-primary mesh, from bare test hosts
// through the Istio steps and verify (a), then checks what verify checks
// by hand and that `mcplan verify` agrees.
func TestWalkthroughMeshOnTestHosts(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	w.writePlan(planOptions{mesh: meshSection})

	r := w.mustApply(t, ctx, "first apply")
	for _, id := range []string{
		"mesh/mesh1/ca/root", "cluster/cluster1/istio/cacerts", "cluster/cluster2/istio/controlplane",
		"cluster/cluster1/istio/eastwest", "cluster/cluster2/istio/expose",
		"mesh/mesh1/remotesecret/cluster1->cluster2", "mesh/mesh1/remotesecret/cluster2->cluster1",
		"mesh/mesh1/verify/sample",
	} {
		if r.outcomes[id] != "succeeded" {
			t.Errorf("%s: %s %s", id, r.outcomes[id], r.errors[id])
		}
	}
	for i, c := range []string{"cluster1", "cluster2"} {
		client := w.clientFor("context-" + c)
		ns, err := client.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := ns.Labels["topology.istio.io/network"], fmt.Sprintf("network%d", i+1); got != want {
			t.Errorf("%s: istio-system network label %q, want %q", c, got, want)
		}
		svc, err := client.CoreV1().Services("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(svc.Status.LoadBalancer.Ingress) == 0 {
			t.Errorf("%s: east-west gateway without address", c)
		}
		other := map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"}[c]
		sec, err := client.CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-"+other, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("%s: remote secret of %s: %v", c, other, err)
		}
		remote, err := clientcmd.Load(sec.Data[other])
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range remote.Clusters {
			if strings.Contains(cl.Server, "127.0.0.1") || !strings.Contains(cl.Server, ":6443") {
				t.Errorf("%s: remote secret of %s points at %s", c, other, cl.Server)
			}
		}
	}
	// The secrets themselves, read from the clusters, are in neither the
	// state, the inventories nor what apply printed.
	secrets := w.secretsOf(t, ctx, map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"})
	saved := w.savedFiles(t)
	saved["the first apply's output"] = []byte(r.output)
	checkNoSecret(t, secrets, saved)
	for path, data := range saved {
		if strings.Contains(string(data), "PRIVATE KEY") {
			t.Errorf("a private key is in %s", path)
		}
	}

	t.Run("mcplan verify", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, w.mcplan, "verify", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err != nil || strings.Contains(string(out), "FAIL") {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		t.Logf("verify:\n%s", out)
		// Every credential with its expiry, read from the files, the APIs'
		// TLS and the clusters.
		for _, what := range []string{"root CA of mesh mesh1", "intermediate CA of cluster1", "admin client certificate of cluster2",
			"k3s server CA of cluster1", "k3s client CA of cluster2", "API serving certificate of cluster2", "token of cluster2's istiod in cluster1", "token of cluster1's istiod in cluster2"} {
			found := false
			for _, l := range strings.Split(string(out), "\n") {
				if strings.Contains(l, what) && strings.HasPrefix(strings.TrimSpace(l), "ok ") {
					found = true
				}
			}
			if !found {
				t.Errorf("verify lists no %q as ok", what)
			}
		}
	})

	networkOf := map[string]string{"cluster1": "network1", "cluster2": "network2"}
	t.Run("the sample's pods were injected by istiod", func(t *testing.T) {
		w.assertInjected(t, ctx, []string{"cluster1", "cluster2"})
	})

	t.Run("istiod validates config without a revision label", func(t *testing.T) {
		w.assertValidated(t, ctx, []string{"cluster1", "cluster2"})
	})

	t.Run("mcplan verify --xds", func(t *testing.T) {
		w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, networkOf)
		w.logXDSTables(t, ctx)
	})

	t.Run("second apply changes nothing", func(t *testing.T) {
		before := w.objectVersions(t, ctx, []string{"cluster1", "cluster2"})
		again := w.mustApply(t, ctx, "second apply")
		if len(again.outcomes) != len(r.outcomes) {
			t.Errorf("second apply reports %d steps, the first %d", len(again.outcomes), len(r.outcomes))
		}
		for id, o := range again.outcomes {
			if o != "unchanged" {
				t.Errorf("%s: %s (%s) %s", id, o, again.reasons[id], again.errors[id])
			}
		}
		// From the clusters: no object of any inventory, and no webhook
		// configuration, has a new resourceVersion.
		after := w.objectVersions(t, ctx, []string{"cluster1", "cluster2"})
		if len(before) < 20 {
			t.Errorf("only %d objects tracked", len(before))
		}
		checkSameVersions(t, "second apply", before, after)
		checkNoSecret(t, secrets, map[string][]byte{"the second apply's output": []byte(again.output)})
	})

	// mcplan status shows what istioctl remote-clusters shows per istiod:
	// every remote cluster synced; a remote secret deleted by hand leaves
	// its row missing (or not synced) and exit 1 until apply restores it.
	t.Run("mcplan status: remote clusters synced, a deleted remote secret shows", func(t *testing.T) {
		pairs := map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} // reader -> source
		healthy := func(run statusRun) bool {
			if run.code != 0 {
				return false
			}
			for reader, source := range pairs {
				if rc := remoteRow(run.report, reader, source); rc == nil || rc.Missing || rc.SyncStatus != "synced" {
					return false
				}
			}
			return true
		}
		run := w.runStatus(t, ctx)
		if !healthy(run) {
			t.Fatalf("status of the applied world: exit %d, not every remote cluster synced:\n%s\n%s", run.code, run.output, w.statusText(ctx))
		}
		for _, c := range run.report.Clusters {
			for _, ist := range c.Istiods {
				for _, rc := range ist.RemoteClusters {
					if rc.SyncStatus != "synced" {
						t.Errorf("%s: istiod %s: %s is %q", c.Name, ist.Revision, rc.ID, rc.SyncStatus)
					}
				}
			}
			if len(c.Nodes) == 0 || c.EastWest == nil || len(c.EastWest.Addresses) == 0 || len(c.Credentials) == 0 {
				t.Errorf("%s: nodes %+v, east-west %+v, %d credentials", c.Name, c.Nodes, c.EastWest, len(c.Credentials))
			}
		}
		if run.report.LastApply.Result() != "succeeded" {
			t.Errorf("last apply: %+v", run.report.LastApply)
		}
		t.Logf("status:\n%s", w.statusText(ctx))

		if err := w.clientFor("context-cluster1").CoreV1().Secrets("istio-system").Delete(ctx, "istio-remote-secret-cluster2", metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		broken, ok := w.waitStatus(t, ctx, 60*time.Second, func(run statusRun) bool {
			rc := remoteRow(run.report, "cluster1", "cluster2")
			return run.code == 1 && rc != nil && (rc.Missing || rc.SyncStatus != "synced")
		})
		if !ok {
			t.Fatalf("60s after the remote secret was deleted, status exits %d, cluster1's row of cluster2 %+v:\n%s",
				broken.code, remoteRow(broken.report, "cluster1", "cluster2"), broken.output)
		}
		t.Logf("status %s after the remote secret was deleted:\n%s", time.Since(start).Round(time.Second), w.statusText(ctx))
		if rc := remoteRow(broken.report, "cluster2", "cluster1"); rc == nil || rc.SyncStatus != "synced" {
			t.Errorf("cluster2's istiod no longer reads cluster1 synced: %+v", rc)
		}

		repair := w.mustApply(t, ctx, "repair")
		checkRepaired(t, repair, "mesh/mesh1/remotesecret/cluster2->cluster1", "istio-remote-secret-cluster2 missing in cluster1")
		if again, ok := w.waitStatus(t, ctx, 60*time.Second, healthy); !ok {
			t.Fatalf("after the repair, status exits %d:\n%s\n%s", again.code, again.output, w.statusText(ctx))
		}
	})

	t.Run("the mesh's own manifests: applied, diffed, pruned, waited for, removed", func(t *testing.T) {
		testUserManifests(t, ctx, w)
	})

	// A re-apply checks the control plane by reading its objects (their
	// resourceVersions and mcplan's managed fields), not by rendering
	// (kube.Client.Unchanged); the drifts of its objects it must still
	// find, each repaired, and once repaired read again without a render.
	t.Run("drift of control-plane objects is found by reading them", func(t *testing.T) {
		c1 := w.clientFor("context-cluster1")
		const step = "cluster/cluster1/istio/controlplane"
		for _, tc := range []struct {
			name    string
			breakIt func(t *testing.T)
			want    string
		}{
			{"object deleted", func(t *testing.T) {
				if err := c1.CoreV1().ConfigMaps("istio-system").Delete(ctx, "istio-sidecar-injector", metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}, "+ ConfigMap istio-system/istio-sidecar-injector"},
			{"field changed by another manager", func(t *testing.T) {
				patch := []byte(`{"data":{"mesh":"defaultConfig: {}"}}`)
				if _, err := c1.CoreV1().ConfigMaps("istio-system").Patch(ctx, "istio", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
					t.Fatal(err)
				}
			}, "~ ConfigMap istio-system/istio"},
			{"label removed by another manager", func(t *testing.T) {
				patch := []byte(`{"metadata":{"labels":{"app":null}}}`)
				if _, err := c1.CoreV1().ServiceAccounts("istio-system").Patch(ctx, "istiod", types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
					t.Fatal(err)
				}
			}, "~ ServiceAccount istio-system/istiod"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				tc.breakIt(t)
				repair := w.mustApply(t, ctx, "repair")
				checkRepaired(t, repair, step, tc.want)
				again := w.mustApply(t, ctx, "after the repair")
				if ran := again.ran(); len(ran) != 0 {
					t.Errorf("the apply after the repair ran %v", ran)
				}
				if rendered := renderedBy(t, again.output); len(rendered) != 0 {
					t.Errorf("the apply after the repair rendered for %v: an unchanged control plane is read, not rendered", rendered)
				}
			})
		}
	})

	t.Run("an intermediate re-issued by --replace is picked up by istiod", func(t *testing.T) {
		c1 := w.clientFor("context-cluster1")
		istiod := func() corev1.Pod {
			pods, err := c1.CoreV1().Pods("istio-system").List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
			if err != nil || len(pods.Items) != 1 {
				t.Fatalf("istiod pods of cluster1: %v (%d)", err, len(pods.Items))
			}
			return pods.Items[0]
		}
		cacert := func() []byte {
			sec, err := c1.CoreV1().Secrets("istio-system").Get(ctx, "cacerts", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return sec.Data["ca-cert.pem"]
		}
		pod, oldCert := istiod(), cacert()
		rootBefore := w.rootSum(t)
		r := w.apply(ctx, "--replace", "cluster/cluster1/ca/intermediate")
		if r.code != 0 || r.outcomes["cluster/cluster1/ca/intermediate"] != "succeeded" || r.outcomes["cluster/cluster1/istio/cacerts"] != "succeeded" ||
			r.outcomes["cluster/cluster2/ca/intermediate"] != "unchanged" {
			t.Fatalf("apply --replace: exit %d, outcomes %v\n%s", r.code, r.outcomes, r.output)
		}
		file, err := os.ReadFile(filepath.Join(w.dir, ".mcplan", "ca", "mesh1", "cluster1", "ca-cert.pem"))
		if err != nil {
			t.Fatal(err)
		}
		if newCert := cacert(); bytes.Equal(newCert, oldCert) || !bytes.Equal(newCert, file) {
			t.Error("cacerts does not hold the re-issued intermediate")
		}
		if w.rootSum(t) != rootBefore {
			t.Error("--replace of an intermediate changed the mesh root")
		}
		// istiod reloads plugged-in certs without a restart.
		const reloaded = "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly"
		deadline := time.Now().Add(90 * time.Second)
		for {
			logs, err := c1.CoreV1().Pods("istio-system").GetLogs(pod.Name, &corev1.PodLogOptions{Container: "discovery"}).DoRaw(ctx)
			if err == nil && bytes.Contains(logs, []byte(reloaded)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("istiod's log never says %q (%v)", reloaded, err)
			}
			time.Sleep(2 * time.Second)
		}
		if now := istiod(); now.UID != pod.UID || now.Status.ContainerStatuses[0].RestartCount != pod.Status.ContainerStatuses[0].RestartCount {
			t.Errorf("istiod was restarted (%s, %d restarts) to take the new intermediate", now.UID, now.Status.ContainerStatuses[0].RestartCount)
		}
		out, err := exec.CommandContext(ctx, w.mcplan, "verify", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err != nil || strings.Contains(string(out), "FAIL") {
			t.Fatalf("verify after the new intermediate: %v\n%s", err, out)
		}
		// The chain istiod serves on 15012 goes through the new
		// intermediate (verify --xds names it by its fingerprint).
		block, _ := pem.Decode(file)
		if block == nil {
			t.Fatal("the re-issued intermediate is not PEM")
		}
		sum := sha256.Sum256(block.Bytes)
		doc, code := w.verifyXDS(t, ctx)
		found := false
		for _, m := range doc.Meshes {
			for _, c := range m.Checks {
				if c.Check == "istiod-ca" && c.Cluster == "cluster1" {
					found = true
					if !c.OK || !strings.Contains(c.Detail, hex.EncodeToString(sum[:])[:16]) {
						t.Errorf("istiod-ca of cluster1: ok %v, %s; want the new intermediate %x", c.OK, c.Detail, sum[:8])
					}
				}
			}
		}
		if !found || code != 0 {
			t.Errorf("verify --xds: exit %d, istiod-ca check of cluster1 found %v", code, found)
		}
	})

	t.Run("remote-secret tokens rotate once older than rotateAfter", func(t *testing.T) {
		oldTokens := map[string]string{} // target -> the token its remote secret carried
		for target, source := range map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} {
			oldTokens[target] = w.remoteToken(t, ctx, target, source)
		}
		w.writePlan(planOptions{mesh: strings.Replace(meshSection, "    verify:", "    remoteSecrets: {rotateAfter: 5s}\n    verify:", 1)})
		time.Sleep(6 * time.Second) // older than rotateAfter
		out, _ := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if !strings.Contains(string(out), "remoteSecrets.rotateAfter is 5s") {
			t.Errorf("plan does not say the tokens are due:\n%s", out)
		}
		start := time.Now()
		r := w.mustApply(t, ctx, "rotation")
		t.Logf("rotation of both readers' tokens: %s", time.Since(start).Round(time.Millisecond))
		for target, source := range map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} {
			id := "mesh/mesh1/remotesecret/" + source + "->" + target
			if r.outcomes[id] != "succeeded" {
				t.Errorf("%s: %s (%s)", id, r.outcomes[id], r.reasons[id])
			}
			now := w.remoteToken(t, ctx, target, source)
			if now == oldTokens[target] {
				t.Errorf("%s still reads %s with the old token", target, source)
			}
			if code := testbed.TokenStatus(t, ctx, w.restFor("context-"+source), now); code != http.StatusOK {
				t.Errorf("the new token of %s's reader answers %d in %s", target, code, source)
			}
			// The old token is revoked (the apiserver's token cache may lag).
			if code := testbed.WaitTokenStatus(t, ctx, w.restFor("context-"+source), oldTokens[target], http.StatusUnauthorized, 30*time.Second); code != http.StatusUnauthorized {
				t.Errorf("the old token of %s's reader still answers %d in %s", target, code, source)
			}
		}
		w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, networkOf)
		w.writePlan(planOptions{mesh: meshSection})
		if again := w.mustApply(t, ctx, "without rotation"); len(again.ran()) != 0 {
			t.Errorf("the apply without rotation ran %v", again.ran())
		}
	})

	// Each case breaks the mesh as people do by mistake, checks that
	// verify --xds fails naming the cause and shows what istiod now sends,
	// and that apply repairs it with the step whose drift it is.
	c1, c2 := w.clientFor("context-cluster1"), w.clientFor("context-cluster2")
	view := w.readMeshView(t, ctx, networkOf)
	for _, tc := range []struct {
		name, cause string
		breakIt     func(t *testing.T)
		// istiod is what cluster1's istiod must now tell network1's
		// sidecar, from the rows of its report.
		istiod func(t *testing.T, rows []verify.XDSRow)
		// repairStep must run, for a drift naming repairReason.
		repairStep, repairReason string
	}{
		// Without istio-system's label and the pods' own network labels,
		// cluster2's pods have no network: istiod sends them to network1's
		// sidecars as if local, the classic flat-network mistake.
		{"network label removed", "check network", func(t *testing.T) {
			patch := []byte(`{"metadata":{"labels":{"topology.istio.io/network":null}}}`)
			if _, err := c2.CoreV1().Namespaces().Patch(ctx, "istio-system", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			pods, err := c2.CoreV1().Pods("sample").List(ctx, metav1.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.Items {
				if _, err := c2.CoreV1().Pods("sample").Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
		}, func(t *testing.T, rows []verify.XDSRow) {
			for _, ip := range view.podIPs["network2"] {
				if !slices.ContainsFunc(rows, func(r verify.XDSRow) bool {
					return r.Endpoint == ip && r.Port == 5000 && r.Verdict == verify.VerdictWrong
				}) {
					t.Errorf("network1's view has no WRONG row for cluster2's pod %s: %+v", ip, rows)
				}
			}
		}, "cluster/cluster2/istio/namespace", "~ Namespace istio-system"},
		{"remote secret deleted", "remote secret", func(t *testing.T) {
			if err := c1.CoreV1().Secrets("istio-system").Delete(ctx, "istio-remote-secret-cluster2", metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}, nil, "mesh/mesh1/remotesecret/cluster2->cluster1", "istio-remote-secret-cluster2 missing in cluster1"},
		// Without an address the gateway leaves istiod's view: network1's
		// sidecar no longer gets cluster2's gateway (or, while istiod
		// lags, gets the old address, which the report marks stale).
		{"gateway address missing", "gateway address", func(t *testing.T) {
			patch := []byte(`{"spec":{"type":"ClusterIP"}}`)
			if _, err := c2.CoreV1().Services("istio-system").Patch(ctx, "istio-eastwestgateway", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, rows []verify.XDSRow) {
			for _, gw := range view.gateways["network2"] {
				if slices.ContainsFunc(rows, func(r verify.XDSRow) bool {
					return r.Endpoint == gw && r.Port == 15443 && r.Verdict == verify.VerdictOK
				}) {
					t.Errorf("network1's view still has cluster2's gateway %s as OK: %+v", gw, rows)
				}
			}
			if !slices.ContainsFunc(rows, func(r verify.XDSRow) bool { return r.Port == 15443 && r.Verdict != verify.VerdictOK }) {
				t.Errorf("network1's view has no MISSING or stale row for cluster2's gateway: %+v", rows)
			}
		}, "cluster/cluster2/istio/eastwest", "Service istio-system/istio-eastwestgateway"},
	} {
		t.Run("verify --xds names the cause: "+tc.name, func(t *testing.T) {
			tc.breakIt(t)
			doc := w.assertXDSCause(t, ctx, tc.cause)
			if tc.istiod != nil {
				tc.istiod(t, xdsRows(t, doc, "cluster1", "network1"))
			}
			repair := w.mustApply(t, ctx, "repair")
			checkRepaired(t, repair, tc.repairStep, tc.repairReason)
			w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, networkOf)
		})
	}

	t.Run("changed meshConfig: plan shows the control-plane objects that change", func(t *testing.T) {
		w.writePlan(planOptions{mesh: strings.Replace(meshSection, "accessLogEncoding: JSON", "accessLogEncoding: TEXT", 1)})
		cmd := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml"))
		out, err := cmd.CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
			t.Fatalf("plan: %v, want exit 2\n%s", err, out)
		}
		t.Logf("plan:\n%s", out)
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, "inputs changed") {
				continue
			}
			if !strings.Contains(line, "/istio/controlplane") {
				t.Errorf("inputs changed outside the control planes: %s", line)
			}
			if !strings.Contains(line, "~ ConfigMap istio-system/istio") {
				t.Errorf("no object diff for the mesh config: %s", line)
			}
		}
		if n := strings.Count(string(out), "inputs changed"); n != 2 {
			t.Errorf("%d steps with changed inputs, want the 2 control planes", n)
		}
		if n := strings.Count(string(out), `~ data.mesh: text: "accessLogEncoding: JSON" → "accessLogEncoding: TEXT"`); n != 2 {
			t.Errorf("%d field lines show the access log change, want one per control plane", n)
		}
		if r := w.apply(ctx); r.code != 0 {
			t.Fatalf("apply: exit %d\n%s", r.code, r.output)
		}
		w.writePlan(planOptions{mesh: meshSection})
		if r := w.apply(ctx); r.code != 0 {
			t.Fatalf("apply back: exit %d\n%s", r.code, r.output)
		}
	})

	t.Run("a cluster leaving the mesh loses its remote secrets", func(t *testing.T) {
		tokens := map[string]string{} // source cluster -> the token its reader used
		for c, source := range map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} {
			sec, err := w.clientFor("context-"+c).CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-"+source, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			kc, err := clientcmd.Load(sec.Data[source])
			if err != nil {
				t.Fatal(err)
			}
			tokens[source] = kc.AuthInfos[kc.Contexts[kc.CurrentContext].AuthInfo].Token
			if code := testbed.TokenStatus(t, ctx, w.restFor("context-"+source), tokens[source]); code != http.StatusOK {
				t.Fatalf("%s's reader token answers %d before the removal", source, code)
			}
		}
		w.writePlan(planOptions{mesh: strings.Replace(meshSection, "clusters: [cluster1, cluster2]", "clusters: [cluster1]", 1)})
		out, _ := exec.CommandContext(ctx, w.mcplan, "plan", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if !strings.Contains(string(out), "- mesh/mesh1/remotesecret/cluster2->cluster1") || !strings.Contains(string(out), "deletes Secret istio-system/istio-remote-secret-cluster2 in cluster1") {
			t.Errorf("plan does not announce the removal:\n%s", out)
		}
		r := w.apply(ctx)
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.output)
		}
		for c, source := range map[string]string{"cluster1": "cluster2", "cluster2": "cluster1"} {
			_, err := w.clientFor("context-"+c).CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-"+source, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s still holds istio-remote-secret-%s (err %v)", c, source, err)
			}
		}
		// The tokens are revoked: a copy of a remote secret kept anywhere
		// no longer reads its cluster (the apiserver's token cache may lag).
		for source, token := range tokens {
			if code := testbed.WaitTokenStatus(t, ctx, w.restFor("context-"+source), token, http.StatusUnauthorized, 30*time.Second); code != http.StatusUnauthorized {
				t.Errorf("the removed pair's token still answers %d in %s, want 401", code, source)
			}
		}
		// cluster2 is in no mesh now: its Istio went with it.
		if _, err := w.clientFor("context-cluster2").AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster2 left every mesh but still runs istiod (%v)", err)
		}
	})

	t.Run("destroy: the mesh, keeping what users made, then everything", func(t *testing.T) {
		plan := filepath.Join(w.dir, "plan.yaml")
		w.writePlan(planOptions{mesh: meshSection})
		w.mustApply(t, ctx, "the whole mesh again")
		// What a user made: a ConfigMap in cluster1's istio-system and a
		// namespace of their own.
		user := metav1.CreateOptions{FieldManager: "kubectl-create"}
		if _, err := c1.CoreV1().ConfigMaps("istio-system").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "user-notes"}}, user); err != nil {
			t.Fatal(err)
		}
		if _, err := c1.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}}, user); err != nil {
			t.Fatal(err)
		}
		meshTargets := []string{"--target", "mesh/mesh1/*", "--target", "cluster/*/istio/*", "--target", "cluster/*/ca/*"}
		w.checkGoldenPlan(t, ctx, "destroy-walkthrough", "--destroy")
		w.checkGoldenPlan(t, ctx, "destroy-walkthrough-mesh", append([]string{"--destroy"}, meshTargets...)...)
		start := time.Now()
		out, err := exec.CommandContext(ctx, w.mcplan, append(append([]string{"destroy", "--auto-approve"}, meshTargets...), plan)...).CombinedOutput()
		if err != nil {
			t.Fatalf("destroy of the mesh: %v\n%s", err, out)
		}
		t.Logf("destroy of the mesh took %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(string(out), "left namespace istio-system in cluster1: it holds what mcplan did not make (ConfigMap istio-system/user-notes)") {
			t.Errorf("destroy does not say why istio-system stays in cluster1:\n%s", out)
		}
		for name, c := range map[string]*kubernetes.Clientset{"cluster1": c1, "cluster2": c2} {
			if _, err := c.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: istiod after destroying the mesh (%v)", name, err)
			}
		}
		if _, err := c1.CoreV1().ConfigMaps("istio-system").Get(ctx, "user-notes", metav1.GetOptions{}); err != nil {
			t.Errorf("cluster1: the user's ConfigMap in istio-system: %v", err)
		}
		if _, err := c1.CoreV1().Namespaces().Get(ctx, "team-a", metav1.GetOptions{}); err != nil {
			t.Errorf("cluster1: the user's namespace: %v", err)
		}
		if _, err := c2.CoreV1().Namespaces().Get(ctx, "istio-system", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster2: istio-system, which held only mcplan's, is still there (%v)", err)
		}
		if got := w.readyNodes(ctx, "context-cluster2"); !slices.Equal(got, []string{"h2", "h3"}) {
			t.Errorf("destroying the mesh took k3s too: cluster2 Ready nodes %v", got)
		}
		// Then everything: bare hosts; and apply builds it all again.
		start = time.Now()
		if out, err := exec.CommandContext(ctx, w.mcplan, "destroy", "--auto-approve", plan).CombinedOutput(); err != nil {
			t.Fatalf("destroy: %v\n%s", err, out)
		}
		t.Logf("destroy of the rest (k3s) took %s", time.Since(start).Round(time.Millisecond))
		for _, h := range w.bed.Hosts {
			if left := w.ssh(h, "for p in /usr/local/bin/k3s /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet; do [ -e $p ] && echo $p; done; true"); strings.TrimSpace(left) != "" {
				t.Errorf("%s is not bare after destroy: %s", h.Name, left)
			}
		}
		again := w.mustApply(t, ctx, "apply from bare hosts")
		if again.outcomes["mesh/mesh1/verify/sample"] != "succeeded" {
			t.Errorf("verify after rebuilding: %s %s", again.outcomes["mesh/mesh1/verify/sample"], again.errors["mesh/mesh1/verify/sample"])
		}
	})
}

// TestPrimaryRemoteAndThreeClustersOnTestHosts applies the other two
// shapes of examples/: a primary-remote mesh (cluster2 a remote of
// cluster1, one network), then, on three clusters over two networks, a
// multi-primary mesh with six remote secrets.
func TestPrimaryRemoteAndThreeClustersOnTestHosts(t *testing.T) {
	w := newWorld(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	h := w.bed.Hosts
	write := func(clusters, meshes string) {
		plan := fmt.Sprintf(`apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: e2e}
ssh: {user: root, identityFile: %q, knownHosts: %q}
hosts:
  - {name: h1, address: %s}
  - {name: h2, address: %s}
  - {name: h3, address: %s}
networks: [{name: network1}, {name: network2}]
clusters:
%s
meshes:
%s
`, w.bed.ClientKeyPath, w.knownHosts, h[0].Address, h[1].Address, h[2].Address, clusters, meshes)
		if err := os.WriteFile(filepath.Join(w.dir, "plan.yaml"), []byte(plan), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cluster := func(n int, network string) string {
		return fmt.Sprintf(`  - name: cluster%d
    network: %s
    servers: [h%d]
    k3s: {args: [--cluster-cidr=10.%d.0.0/16, --service-cidr=10.%d.0.0/16], airgap: {binary: %q, installScript: %q}}
`, n, network, n, 40+2*n, 41+2*n, w.k3s, w.installScript())
	}

	t.Run("primary-remote", func(t *testing.T) {
		write(cluster(1, "network1")+cluster(2, "network1"), `  - name: mesh1
    model: primary-remote
    clusters: [cluster1, cluster2]
    primaries: [cluster1]
    ca: {keySize: 2048}
`)
		// cluster1 and cluster2 share network1: verify's podroutes needs
		// their pod CIDRs (10.42/16, 10.44/16) routed between h1 and h2.
		routePodCIDR(t, h[0], "10.44.0.0/16", h[1])
		routePodCIDR(t, h[1], "10.42.0.0/16", h[0])
		r := w.mustApply(t, ctx, "apply")
		if _, ok := r.outcomes["mesh/mesh1/remotesecret/cluster1->cluster2"]; ok {
			t.Error("a remote holds a remote secret")
		}
		if r.outcomes["mesh/mesh1/remotesecret/cluster2->cluster1"] != "succeeded" || r.outcomes["mesh/mesh1/verify/sample"] != "succeeded" {
			t.Errorf("outcomes %v", r.outcomes)
		}
		c2 := w.clientFor("context-cluster2")
		if _, err := c2.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); err == nil {
			t.Error("the remote cluster runs its own istiod")
		}
		// The remote's pods are injected by the primary's istiod, through
		// the remote's webhook pointing at the primary's gateway address.
		w.assertInjected(t, ctx, []string{"cluster1", "cluster2"})
		w.assertXDSHealthy(t, ctx, []string{"cluster1"}, map[string]string{"cluster1": "network1", "cluster2": "network1"})
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("second apply: exit %d, ran %v", again.code, again.ran())
		}
	})

	t.Run("primary-remote canary to r2", func(t *testing.T) {
		// The remote follows its primary: istiod-r2 in cluster1 beside
		// istiod, the remote profile of r2 in cluster2 beside the old one,
		// each reached through cluster1's gateway by the server name its
		// clients ask for (the per-revision route).
		write(cluster(1, "network1")+cluster(2, "network1"), `  - name: mesh1
    model: primary-remote
    clusters: [cluster1, cluster2]
    primaries: [cluster1]
    ca: {keySize: 2048}
    istio:
      revision: r2
      upgrade: {restartWorkloads: true}
`)
		start := time.Now()
		r := w.mustApply(t, ctx, "canary")
		t.Logf("primary-remote canary of two clusters: %s", time.Since(start).Round(time.Millisecond))
		for _, id := range []string{"mesh/mesh1/istio/gate", "cluster/cluster2/istio/tags", "cluster/cluster2/istio/restart", "cluster/cluster2/istio/retire/default", "cluster/cluster1/istio/retire/default"} {
			if r.outcomes[id] != "succeeded" {
				t.Errorf("%s: %s %s", id, r.outcomes[id], r.errors[id])
			}
		}
		w.assertSampleRevision(t, ctx, []string{"cluster1", "cluster2"}, "r2")
		c1, c2 := w.clientFor("context-cluster1"), w.clientFor("context-cluster2")
		for c, cl := range map[string]*kubernetes.Clientset{"cluster1": c1, "cluster2": c2} {
			if _, err := cl.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("%s: the non-revisioned injector after the canary (%v)", c, err)
			}
			if _, err := cl.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-default", metav1.GetOptions{}); err != nil {
				t.Errorf("%s: the default tag: %v", c, err)
			}
		}
		if _, err := c1.AppsV1().Deployments("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster1: Deployment istiod after the canary (%v)", err)
		}
		if _, err := c2.CoreV1().Services("istio-system").Get(ctx, "istiod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("cluster2: the old revision's Service istiod after the canary (%v)", err)
		}
		if _, err := c2.CoreV1().Services("istio-system").Get(ctx, "istiod-r2", metav1.GetOptions{}); err != nil {
			t.Errorf("cluster2: Service istiod-r2: %v", err)
		}
		if gw, err := c1.AppsV1().Deployments("istio-system").Get(ctx, "istio-eastwestgateway", metav1.GetOptions{}); err != nil || gw.Spec.Template.Labels["istio.io/rev"] != "r2" {
			t.Errorf("cluster1: east-west gateway not on r2: %v", err)
		}
		w.assertXDSHealthy(t, ctx, []string{"cluster1"}, map[string]string{"cluster1": "network1", "cluster2": "network1"})
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("apply after the canary: exit %d, ran %v", again.code, again.ran())
		}
		// The next shape is a non-revisioned mesh over the same clusters:
		// a revision cannot go back to none, so the mesh goes first.
		out, err := exec.CommandContext(ctx, w.mcplan, "destroy", "--auto-approve", "--target", "mesh/mesh1/*", "--target", "cluster/*/istio/*", "--target", "cluster/*/ca/*", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err != nil {
			t.Fatalf("destroy of the mesh: %v\n%s", err, out)
		}
	})

	t.Run("three clusters, two networks", func(t *testing.T) {
		// The same hosts: the plan drops mesh1 (destroyed above) and
		// makes mesh3 over three clusters.
		write(cluster(1, "network1")+cluster(2, "network1")+cluster(3, "network2"), `  - name: mesh3
    clusters: [cluster1, cluster2, cluster3]
    ca: {keySize: 2048}
`)
		r := w.mustApply(t, ctx, "apply")
		secrets := 0
		for id, o := range r.outcomes {
			if strings.Contains(id, "/remotesecret/") && o == "succeeded" {
				secrets++
			}
		}
		if secrets != 6 || r.outcomes["mesh/mesh3/verify/sample"] != "succeeded" {
			t.Errorf("%d remote secrets made, verify %s", secrets, r.outcomes["mesh/mesh3/verify/sample"])
		}
		// cluster1 and cluster2 share network1: verify's podroutes needs
		// their pod CIDRs (10.42/16, 10.44/16) routed between h1 and h2.
		routePodCIDR(t, h[0], "10.44.0.0/16", h[1])
		routePodCIDR(t, h[1], "10.42.0.0/16", h[0])
		out, err := exec.CommandContext(ctx, w.mcplan, "verify", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if err != nil {
			t.Fatalf("verify: %v\n%s", err, out)
		}
		if n := strings.Count(string(out), "podroutes"); n != 2 {
			t.Errorf("verify shows %d podroutes rows, want 2 (cluster1 and cluster2 share network1):\n%s", n, out)
		}
		if n := strings.Count(string(out), "remotesecret"); n != 6 {
			t.Errorf("verify shows %d remote secret rows, want 6:\n%s", n, out)
		}
		w.assertInjected(t, ctx, []string{"cluster1", "cluster2", "cluster3"})
		w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2", "cluster3"},
			map[string]string{"cluster1": "network1", "cluster2": "network1", "cluster3": "network2"})
		w.logXDSTables(t, ctx)
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("second apply: exit %d, ran %v", again.code, again.ran())
		}
	})

	t.Run("cluster3 leaves the plan", func(t *testing.T) {
		merged := filepath.Join(w.dir, "kubeconfig")
		w.addUserContext(t, merged)
		// h3 stays a host of the plan; cluster3 and its network go, so the
		// mesh becomes one network of cluster1 and cluster2.
		write(cluster(1, "network1")+cluster(2, "network1"), `  - name: mesh3
    clusters: [cluster1, cluster2]
    ca: {keySize: 2048}
`)
		w.checkGoldenPlan(t, ctx, "remove-cluster3")
		out, err := exec.CommandContext(ctx, w.mcplan, "plan", "--detailed-exitcode", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
		if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 2 {
			t.Fatalf("plan: %v, want exit 2\n%s", err, out)
		}
		for _, want := range []string{"- host/h3/k3s/server", "runs /usr/local/bin/k3s-uninstall.sh on h3", "- cluster/cluster3/istio/controlplane",
			"- mesh/mesh3/remotesecret/cluster3->cluster1", "- cluster/cluster3/kubeconfig/fetch"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("plan lacks %q", want)
			}
		}
		t.Logf("plan:\n%s", out)
		marks := w.sshLogMarks()
		start := time.Now()
		w.mustApply(t, ctx, "apply without cluster3")
		t.Logf("removing cluster3 took %s (with the rest of the apply)", time.Since(start).Round(time.Millisecond))
		for _, c := range []string{"cluster1", "cluster2"} {
			_, err := w.clientFor("context-"+c).CoreV1().Secrets("istio-system").Get(ctx, "istio-remote-secret-cluster3", metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				t.Errorf("%s still holds cluster3's remote secret (%v)", c, err)
			}
		}
		// Their istiods no longer read cluster3: every view is the two
		// clusters' pods, on one network.
		w.assertXDSHealthy(t, ctx, []string{"cluster1", "cluster2"}, map[string]string{"cluster1": "network1", "cluster2": "network1"})
		if !slices.ContainsFunc(w.sshCommandsSince(marks)["h3"], func(c string) bool { return strings.Contains(c, "/usr/local/bin/k3s-uninstall.sh") }) {
			t.Error("h3's log shows no run of k3s-uninstall.sh")
		}
		if left := w.ssh(h[2], "for p in /usr/local/bin/k3s /etc/systemd/system/k3s.service /etc/rancher/k3s /var/lib/rancher/k3s /var/lib/kubelet; do [ -e $p ] && echo $p; done; true"); strings.TrimSpace(left) != "" {
			t.Errorf("h3 is not bare: %s", left)
		}
		cfg, err := clientcmd.LoadFromFile(merged)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := cfg.Contexts["context-cluster3"]; ok {
			t.Error("the merged kubeconfig still has context-cluster3")
		}
		if _, ok := cfg.Contexts["user-own"]; !ok {
			t.Error("the user's own context left the merged kubeconfig")
		}
		if again := w.apply(ctx); again.code != 0 || len(again.ran()) != 0 {
			t.Errorf("apply after the removal: exit %d, ran %v", again.code, again.ran())
		}
	})
}
