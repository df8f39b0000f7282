package steps

import (
	"context"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/util/retry"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// IstioTags points a revisioned mesh's revision tags (istio.tags, by
// default [default]) at the plan's revision in one primary cluster, as
// `istioctl tag set <tag> --revision <rev> --overwrite` does: each tag's
// MutatingWebhookConfiguration and Service, rendered by Istio's charts,
// and for the default tag the default validator; with the default tag it
// also deactivates the non-revisioned control plane's injector, as
// istioctl does, so that istio-injection=enabled namespaces are injected
// by the tag's revision only. The objects are kept in the "tags"
// inventory, so a tag dropped from the plan is deleted. In a canary this
// runs after the gate: it is the move of the workloads' injection.
type IstioTags struct {
	cluster string
	cp      istiorender.ControlPlane
	tags    []string
	// controlPlane is, for a remote cluster, its istio/controlplane step,
	// whose recorded address (its primary's east-west gateway) the tags'
	// render is given: the tags inject through the primary's istiod of
	// the revision. "" for a primary.
	controlPlane string
	rt           *Runtime
}

// NewIstioTags returns the istio/tags step of spec.Cluster in spec.Mesh;
// for a remote, spec.Reads is its istio/controlplane step.
func NewIstioTags(p *plans.Plan, spec plans.StepSpec, rt *Runtime) *IstioTags {
	mesh := *p.Mesh(spec.Mesh)
	return &IstioTags{
		cluster:      spec.Cluster,
		cp:           istiorender.ControlPlane{Cluster: istioCluster(p, mesh, spec.Cluster), ExternalIstiod: p.ExposesIstiod(mesh.Name, spec.Cluster)},
		tags:         mesh.RevisionTags(),
		controlPlane: spec.Reads,
		rt:           rt,
	}
}

// tagsSet is the inventory of a cluster's revision tags.
const tagsSet = "tags"

func (s *IstioTags) inventory(env *engine.Env, op map[string]any) *kube.Inventory {
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, s.cluster, tagsSet), Key: inputsKey("istio/tags", op)}
}

// operator is the IstioOperator the tags' objects are rendered from.
func (s *IstioTags) operator(env *engine.Env) (map[string]any, error) {
	cp := s.cp
	if s.controlPlane != "" {
		addr, ok := env.Output(s.controlPlane, ControlPlaneOutputRemotePilotAddress)
		if !ok || addr == "" {
			return nil, errAwaitsOutput{fmt.Sprintf("the address remote %s's control plane points at is not recorded yet: its step %s records it", s.cluster, s.controlPlane)}
		}
		cp.RemotePilotAddress = addr
	}
	return cp.TagsOperator(s.tags), nil
}

// render renders the tags' objects, with the fields istiod took over
// left out (handOverToIstiod).
func (s *IstioTags) render(ctx context.Context, c *kube.Client, op map[string]any) ([]*unstructured.Unstructured, error) {
	m, err := s.rt.render(ctx, op)
	if err != nil {
		return nil, err
	}
	return handOverToIstiod(ctx, c, istiorender.TagObjects(m))
}

// defaultTag reports whether the default tag is among the step's.
func (s *IstioTags) defaultTag() bool {
	for _, t := range s.tags {
		if t == istiorender.DefaultRevisionTag {
			return true
		}
	}
	return false
}

// Check compares the live tag objects with a fresh render and, for the
// default tag, checks that no non-revisioned injector still injects.
func (s *IstioTags) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	op, c, err := wantedOn(ctx, env, s.cluster, func() (map[string]any, error) { return s.operator(env) })
	if d, ok := awaitsOutput(err); ok {
		return d, nil
	}
	if err != nil {
		return engine.Drift{}, err
	}
	d, err := checkInstall(ctx, c, s.inventory(env, op), func() ([]*unstructured.Unstructured, error) { return s.render(ctx, c, op) })
	if err != nil || !d.InSync {
		return d, err
	}
	if s.defaultTag() {
		active, err := activeDefaultInjector(ctx, c)
		if err != nil {
			return engine.Drift{}, err
		}
		if active != "" {
			return engine.Drifted("MutatingWebhookConfiguration " + active + " (the non-revisioned control plane's) still injects istio-injection=enabled namespaces"), nil
		}
	}
	return engine.InSync(), nil
}

