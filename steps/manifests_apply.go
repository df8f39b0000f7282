package steps

import (
	"context"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// manifestsSet is the inventory of a cluster's user manifests.
const manifestsSet = "manifests"

// manifestsDefaultNamespace is the namespace a namespaced object that
// names none goes to, as with kubectl apply.
const manifestsDefaultNamespace = "default"

// manifestsReadyTimeout bounds Apply's wait for the objects to be
// Current (kstatus), within the step's own timeout (10m by default).
const manifestsReadyTimeout = 5 * time.Minute

// ManifestsApply applies the user's own manifests to a cluster (its
// mesh's and its own, plans.Plan.ClusterManifests) once its mesh is up,
// as Istio's objects are applied: server-side, CRDs first, with an
// inventory, so that an object whose manifest is gone is pruned (not a
// Namespace or a CRD), Check shows each changed field, and removal
// deletes only what mcplan applied. The files are read on every Check
// and Apply: a changed file is drift, not a changed input.
type ManifestsApply struct {
	cluster string
	// dir is the plan's directory, which the sources' paths are
	// relative to.
	dir     string
	sources []plans.ManifestSource
	// ReadyTimeout bounds the wait for the applied objects to be Current.
	ReadyTimeout time.Duration
}

// NewManifestsApply returns the manifests/apply step of spec.Cluster.
func NewManifestsApply(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *ManifestsApply {
	return &ManifestsApply{cluster: spec.Cluster, dir: p.Dir(), sources: p.ClusterManifests(spec.Cluster), ReadyTimeout: manifestsReadyTimeout}
}

// objects are the manifests' objects as c's cluster gets them: read from
// the files, namespaced ones that name no namespace in "default".
func (s *ManifestsApply) objects(c *kube.Client) ([]*unstructured.Unstructured, error) {
	objs, err := readManifests(s.dir, s.sources)
	if err != nil {
		return nil, err
	}
	if err := c.DefaultNamespace(objs, manifestsDefaultNamespace); err != nil {
		return nil, err
	}
	return objs, nil
}

// inventory is the cluster's manifests inventory; its key is a digest of
// the objects read, so that a changed file is never taken as seen.
func (s *ManifestsApply) inventory(env *engine.Env, objs []*unstructured.Unstructured) *kube.Inventory {
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, s.cluster, manifestsSet), Key: inputsKey(plans.KindManifestsApply, objs)}
}

// Check finds the objects in sync when they are as the last check or
// apply of the same files saw them (one read of each); otherwise it
// compares them with the files (server-side dry run) and reports each
// changed field, each missing object and each one Apply would prune.
// Objects as the files say must also be Current (kstatus).
func (s *ManifestsApply) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return engine.Drift{}, err
	}
	objs, err := s.objects(c)
	if err != nil {
		return engine.Drift{}, err
	}
	inv := s.inventory(env, objs)
	unchanged, live, err := c.Unchanged(ctx, inv)
	if err != nil {
		return engine.Drift{}, err
	}
	if unchanged {
		return notCurrentDrift(kube.NotCurrentAmong(live)), nil
	}
	diffs, err := c.Diff(ctx, objs, inv)
	if err != nil {
		return engine.Drift{}, err
	}
	if len(diffs) > 0 {
		return diffDrift(diffs), nil
	}
	return notCurrentDrift(c.NotCurrent(ctx, kube.Refs(objs))), nil
}

// Apply applies the objects (CRDs first, waited for until Established)
// and prunes those whose manifests are gone.
func (s *ManifestsApply) Apply(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, s.cluster)
	if err != nil {
		return err
	}
	objs, err := s.objects(c)
	if err != nil {
		return err
	}
	// An object that never becomes Current (a StatefulSet whose pods
	// never run) fails the step with kstatus's reason.
	res, err := c.Apply(ctx, objs, kube.ApplyOptions{Inventory: s.inventory(env, objs), CRDTimeout: istioCRDTimeout,
		WaitCurrent: readyTimeoutWithin(ctx, s.ReadyTimeout), Logf: env.Logf, Wait: env.Wait})
	if err != nil {
		return err
	}
	env.Logf("manifests: %s", res)
	return nil
}

// notCurrentDrift is the drift of objects applied as the files say but
// not all Current (kstatus), pending naming those: Apply waits for them
// again, and fails with why.
func notCurrentDrift(pending []string) engine.Drift {
	if len(pending) == 0 {
		return engine.InSync()
	}
	return engine.Drifted("not Current: " + strings.Join(pending, "; "))
}

// readyMargin is what a readiness wait leaves of its step's time, so
// that the wait's own error (which objects are not Current, and why)
// is the step's, not the step's timeout.
const readyMargin = 5 * time.Second

// readyTimeoutWithin is timeout, cut to end readyMargin before ctx's
// deadline (the step's timeout) when that comes first.
func readyTimeoutWithin(ctx context.Context, timeout time.Duration) time.Duration {
	if deadline, ok := ctx.Deadline(); ok {
		if left := time.Until(deadline) - readyMargin; left > 0 && left < timeout {
			return left
		}
	}
	return timeout
}
