package steps

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/verify"
	"mcplan.io/mcplan/steps/xds"
)

// xdsRun is the walkthrough mesh on two stand-ins, with a real istiod
// (pilot-discovery) per cluster run outside the clusters, and the sample
// deployed.
type xdsRun struct {
	*istioRun
	verify  *verify.Verifier
	istiods map[string]*istiodProcess
	pilot   string
	sample  *verify.Sample
}

// newXDSRun applies the Istio steps, starts the istiods and deploys the
// sample. In these tests nothing injects sidecars: the sample's pods get
// the labels Istio's injection template gives an injected pod
// (security.istio.io/tlsMode=istio, service.istio.io/canonical-name and
// -revision), which is what istiod reads. Injection gives them no
// topology.istio.io/network label (the sidecar sends its network as
// metadata), so their network comes from istio-system's label, as in a
// real cluster.
func newXDSRun(t *testing.T) *xdsRun {
	return newXDSRunOf(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
}

// newXDSRunOf is newXDSRun for a mesh of another model or networks; an
// istiod runs for each primary.
func newXDSRunOf(t *testing.T, model string, networks []string, tweak func(*plans.Plan)) *xdsRun {
	pilot := pilotBinary(t)
	r := &xdsRun{istioRun: newIstioRun(t, model, networks, tweak), pilot: pilot, istiods: map[string]*istiodProcess{}}
	start := time.Now()
	r.run()
	t.Logf("Istio steps applied in %s", time.Since(start).Round(time.Millisecond))
	for _, s := range r.servers {
		if r.plan.IsPrimary("mesh1", s.name) {
			r.istiods[s.name] = startIstiod(t, t, r.ctx, pilot, s.name, statedir.Kubeconfig(r.dir, s.name))
		}
	}
	r.verify = verify.New(r.plan, r.plan.Meshes[0])
	r.verify.XDSTimeout = 30 * time.Second
	start = time.Now()
	r.sample = r.verify.DeploySample(r.ctx, r.dir, verify.CheckXDS, t.Logf)
	if fs := r.sample.Failures(); len(fs) > 0 {
		t.Fatalf("sample: %v", fs)
	}
	for _, name := range r.sample.Reached() {
		r.labelSamplePods(name, map[string]string{verify.TLSModeLabel: verify.TLSModeIstio})
	}
	t.Logf("sample ready and labelled in %s", time.Since(start).Round(time.Millisecond))
	return r
}

// labelSamplePods sets labels on every sample pod of a cluster as the
// injection would (a nil value removes the label), with the canonical
// service labels.
func (r *xdsRun) labelSamplePods(cluster string, labels map[string]string) {
	r.t.Helper()
	c := r.clients[cluster]
	pods, err := c.Typed.CoreV1().Pods(verify.SampleNamespace).List(r.ctx, metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	for _, p := range pods.Items {
		set := map[string]any{
			"service.istio.io/canonical-name":     p.Labels["app"],
			"service.istio.io/canonical-revision": "latest",
		}
		if v := p.Labels["version"]; v != "" {
			set["service.istio.io/canonical-revision"] = v
		}
		for k, v := range labels {
			if v == "" {
				set[k] = nil
			} else {
				set[k] = v
			}
		}
		patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": set}})
		if _, err := c.Typed.CoreV1().Pods(verify.SampleNamespace).Patch(r.ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			r.t.Fatalf("label pod %s in %s: %v", p.Name, cluster, err)
		}
	}
}

// dial reaches the test's istiods directly.
func (r *xdsRun) dial() xds.DialIstiod {
	addrs := map[string]string{}
	for name, p := range r.istiods {
		addrs[name] = p.grpcAddr
	}
	return xds.Direct(addrs)
}

// check runs the xDS check (with retries) and logs its tables.
func (r *xdsRun) check(t *testing.T) []verify.XDSReport {
	t.Helper()
	start := time.Now()
	reports := r.verify.XDSReports(r.ctx, r.sample, r.dial(), t.Logf)
	t.Logf("xDS check took %s:\n%s", time.Since(start).Round(time.Millisecond), verify.XDSReportsText(reports))
	return reports
}

// healthy checks that every istiod tells every network's sidecar what
// the clusters say: its own network's pod IPs, the other's gateway.
func (r *xdsRun) healthy(t *testing.T) {
	t.Helper()
	reports := r.check(t)
	if len(reports) != 4 {
		t.Fatalf("%d reports, want 4 (2 istiods x 2 networks)", len(reports))
	}
	for _, rep := range reports {
		if !rep.OK() {
			t.Errorf("%s: not OK:\n%s", rep.Title(), verify.XDSReportsText([]verify.XDSReport{rep}))
			continue
		}
		var pods, gateways int
		for _, row := range rep.Rows {
			switch row.Port {
			case verify.HelloworldPort:
				pods++
			case verify.CrossNetworkPort:
				gateways++
				other := "127.0.0.3"
				if rep.Network == "network2" {
					other = "127.0.0.2"
				}
				if row.Endpoint != other {
					t.Errorf("%s: gateway %s, want the other network's %s", rep.Title(), row.Endpoint, other)
				}
			}
		}
		if pods != 1 || gateways != 1 {
			t.Errorf("%s: %d pod and %d gateway endpoints, want 1 and 1", rep.Title(), pods, gateways)
		}
	}
}

// failsWith checks that the report of istiod primary for network's
// sidecar fails and names each of want in its causes or error.
func failsWith(t *testing.T, reports []verify.XDSReport, primary, network string, want ...string) {
	t.Helper()
	for _, rep := range reports {
		if rep.Primary != primary || rep.Network != network {
			continue
		}
		if rep.OK() {
			t.Fatalf("%s: OK on a broken mesh", rep.Title())
		}
		text := verify.XDSReportsText([]verify.XDSReport{rep})
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s: report lacks %q:\n%s", rep.Title(), w, text)
			}
		}
		return
	}
	t.Fatalf("no report for istiod of %s and %s", primary, network)
}

