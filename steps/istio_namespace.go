package steps

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
)

// Annotation on a remote cluster's istio-system naming the clusters whose
// istiod controls it (Istio's primary-remote install).
const controlPlaneClustersAnnotation = "topology.istio.io/controlPlaneClusters"

// IstioNamespace is the istio-system namespace of a cluster, labelled with
// the cluster's network: the walkthrough's `kubectl create namespace
// istio-system` and `kubectl label namespace istio-system
// topology.istio.io/network=networkN`. A remote of a primary-remote mesh
// is also annotated with its primary, as Istio's docs do.
type IstioNamespace struct {
	cluster string
	network string
	primary string // remote clusters only
}

// NewIstioNamespace returns the istio/namespace step of spec.Cluster in
// spec.Mesh.
func NewIstioNamespace(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioNamespace {
	mesh, cluster := spec.Mesh, spec.Cluster
	s := &IstioNamespace{cluster: cluster, network: p.ClusterNetwork(cluster)}
	if !p.IsPrimary(mesh, cluster) {
		s.primary = p.PrimaryFor(mesh, cluster)
	}
	return s
}

func (s *IstioNamespace) object() *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind("Namespace")
	o.SetName(istiorender.Namespace)
	o.SetLabels(map[string]string{istiorender.NetworkLabel: s.network})
	if s.primary != "" {
		o.SetAnnotations(map[string]string{controlPlaneClustersAnnotation: s.primary})
	}
	return o
}

// Check reads the namespace and compares its label (and annotation).
func (s *IstioNamespace) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return engine.Drift{}, err
	}
	diffs, err := c.Diff(ctx, []*unstructured.Unstructured{s.object()}, nil)
	if err != nil {
		return engine.Drift{}, err
	}
	if len(diffs) > 0 {
		return diffDrift(diffs), nil
	}
	return engine.InSync(), nil
}

// Apply creates or labels the namespace (server-side apply).
func (s *IstioNamespace) Apply(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, []*unstructured.Unstructured{s.object()}, kubeApplyOptions(env))
	if err != nil {
		return err
	}
	env.SetOutput("namespace", istiorender.Namespace)
	env.SetOutput("network", s.network)
	if res.Changed() {
		env.Logf("namespace %s labelled %s=%s", istiorender.Namespace, istiorender.NetworkLabel, s.network)
	}
	return nil
}
