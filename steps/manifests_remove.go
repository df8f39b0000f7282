package steps

import (
	"context"

	"mcplan.io/mcplan/engine"
)

// manifestsRemoval deletes what a cluster's manifests/apply applied, by
// its inventory (what mcplan made; a CRD only without custom resources),
// then each Namespace of it that holds nothing anyone else made.
type manifestsRemoval struct {
	cluster string
}

func (r manifestsRemoval) objects() inventoryRemoval {
	return inventoryRemoval{cluster: r.cluster, set: manifestsSet}
}

// Describe says how many objects the inventory lists.
func (r manifestsRemoval) Describe(env *engine.Env) string {
	return r.objects().Describe(env) + ", then its namespaces that hold nothing else"
}

func (r manifestsRemoval) Remove(ctx context.Context, env *engine.Env) error {
	refs, err := r.objects().inventory(env).Load()
	if err != nil {
		return err
	}
	if err := r.objects().Remove(ctx, env); err != nil {
		return err
	}
	c, err := reachableClient(ctx, env, r.cluster)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		if ref.Kind != "Namespace" || ref.Group != "" {
			continue
		}
		// Its inventory lists it, so mcplan applied it, though its field
		// manager may own no field of it (a Namespace with a name only).
		if err := deleteNamespaceUnlessHeld(ctx, env, c, ref.Name); err != nil {
			return err
		}
	}
	return nil
}