func TestVerifyXDSOnStandinsWithRealIstiod(t *testing.T) {
	r := newXDSRun(t)
	ctx := r.ctx
	r.healthy(t)
	c1, c2 := r.clients["cluster1"], r.clients["cluster2"]

	t.Run("NetworkLabelRemoved", func(t *testing.T) {
		setNamespaceLabel(t, ctx, c2, istiorender.NetworkLabel, "")
		reports := r.check(t)
		failsWith(t, reports, "cluster1", "network1", "network label", "namespace istio-system of cluster2 lacks label topology.istio.io/network",
			"cluster2 pod helloworld-v2", "WRONG")
		setNamespaceLabel(t, ctx, c2, istiorender.NetworkLabel, "network2")
		r.healthy(t)
	})

	t.Run("RemoteSecretDeleted", func(t *testing.T) {
		secrets := c1.Typed.CoreV1().Secrets(istiorender.Namespace)
		sec, err := secrets.Get(ctx, istiorender.RemoteSecretName("cluster2"), metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := secrets.Delete(ctx, sec.Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		reports := r.check(t)
		failsWith(t, reports, "cluster1", "network1", "remote secret", "istio-remote-secret-cluster2", "MISSING")
		sec.ResourceVersion, sec.UID = "", ""
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		r.healthy(t)
	})

	t.Run("GatewayWithoutAddress", func(t *testing.T) {
		// As in TestVerifyControlPlaneOnStandins: as NodePort the gateway
		// keeps no address (servicelb empties its ingress).
		// The istiods keep the address the gateway had: a stale istiod,
		// named after the gateway address itself.
		setGatewayType(t, ctx, c2, corev1.ServiceTypeNodePort)
		reports := r.check(t)
		failsWith(t, reports, "cluster1", "network1", "gateway address", "clusters[cluster2].eastWest.address", "(none)", "MISSING",
			"stale istiod: the istiod of cluster1 sends cluster2's east-west gateway at 127.0.0.3:15443, but Service istio-system/istio-eastwestgateway now has none",
			"kubectl --context context-cluster1 -n istio-system rollout restart deployment/istiod")
		setGatewayType(t, ctx, c2, corev1.ServiceTypeLoadBalancer)
		r.healthy(t)
	})

	t.Run("TLSModeLabelRemoved", func(t *testing.T) {
		r.labelSamplePods("cluster2", map[string]string{verify.TLSModeLabel: ""})
		reports := r.check(t)
		failsWith(t, reports, "cluster1", "network1", "tlsMode label", "security.istio.io/tlsMode=istio", "MISSING")
		r.labelSamplePods("cluster2", map[string]string{verify.TLSModeLabel: verify.TLSModeIstio})
		r.healthy(t)
	})

	t.Run("XDSAndApply", func(t *testing.T) {
		// The public paths: XDS deploys the sample again (no change) and
		// checks; the step's Apply runs it when verify is enabled.
		fs, reports := r.verify.XDS(ctx, r.dir, r.dial(), t.Logf)
		if bad := verify.Failed(fs); len(bad) > 0 || len(reports) != 4 {
			t.Fatalf("XDS: %d reports, failed: %v", len(reports), bad)
		}
		mesh := r.plan.Meshes[0]
		mesh.Verify.Enabled = nil
		step := &VerifySample{Verifier: verify.New(r.plan, mesh)}
		step.DialIstiod, step.XDSTimeout = r.dial(), 5*time.Second
		env := r.env(plans.VerifySampleID("mesh1"))
		if err := step.Apply(ctx, env); err != nil {
			t.Fatalf("Apply on the healthy mesh: %v", err)
		}
		r.labelSamplePods("cluster2", map[string]string{verify.TLSModeLabel: ""})
		err := step.Apply(ctx, env)
		r.labelSamplePods("cluster2", map[string]string{verify.TLSModeLabel: verify.TLSModeIstio})
		if err == nil {
			t.Fatal("Apply passed with cluster2's pods unlabelled")
		}
		for _, want := range []string{"2 of", "cluster cluster1: xds: sidecar cluster1/sample/sleep-", "tlsMode label",
			"xDS FAILED: istiod of cluster1 -> sidecar sample/sleep-", "MISSING"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Apply error lacks %q:\n%v", want, err)
			}
		}
		t.Logf("Apply says:\n%v", err)
		r.healthy(t)
	})

	t.Run("IstiodDown", func(t *testing.T) {
		r.istiods["cluster1"].stop()
		r.verify.XDSTimeout = 3 * time.Second
		reports := r.check(t)
		r.verify.XDSTimeout = 30 * time.Second
		failsWith(t, reports, "cluster1", "network1", string(xds.ReasonPortClosed), "connection refused",
			"arguments do not set --grpcAddr")
		// Started for the rest of the test: stopped by its cleanup.
		r.istiods["cluster1"] = startIstiod(t, r.t, ctx, r.pilot, "cluster1", statedir.Kubeconfig(r.dir, "cluster1"))
		r.healthy(t)
	})
}

// TestVerifyXDSPrimaryRemoteOnStandinsWithRealIstiod: one network, the
// primary's istiod serves both clusters' sidecars, and tells them both
// clusters' helloworld pod IPs (the same IP in each: k3s's default
// cluster CIDR), no gateway.
func TestVerifyXDSPrimaryRemoteOnStandinsWithRealIstiod(t *testing.T) {
	// As in TestIstioStepsPrimaryRemoteOnStandins: the primary's gateway
	// address comes from the plan (the remote's istiod endpoints refuse
	// loopback addresses).
	r := newXDSRunOf(t, plans.ModelPrimaryRemote, []string{"network1", "network1"}, func(p *plans.Plan) {
		p.Clusters[0].EastWest = &plans.EastWest{Address: "192.0.2.31"}
	})
	reports := r.check(t)
	if len(reports) != 1 || !reports[0].OK() || reports[0].Primary != "cluster1" {
		t.Fatalf("want one OK report of cluster1's istiod:\n%s", verify.XDSReportsText(reports))
	}
	clusters := map[string]bool{}
	for _, row := range reports[0].Rows {
		clusters[strings.Fields(row.StandsFor)[0]] = row.Port == verify.HelloworldPort
	}
	if len(reports[0].Rows) != 2 || !clusters["cluster1"] || !clusters["cluster2"] {
		t.Errorf("rows %+v, want a pod IP of each cluster at %d", reports[0].Rows, verify.HelloworldPort)
	}
}

// TestVerifyXDSPortForwardOnStandins takes the product's path to istiod,
// pods/portforward through a real kube-apiserver, and checks its errors:
// no istiod pod, no ready one, and the forward failing when the API
// server cannot reach a kubelet that serves port-forward (the stand-in
// runs none unless it runs pods natively).
func TestVerifyXDSPortForwardOnStandins(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	r.run()
	ctx := r.ctx
	c1 := r.clients["cluster1"]

	t.Run("NoPod", func(t *testing.T) {
		_, err := xds.PortForward(r.clients, "canary", t.Logf)(ctx, "cluster1")
		if xds.ReasonOf(err) != xds.ReasonNoPod || !strings.Contains(err.Error(), "no pod with labels app=istiod,istio.io/rev=canary in namespace istio-system") {
			t.Errorf("err %v, want %s", err, xds.ReasonNoPod)
		}
	})

	t.Run("NotReady", func(t *testing.T) {
		// A pod no node can take stays Pending.
		pending := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "istiod-pending", Namespace: istiorender.Namespace,
				Labels: map[string]string{"app": "istiod", "istio.io/rev": "pending"}},
			Spec: corev1.PodSpec{NodeSelector: map[string]string{"mcplan.io/no-such-node": "true"},
				Containers: []corev1.Container{{Name: "discovery", Image: "docker.io/istio/pilot:1.31.0"}}},
		}
		if _, err := c1.Typed.CoreV1().Pods(istiorender.Namespace).Create(ctx, pending, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = c1.Typed.CoreV1().Pods(istiorender.Namespace).Delete(ctx, pending.Name, metav1.DeleteOptions{})
		}()
		_, err := xds.PortForward(r.clients, "pending", t.Logf)(ctx, "cluster1")
		if xds.ReasonOf(err) != xds.ReasonNotReady || !strings.Contains(err.Error(), "istiod-pending: Pending") {
			t.Errorf("err %v, want %s naming the pending pod", err, xds.ReasonNotReady)
		}
	})

	t.Run("Forward", func(t *testing.T) {
		ist, err := xds.PortForward(r.clients, "", t.Logf)(ctx, "cluster1")
		if err != nil {
			if xds.ReasonOf(err) != xds.ReasonForwardFailed || !strings.Contains(err.Error(), "pods/portforward through the API https://127.0.0.2:") {
				t.Fatalf("err %v, want %s", err, xds.ReasonForwardFailed)
			}
			t.Logf("the stand-in serves no port-forward: %v", err)
			// The check reports it with the hint, for every network.
			v := verify.New(r.plan, r.plan.Meshes[0])
			v.XDSTimeout = time.Second
			_, reports := v.XDS(ctx, r.dir, nil, t.Logf)
			failsWith(t, reports, "cluster1", "network1", string(xds.ReasonForwardFailed), "kubelet of the pod's node (port 10250)",
				"kubectl --context context-cluster1 -n istio-system port-forward deployment/istiod 15010")
			return
		}
		// A stand-in that runs istiod natively serves the forward: istiod answers.
		defer ist.Close()
		conn, err := ist.Dial(ctx)
		if err != nil {
			t.Fatalf("%s: %v", ist.Name, err)
		}
		conn.Close()
		t.Logf("forwarded to %s", ist.Name)
	})
}