// Apply applies the tags' objects (pruning tags the plan dropped) and,
// for the default tag, deactivates the non-revisioned injector.
func (s *IstioTags) Apply(ctx context.Context, env *engine.Env) error {
	op, c, err := wantedOn(ctx, env, s.cluster, func() (map[string]any, error) { return s.operator(env) })
	if err != nil {
		return err
	}
	objs, err := s.render(ctx, c, op)
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{Inventory: s.inventory(env, op), Logf: env.Logf})
	if err != nil {
		return err
	}
	env.Logf("tags %s -> revision %s: %s", strings.Join(s.tags, ", "), s.cp.Revision, res)
	if s.defaultTag() {
		if err := deactivateDefaultInjector(ctx, env, c); err != nil {
			return fmt.Errorf("deactivate the non-revisioned injector in %s: %w", s.cluster, err)
		}
	}
	env.SetOutput("tags", strings.Join(s.tags, ","))
	env.SetOutput("revision", s.cp.Revision)
	return nil
}

// The non-revisioned control plane's injection webhook configurations
// (istio.io/rev=default, not a tag's), and the selector istioctl
// deactivates them with: istioctl/pkg/tag's GetWebhooksWithRevision and
// DeactivateIstioInjectionWebhook, and istioctl/pkg/util.NeverMatch. Not
// imported: that package brings istioctl's CLI (viper, kubectl's
// describe) into mcplan for twenty lines.
const (
	defaultInjectorSelector = "istio.io/rev=default,!" + istiorender.TagLabel
	deactivatedLabel        = "istio.io/deactivated"
	deactivatedValue        = "never-match"
)

func neverMatch() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: map[string]string{deactivatedLabel: deactivatedValue}}
}

// deactivateDefaultInjector makes every webhook of the non-revisioned
// injector match nothing (kept, as istioctl keeps it, so the old
// revision could be made the default again).
func deactivateDefaultInjector(ctx context.Context, env *engine.Env, c *kube.Client) error {
	admit := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations()
	list, err := admit.List(ctx, metav1.ListOptions{LabelSelector: defaultInjectorSelector})
	if err != nil {
		return err
	}
	for _, item := range list.Items {
		// istiod writes the webhooks' caBundle: an Update may conflict.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			wh, err := admit.Get(ctx, item.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			for i := range wh.Webhooks {
				wh.Webhooks[i].NamespaceSelector = neverMatch()
				wh.Webhooks[i].ObjectSelector = neverMatch()
			}
			_, err = admit.Update(ctx, wh, metav1.UpdateOptions{FieldManager: kube.FieldManager})
			return err
		})
		if err != nil {
			return err
		}
		env.Logf("deactivated MutatingWebhookConfiguration %s (the non-revisioned injector), as istioctl tag set default does", item.Name)
	}
	return nil
}

// activeDefaultInjector is the name of the non-revisioned control plane's
// injection webhook configuration when one of its webhooks still
// matches namespaces.
func activeDefaultInjector(ctx context.Context, c *kube.Client) (string, error) {
	list, err := c.Typed.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{LabelSelector: defaultInjectorSelector})
	if err != nil {
		return "", err
	}
	for _, wh := range list.Items {
		for _, w := range wh.Webhooks {
			if w.NamespaceSelector == nil || w.NamespaceSelector.MatchLabels[deactivatedLabel] != deactivatedValue {
				return wh.Name, nil
			}
		}
	}
	return "", nil
}
