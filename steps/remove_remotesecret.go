package steps

import (
	"context"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
)

// remoteSecretRemoval undoes a pair: it deletes istio-remote-secret-<source>
// from the target cluster, so its istiod stops watching the source, and
// the target's reader token Secret in the source, which revokes the token
// (a copy of the remote secret kept elsewhere no longer authenticates).
// A cluster that left the plan is not contacted.
type remoteSecretRemoval struct {
	source, target            string
	deleteSecret, revokeToken bool
}

// Describe says what Remove deletes.
func (r remoteSecretRemoval) Describe(*engine.Env) string {
	var what []string
	if r.deleteSecret {
		what = append(what, "Secret "+istiorender.Namespace+"/"+istiorender.RemoteSecretName(r.source)+" in "+r.target)
	}
	if r.revokeToken {
		what = append(what, r.target+"'s reader token in "+r.source)
	}
	return "deletes " + strings.Join(what, " and ")
}

func (r remoteSecretRemoval) Remove(ctx context.Context, env *engine.Env) error {
	if r.deleteSecret {
		b, err := reachableClient(ctx, env, r.target)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", r.target, err)
		}
		ref := kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.RemoteSecretName(r.source)}
		deleted, err := b.Delete(ctx, ref)
		if err != nil {
			return fmt.Errorf("cluster %s: %w", r.target, err)
		}
		if deleted {
			env.Logf("deleted %s in %s: its istiod no longer reads %s", ref, r.target, r.source)
		}
	}
	if r.revokeToken {
		if err := r.revoke(ctx, env); err != nil {
			return fmt.Errorf("cluster %s: %w", r.source, err)
		}
	}
	return nil
}

// revoke deletes the target's reader token Secrets in the source (one,
// or more after an interrupted rotation), those mcplan made.
func (r remoteSecretRemoval) revoke(ctx context.Context, env *engine.Env) error {
	a, err := reachableClient(ctx, env, r.source)
	if err != nil {
		return err
	}
	name := istiorender.ReaderTokenSecretFor(r.target)
	sec, err := a.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return err
	case !kube.ManagedByMcplan(sec):
		env.Logf("left Secret %s/%s in %s: mcplan did not make it", istiorender.Namespace, name, r.source)
	}
	tokens, err := readerTokenSecrets(ctx, a, r.target)
	if err != nil {
		return err
	}
	names := make([]string, len(tokens))
	for i, t := range tokens {
		names[i] = t.Name
	}
	return deleteTokens(ctx, env, a, names, "the token "+r.target+" read it with is revoked")
}