// setNamespaceLabel sets (or, for "", removes) a label of istio-system.
func setNamespaceLabel(t *testing.T, ctx context.Context, c *kube.Client, key, value string) {
	t.Helper()
	var v any = value
	if value == "" {
		v = nil
	}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{key: v}}})
	if _, err := c.Typed.CoreV1().Namespaces().Patch(ctx, istiorender.Namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// setGatewayType makes the east-west gateway Service a LoadBalancer or
// NodePort, and waits until servicelb has given or taken its address.
func setGatewayType(t *testing.T, ctx context.Context, c *kube.Client, typ corev1.ServiceType) {
	t.Helper()
	svcs := c.Typed.CoreV1().Services(istiorender.Namespace)
	svc, err := svcs.Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = typ
	svc.Spec.ExternalIPs = nil
	if typ != corev1.ServiceTypeLoadBalancer {
		svc.Spec.ExternalTrafficPolicy = ""
		svc.Spec.AllocateLoadBalancerNodePorts = nil
	}
	if _, err := svcs.Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := typ == corev1.ServiceTypeLoadBalancer
	deadline := time.Now().Add(time.Minute)
	for {
		svc, err := svcs.Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if (kube.LoadBalancerAddress(svc) != "") == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("gateway ingress %v, want present=%v", svc.Status.LoadBalancer.Ingress, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
