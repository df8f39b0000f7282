package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// Markers of sidecar injection and of a rollout restart.
const (
	// sidecarStatusAnnotation is what Istio's injector writes on a pod it
	// injected; its JSON names the revision.
	sidecarStatusAnnotation = "sidecar.istio.io/status"
	// restartedAtAnnotation is what `kubectl rollout restart` sets on a
	// Deployment's pod template.
	restartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"
	// restartFieldManager writes the restart annotation: not mcplan's
	// own manager, so that a restarted Deployment is never taken for one
	// mcplan made.
	restartFieldManager = "mcplan-rollout-restart"
)

// IstioRestart is the workload move of a canary in one cluster, with
// istio.upgrade.restartWorkloads: once the cluster's tags point at the
// new revision, the Deployments of the namespaces those tags inject
// whose pods carry a sidecar of another revision are restarted as
// `kubectl rollout restart` does, one after another, each waited for. It
// decides from the pods: a Deployment whose pods all run the new
// revision's sidecar is left alone, so a resumed restart goes on where
// it stopped.
type IstioRestart struct {
	cluster  string
	revision string
	tags     []string
	// Timeout bounds the wait for each Deployment.
	Timeout time.Duration
}

// NewIstioRestart returns the istio/restart step of spec.Cluster.
func NewIstioRestart(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioRestart {
	mesh := *p.Mesh(spec.Mesh)
	return &IstioRestart{cluster: spec.Cluster, revision: mesh.Istio.Revision, tags: mesh.RevisionTags(), Timeout: istioReadyTimeout}
}

// staleDeployment is a Deployment with pods of another revision.
type staleDeployment struct {
	namespace, name string
	// revisions are the other revisions its pods run.
	revisions []string
}

func (d staleDeployment) String() string {
	return fmt.Sprintf("%s/%s (%s)", d.namespace, d.name, strings.Join(d.revisions, ", "))
}

// Check reports the Deployments still running another revision's sidecar.
func (s *IstioRestart) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return engine.Drift{}, err
	}
	stale, err := s.stale(ctx, c)
	if err != nil || len(stale) == 0 {
		return engine.InSync(), err
	}
	return engine.Drifted(fmt.Sprintf("%d Deployments run sidecars of another revision than %s: %s", len(stale), s.revision, joinStale(stale))), nil
}

// Apply restarts the stale Deployments and waits for each.
func (s *IstioRestart) Apply(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return err
	}
	stale, err := s.stale(ctx, c)
	if err != nil {
		return err
	}
	for _, d := range stale {
		start := time.Now()
		if err := restartDeployment(ctx, c, d.namespace, d.name, start); err != nil {
			return err
		}
		ref := kube.Ref{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: d.namespace, Name: d.name}
		if err := env.Wait(ref.String()+" rolled out", func() error {
			return c.WaitCurrent(ctx, []kube.Ref{ref}, s.Timeout, env.Logf)
		}); err != nil {
			return err
		}
		env.Logf("restarted Deployment %s/%s, which ran %s (rolled out in %s)", d.namespace, d.name, strings.Join(d.revisions, ", "), time.Since(start).Round(time.Millisecond))
	}
	env.SetOutput("restarted", fmt.Sprint(len(stale)))
	return nil
}

// stale lists the Deployments of the tags' namespaces whose pods were
// injected by another revision.
func (s *IstioRestart) stale(ctx context.Context, c *kube.Client) ([]staleDeployment, error) {
	namespaces, err := injectedNamespaces(ctx, c, s.tags)
	if err != nil {
		return nil, err
	}
	var out []staleDeployment
	for _, ns := range namespaces {
		deps, err := c.Typed.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("Deployments of %s in %s: %w", ns, s.cluster, err)
		}
		for _, d := range deps.Items {
			revs, err := s.otherRevisions(ctx, c, &d)
			if err != nil {
				return nil, err
			}
			if len(revs) > 0 {
				out = append(out, staleDeployment{namespace: ns, name: d.Name, revisions: revs})
			}
		}
	}
	return out, nil
}

// otherRevisions are the revisions other than s.revision that injected
// a pod of d.
func (s *IstioRestart) otherRevisions(ctx context.Context, c *kube.Client, d *appsv1.Deployment) ([]string, error) {
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil {
		return nil, fmt.Errorf("Deployment %s/%s: selector: %w", d.Namespace, d.Name, err)
	}
	pods, err := c.Typed.CoreV1().Pods(d.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, fmt.Errorf("pods of Deployment %s/%s: %w", d.Namespace, d.Name, err)
	}
	var revs []string
	for _, p := range pods.Items {
		if rev, ok := injectedBy(&p); ok && rev != s.revision && !slices.Contains(revs, rev) {
			revs = append(revs, rev)
		}
	}
	slices.Sort(revs)
	return revs, nil
}

// injectedBy is the revision whose injector put a pod's sidecar in
// ("default" for the non-revisioned one); ok is false for a pod without
// a sidecar or one being deleted.
func injectedBy(p *corev1.Pod) (string, bool) {
	raw, ok := p.Annotations[sidecarStatusAnnotation]
	if !ok || p.DeletionTimestamp != nil {
		return "", false
	}
	var status struct {
		Revision string `json:"revision"`
	}
	if err := json.Unmarshal([]byte(raw), &status); err != nil || status.Revision == "" {
		return plans.RevisionName(""), true
	}
	return status.Revision, true
}

// injectedNamespaces are the namespaces the tags inject, as Istio's tag
// webhooks select them: istio.io/rev=<tag>, and for the default tag also
// istio-injection=enabled. The Istio namespace is not among them.
func injectedNamespaces(ctx context.Context, c *kube.Client, tags []string) ([]string, error) {
	var selectors []string
	for _, t := range tags {
		selectors = append(selectors, "istio.io/rev="+t)
		if t == istiorender.DefaultRevisionTag {
			selectors = append(selectors, "istio-injection=enabled")
		}
	}
	var out []string
	for _, sel := range selectors {
		list, err := c.Typed.CoreV1().Namespaces().List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return nil, fmt.Errorf("namespaces labelled %s in %s: %w", sel, c.Name, err)
		}
		for _, ns := range list.Items {
			if ns.Name != istiorender.Namespace && ns.DeletionTimestamp == nil && !slices.Contains(out, ns.Name) {
				out = append(out, ns.Name)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// restartDeployment sets the pod template's restartedAt annotation, as
// `kubectl rollout restart` does.
func restartDeployment(ctx context.Context, c *kube.Client, ns, name string, at time.Time) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{restartedAtAnnotation: at.Format(time.RFC3339)},
	}}}})
	if err != nil {
		return err
	}
	_, err = c.Typed.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: restartFieldManager})
	if err != nil {
		return fmt.Errorf("restart Deployment %s/%s in %s: %w", ns, name, c.Name, err)
	}
	return nil
}

func joinStale(ds []staleDeployment) string {
	s := make([]string, len(ds))
	for i, d := range ds {
		s[i] = d.String()
	}
	return strings.Join(s, "; ")
}
