package steps

import (
	"context"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// TestCanariesFromInventories: which revisions are installed is read
// from the control-plane inventories mcplan wrote, including one written
// before revisions had their own inventory.
func TestCanariesFromInventories(t *testing.T) {
	istiod := func(rev string) kube.Ref {
		return kube.Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: istiorender.Namespace, Name: istiorender.IstiodDeployment(rev)}
	}
	injector := kube.Ref{Group: "admissionregistration.k8s.io", Version: "v1", Kind: "MutatingWebhookConfiguration", Name: "istio-sidecar-injector-r1"}
	crd := kube.Ref{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition", Name: "gateways.networking.istio.io"}
	for _, tt := range []struct {
		name      string
		revision  string
		model     string
		sets      map[string][]kube.Ref // cluster/set -> refs
		canary    []string
		refused   string
		setForRev string // controlPlaneSetOf(c1, revision)
	}{
		{name: "fresh", revision: "r2", setForRev: "controlplane-r2"},
		{name: "in place", revision: "", sets: map[string][]kube.Ref{"c1/controlplane": {crd, istiod("")}}, setForRev: "controlplane"},
		{name: "from default", revision: "r2", sets: map[string][]kube.Ref{"c1/controlplane": {crd, istiod("")}, "c2/controlplane": {istiod("")}},
			canary: []string{""}, setForRev: "controlplane-r2"},
		{name: "resumed", revision: "r2", sets: map[string][]kube.Ref{"c1/controlplane": {istiod("")}, "c1/controlplane-r2": {crd, istiod("r2")}},
			canary: []string{""}, setForRev: "controlplane-r2"},
		{name: "legacy inventory holds the revision", revision: "r1", sets: map[string][]kube.Ref{"c1/controlplane": {crd, istiod("r1")}}, setForRev: "controlplane"},
		{name: "remote's injector", revision: "r2", sets: map[string][]kube.Ref{"c2/controlplane-r1": {injector}}, canary: []string{"r1"}, setForRev: "controlplane-r2"},
		{name: "inventory without istiod", revision: "r2", sets: map[string][]kube.Ref{"c1/controlplane": {crd}}, setForRev: "controlplane-r2"},
		{name: "back to none", revision: "", sets: map[string][]kube.Ref{"c1/controlplane-r2": {istiod("r2")}}, canary: []string{"r2"},
			refused: "going back to the non-revisioned control plane is not supported", setForRev: "controlplane"},
		{name: "primary-remote", revision: "r2", model: plans.ModelPrimaryRemote, sets: map[string][]kube.Ref{"c1/controlplane": {istiod("")}}, canary: []string{""},
			setForRev: "controlplane-r2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for key, refs := range tt.sets {
				cluster, set, _ := strings.Cut(key, "/")
				if err := (&kube.Inventory{Path: statedir.Inventory(dir, cluster, set)}).Save(refs); err != nil {
					t.Fatal(err)
				}
			}
			// An unrelated inventory whose name starts alike is not a control plane.
			if err := (&kube.Inventory{Path: statedir.Inventory(dir, "c1", "controlplanes")}).Save([]kube.Ref{istiod("zz")}); err != nil {
				t.Fatal(err)
			}
			p := &plans.Plan{Meshes: []plans.Mesh{{Name: "m", Model: tt.model, Clusters: []string{"c1", "c2"}, Primaries: []string{"c1"}, Istio: plans.Istio{Revision: tt.revision}}}}
			canaries, err := Canaries(p, dir)
			if err != nil {
				t.Fatal(err)
			}
			if got := canaries["m"]; !slices.Equal(got, tt.canary) {
				t.Errorf("canary from %q, want %q", got, tt.canary)
			}
			err = CheckCanaries(p, canaries)
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.refused != "" && (err == nil || !strings.Contains(err.Error(), tt.refused)):
				t.Errorf("refusal %v, want %q", err, tt.refused)
			}
			set, err := controlPlaneSetOf(dir, "c1", tt.revision)
			if err != nil || set != tt.setForRev {
				t.Errorf("inventory of revision %q in c1: %q, %v; want %q", tt.revision, set, err, tt.setForRev)
			}
		})
	}
}

// TestTagObjects renders the revision tags as istioctl tag set makes
// them: per tag a webhook configuration and a Service labelled with the
// tag and the revision, the webhooks calling the revision's istiod; the
// default tag also brings the default validator, pointed at the
// revision; nothing of the control plane itself. A remote's tags call the
// same Service name, its own selectorless istiod-r2 (whose endpoint is
// its primary's gateway), at the injection path of its cluster.
func TestTagObjects(t *testing.T) {
	for _, tt := range []struct {
		name string
		cp   istiorender.ControlPlane
		path string // the injection webhooks' path
	}{
		{"primary", istiorender.ControlPlane{Cluster: istiorender.Cluster{Mesh: "m", Cluster: "c1", Network: "n1", Revision: "r2"}}, "/inject"},
		{"remote", istiorender.ControlPlane{Cluster: istiorender.Cluster{Mesh: "m", Cluster: "c2", Network: "n1", Revision: "r2"}, RemotePilotAddress: "192.0.2.31"},
			"/inject/cluster/c2/net/n1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := istiorender.Render(context.Background(), tt.cp.TagsOperator([]string{"default", "stable"}))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range istiorender.TagObjects(m) {
				got = append(got, o.GetKind()+" "+o.GetName()+" rev="+o.GetLabels()["istio.io/rev"]+" tag="+o.GetLabels()[istiorender.TagLabel])
				if o.GetKind() != "MutatingWebhookConfiguration" && o.GetKind() != "ValidatingWebhookConfiguration" {
					continue
				}
				hooks, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
				for _, h := range hooks {
					svc, _ := h.(map[string]any)["clientConfig"].(map[string]any)["service"].(map[string]any)
					if svc["name"] != "istiod-r2" {
						t.Errorf("%s %s calls Service %v, want istiod-r2", o.GetKind(), o.GetName(), svc["name"])
					}
					if o.GetKind() == "MutatingWebhookConfiguration" && svc["path"] != tt.path {
						t.Errorf("%s %s calls path %v, want %s", o.GetKind(), o.GetName(), svc["path"], tt.path)
					}
				}
			}
			slices.Sort(got)
			want := []string{
				"MutatingWebhookConfiguration istio-revision-tag-default rev=r2 tag=default",
				"MutatingWebhookConfiguration istio-revision-tag-stable rev=r2 tag=stable",
				"Service istiod-revision-tag-default rev=r2 tag=default",
				"Service istiod-revision-tag-stable rev=r2 tag=stable",
				"ValidatingWebhookConfiguration istiod-default-validator rev=r2 tag=",
			}
			if !slices.Equal(got, want) {
				t.Errorf("tag objects:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
