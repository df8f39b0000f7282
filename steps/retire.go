package steps

import (
	"context"
	"fmt"
	"strings"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// Retirement says how to undo steps that left the plan (engine.Options.
// Retire). Only remote secrets are removed: a cluster that left a mesh (or
// a mesh that went) must not stay readable by the clusters that remain.
// Everything else is only forgotten.
func Retirement(p *plans.Plan) func(id string, rec engine.StepRecord) engine.Remover {
	// The source->target pairs the plan still has: a secret that moved to
	// another mesh (another step ID) is the same Secret and must stay.
	kept := map[string]bool{}
	for _, spec := range plans.Steps(p) {
		if spec.Kind == plans.KindIstioRemoteSecret {
			kept[spec.Source+"->"+spec.Target] = true
		}
	}
	return func(id string, rec engine.StepRecord) engine.Remover {
		if rec.Kind != plans.KindIstioRemoteSecret {
			return nil
		}
		// mesh/<mesh>/remotesecret/<source>-><target>
		pair := id[strings.LastIndex(id, "/")+1:]
		source, target, ok := strings.Cut(pair, "->")
		if !ok || p.Cluster(target) == nil || kept[pair] {
			return nil // the target left the plan, or the pair is still wanted
		}
		return remoteSecretRemoval{source: source, target: target}
	}
}

// remoteSecretRemoval deletes istio-remote-secret-<source> from the
// target cluster, so its istiod stops watching the source.
type remoteSecretRemoval struct{ source, target string }

func (r remoteSecretRemoval) Remove(ctx context.Context, env *engine.Env) error {
	b, err := reachableClient(ctx, env, r.target)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", r.target, err)
	}
	ref := kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: RemoteSecretName(r.source)}
	deleted, err := b.Delete(ctx, ref)
	if err != nil {
		return fmt.Errorf("cluster %s: %w", r.target, err)
	}
	if deleted {
		env.Logf("deleted %s in %s: its istiod no longer reads %s", ref, r.target, r.source)
	}
	return nil
}
