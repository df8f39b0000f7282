package steps

import (
	"slices"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// TestIstioCanaryOnStandins canaries a two-network multi-primary mesh on
// real kube-apiservers from its non-revisioned control plane to r2: the
// canary is read from the inventories, r2 runs beside the old one, the
// tags move (the old injector deactivated as istioctl does), the
// gateways move, the old revision goes by its inventory while what r2
// shares stays, and afterwards there is no canary and every step is in
// sync. (The gate's xDS check needs a real istiod: verify is off here,
// so the gate passes and says so; the e2e test runs it.)
func TestIstioCanaryOnStandins(t *testing.T) {
	r := newIstioRun(t, plans.ModelMultiPrimary, []string{"network1", "network2"}, nil)
	r.run()
	ctx := r.ctx
	if c, err := Canaries(r.plan, r.dir); err != nil || len(c) != 0 {
		t.Fatalf("canaries after a non-revisioned install: %v, %v", c, err)
	}

	r.plan.Meshes[0].Istio.Revision = "r2"
	r.plan.Meshes[0].Istio.Upgrade = &plans.IstioUpgrade{RestartWorkloads: true}
	canaries, err := Canaries(r.plan, r.dir)
	if err != nil || !slices.Equal(canaries["mesh1"], []string{""}) {
		t.Fatalf("canary of mesh1: %v, %v; want from the non-revisioned control plane", canaries, err)
	}
	r.graph = istioGraphUpgrading(t, r.plan, plans.Upgrades{Istio: canaries})
	failFast(r.graph)
	for _, id := range []string{"mesh/mesh1/istio/gate", "cluster/cluster1/istio/tags", "cluster/cluster2/istio/restart", "cluster/cluster2/istio/retire/default"} {
		if r.graph.Node(id) == nil {
			t.Fatalf("the canary's graph has no %s", id)
		}
	}
	start := time.Now()
	r.run()
	t.Logf("canary on the stand-ins: %s", time.Since(start).Round(time.Millisecond))

	for _, s := range r.servers {
		c := r.clients[s.name]
		if _, err := c.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, "istiod-r2", metav1.GetOptions{}); err != nil {
			t.Errorf("%s: istiod-r2: %v", s.name, err)
		}
		if _, err := c.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.IstiodName, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: the old istiod is still there (%v)", s.name, err)
		}
		if _, err := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-sidecar-injector", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("%s: the old injector is still there (%v)", s.name, err)
		}
		tag, err := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-default", metav1.GetOptions{})
		if err != nil || tag.Labels["istio.io/rev"] != "r2" {
			t.Errorf("%s: the default tag: %v", s.name, err)
		}
		validator, err := c.Typed.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, istiorender.DefaultValidator, metav1.GetOptions{})
		if err != nil || validator.Labels["istio.io/rev"] != "r2" {
			t.Errorf("%s: the default validator kept and moved to r2: %v", s.name, err)
		}
		if _, err := c.Typed.CoreV1().ServiceAccounts(istiorender.Namespace).Get(ctx, istiorender.ReaderServiceAccount, metav1.GetOptions{}); err != nil {
			t.Errorf("%s: the reader account r2 shares: %v", s.name, err)
		}
		gw, err := c.Typed.AppsV1().Deployments(istiorender.Namespace).Get(ctx, istiorender.EastWestGatewayName, metav1.GetOptions{})
		if err != nil || gw.Spec.Template.Labels["istio.io/rev"] != "r2" {
			t.Errorf("%s: the east-west gateway is not on r2 (%v)", s.name, err)
		}
		installed, err := installedControlPlanes(r.dir, s.name)
		if err != nil || len(installed) != 1 || installed["r2"] != "controlplane-r2" {
			t.Errorf("%s: control planes after the canary %v (%v), want r2 alone", s.name, installed, err)
		}
	}
	if c, err := Canaries(r.plan, r.dir); err != nil || len(c) != 0 {
		t.Errorf("canaries after the canary: %v, %v", c, err)
	}
	// Afterwards: the graph without a canary (tags stay), in sync, and a
	// second apply changes nothing.
	r.graph = istioGraph(t, r.plan)
	if r.graph.Node("cluster/cluster1/istio/tags") == nil || r.graph.Node("mesh/mesh1/istio/gate") != nil {
		t.Errorf("the graph after the canary: tags %v, gate %v", r.graph.Node("cluster/cluster1/istio/tags") != nil, r.graph.Node("mesh/mesh1/istio/gate") != nil)
	}
	r.checkIdempotent()

	// A tag dropped from the plan goes with the tags' inventory; the
	// plan's new tag comes.
	r.plan.Meshes[0].Istio.Tags = []string{"stable"}
	r.graph = istioGraph(t, r.plan)
	r.run()
	c1 := r.clients["cluster1"]
	if _, err := c1.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-default", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the dropped default tag is still there (%v)", err)
	}
	if _, err := c1.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "istio-revision-tag-stable", metav1.GetOptions{}); err != nil {
		t.Errorf("the stable tag: %v", err)
	}
	inv := statedir.Inventory(r.dir, "cluster1", tagsSet)
	if refs, err := (&kube.Inventory{Path: inv}).Load(); err != nil || !slices.ContainsFunc(refs, func(r kube.Ref) bool { return r.Name == "istio-revision-tag-stable" }) {
		t.Errorf("tags inventory %v (%v)", refs, err)
	}
}
