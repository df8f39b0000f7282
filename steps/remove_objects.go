package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
	"mcplan.io/mcplan/steps/verify"
)

// inventoryRemoval deletes what an Istio step applied to a cluster, by its
// inventory (see kube.RemoveInventory for what stays).
type inventoryRemoval struct {
	cluster, set string
}

func (r inventoryRemoval) inventory(env *engine.Env) *kube.Inventory {
	return &kube.Inventory{Path: statedir.Inventory(env.Dir, r.cluster, r.set)}
}

// Describe says how many objects the inventory lists.
func (r inventoryRemoval) Describe(env *engine.Env) string {
	refs, err := r.inventory(env).Load()
	if err != nil {
		return "deletes the objects of its inventory in " + r.cluster
	}
	objects := fmt.Sprintf("the %d objects", len(refs))
	if len(refs) == 1 {
		objects = "the object"
	}
	return fmt.Sprintf("deletes %s of its inventory in %s (those mcplan made; a CRD only without custom resources)", objects, r.cluster)
}

func (r inventoryRemoval) Remove(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, r.cluster)
	if err != nil {
		return err
	}
	res, err := c.RemoveInventory(ctx, r.inventory(env))
	if err != nil {
		return err
	}
	env.Logf("%s in %s: %s", r.set, r.cluster, res)
	return nil
}

// cacertsRemoval deletes Secret istio-system/cacerts when mcplan wrote it.
type cacertsRemoval struct {
	cluster string
}

func (r cacertsRemoval) Describe(*engine.Env) string {
	return "deletes Secret " + istiorender.Namespace + "/" + istiorender.CACertsSecret + " in " + r.cluster
}

func (r cacertsRemoval) Remove(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, r.cluster)
	if err != nil {
		return err
	}
	return removeIfOurs(ctx, env, c, kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.CACertsSecret})
}

// removeIfOurs deletes one object when mcplan's field manager wrote it,
// and says so either way.
func removeIfOurs(ctx context.Context, env *engine.Env, c *kube.Client, ref kube.Ref) error {
	o, err := c.Get(ctx, ref)
	if err != nil || o == nil {
		return err
	}
	if !kube.ManagedByMcplan(o) {
		env.Logf("left %s in %s: mcplan did not make it", ref, c.Name)
		return nil
	}
	if _, err := c.Delete(ctx, ref); err != nil {
		return err
	}
	env.Logf("deleted %s in %s", ref, c.Name)
	return nil
}

// removeNamespace deletes a namespace mcplan made when nothing in it is
// anyone else's; otherwise it stays and the log says what holds it.
func removeNamespace(ctx context.Context, env *engine.Env, c *kube.Client, ns string) error {
	ref := kube.Ref{Version: "v1", Kind: "Namespace", Name: ns}
	o, err := c.Get(ctx, ref)
	if err != nil || o == nil {
		return err
	}
	if !kube.ManagedByMcplan(o) {
		env.Logf("left namespace %s in %s: mcplan did not make it", ns, c.Name)
		return nil
	}
	return deleteNamespaceUnlessHeld(ctx, env, c, ns)
}

// deleteNamespaceUnlessHeld deletes a namespace when nothing in it is
// anyone else's, and waits until it is gone; otherwise it stays and the
// log says what holds it.
func deleteNamespaceUnlessHeld(ctx context.Context, env *engine.Env, c *kube.Client, ns string) error {
	ref := kube.Ref{Version: "v1", Kind: "Namespace", Name: ns}
	foreign, err := c.ForeignObjects(ctx, ns)
	if err != nil {
		return err
	}
	if len(foreign) > 0 {
		shown := foreign
		if len(shown) > 5 {
			shown = append(shown[:5:5], fmt.Sprintf("and %d more", len(foreign)-5))
		}
		env.Logf("left namespace %s in %s: it holds what mcplan did not make (%s)", ns, c.Name, strings.Join(shown, ", "))
		return nil
	}
	if _, err := c.Delete(ctx, ref); err != nil {
		return err
	}
	// Gone, not going: the next apply may make it again at once.
	if err := env.Wait("namespace "+ns+" gone in "+c.Name, func() error {
		return c.WaitNamespaceGone(ctx, ns, namespaceGoneTimeout)
	}); err != nil {
		return err
	}
	env.Logf("deleted namespace %s in %s", ns, c.Name)
	return nil
}

// namespaceGoneTimeout bounds the wait for a deleted namespace to go.
const namespaceGoneTimeout = 3 * time.Minute

// namespaceRemoval removes istio-system from a cluster, when it holds
// nothing but what mcplan, Kubernetes and istiod made.
type namespaceRemoval struct {
	cluster string
}

func (r namespaceRemoval) Describe(*engine.Env) string {
	return "deletes namespace " + istiorender.Namespace + " in " + r.cluster + " unless it holds what mcplan did not make"
}

func (r namespaceRemoval) Remove(ctx context.Context, env *engine.Env) error {
	c, err := reachableClient(ctx, env, r.cluster)
	if err != nil {
		return err
	}
	return removeNamespace(ctx, env, c, istiorender.Namespace)
}

// sampleRemoval removes the helloworld sample verify deployed in each
// cluster of the mesh (recorded as the step's "clusters" output), then the
// sample namespace where nothing else is in it.
type sampleRemoval struct {
	mesh string
}

func (r sampleRemoval) clusters(env *engine.Env) []string {
	v, _ := env.Previous(VerifyOutputClusters)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (r sampleRemoval) Describe(env *engine.Env) string {
	return "deletes the " + verify.SampleService + " sample in " + strings.Join(r.clusters(env), ", ")
}

func (r sampleRemoval) Remove(ctx context.Context, env *engine.Env) error {
	for i, cluster := range r.clusters(env) {
		c, err := reachableClient(ctx, env, cluster)
		if err != nil {
			return err
		}
		for _, ref := range verify.SampleRefs(i) {
			if ref.Kind == "Namespace" {
				continue
			}
			if err := removeIfOurs(ctx, env, c, ref); err != nil {
				return err
			}
		}
		if err := removeNamespace(ctx, env, c, verify.SampleNamespace); err != nil {
			return err
		}
	}
	return nil
}

// controlPlanesRemoval deletes every Istio control plane mcplan installed
// in a cluster, one inventory per revision (see controlPlaneSetOf): a
// canary's old revision kept with istio.upgrade.keepPrevious goes too.
type controlPlanesRemoval struct {
	cluster string
}

func (r controlPlanesRemoval) sets(env *engine.Env) []string {
	installed, err := installedControlPlanes(env.Dir, r.cluster)
	if err != nil || len(installed) == 0 {
		return []string{controlPlaneSet}
	}
	var sets []string
	for _, set := range installed {
		sets = append(sets, set)
	}
	slices.Sort(sets)
	return sets
}

// Describe says how many objects the inventories list.
func (r controlPlanesRemoval) Describe(env *engine.Env) string {
	sets := r.sets(env)
	if len(sets) == 1 {
		return inventoryRemoval{cluster: r.cluster, set: sets[0]}.Describe(env)
	}
	return fmt.Sprintf("deletes the control planes of %d revisions in %s by their inventories (those mcplan made; a CRD only without custom resources)", len(sets), r.cluster)
}

func (r controlPlanesRemoval) Remove(ctx context.Context, env *engine.Env) error {
	for _, set := range r.sets(env) {
		if err := (inventoryRemoval{cluster: r.cluster, set: set}).Remove(ctx, env); err != nil {
			return err
		}
	}
	return nil
}
