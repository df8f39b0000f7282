package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/xds"
)

// A reader's tokens. Each reader (the target's istiod) reads the source
// through a long-lived token Secret of its own in the source,
// istiorender.ReaderTokenSecretFor(target); a rotation
// (meshes[].remoteSecrets.rotateAfter) adds one named after it with the
// time it was made, switches the remote secret to it, waits until the
// reading istiod uses it, then deletes the older ones, which revokes
// them. Which of a reader's tokens is its current one is read from the
// remote secret in the target.

// legacyTokenLastUsedLabel is what kube-apiserver writes on a token
// Secret the first time (each day) its token authenticates a request:
// once it is on a new token, someone (the reading istiod: no one else has
// the token) reads with it.
const legacyTokenLastUsedLabel = "kubernetes.io/legacy-token-last-used"

// tokenSwitchTimeout bounds the wait for the reading istiod to take a
// new token.
const tokenSwitchTimeout = 2 * time.Minute

// readerTokenSecrets are the token Secrets mcplan made in a source for
// target's reader, oldest first.
func readerTokenSecrets(ctx context.Context, a *kube.Client, target string) ([]corev1.Secret, error) {
	list, err := a.Typed.CoreV1().Secrets(istiorender.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: "type=" + string(corev1.SecretTypeServiceAccountToken),
	})
	if err != nil {
		return nil, fmt.Errorf("token Secrets in %s: %w", a.Name, err)
	}
	var out []corev1.Secret
	for _, s := range list.Items {
		if s.Annotations[istiorender.ReaderTokenTargetAnnotation] == target &&
			s.Annotations[corev1.ServiceAccountNameKey] == istiorender.ReaderServiceAccount && kube.ManagedByMcplan(&s) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(x, y corev1.Secret) int {
		if c := x.CreationTimestamp.Compare(y.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out, nil
}

// readerTokens is what the step knows of its reader's tokens in A: all
// of them, and the one in use (the one the remote secret in B carries;
// else the newest filled one; nil when none).
type readerTokens struct {
	all     []corev1.Secret
	current *corev1.Secret
}

func (s *IstioRemoteSecret) readerTokens(ctx context.Context, a *kube.Client, inB string) (readerTokens, error) {
	all, err := readerTokenSecrets(ctx, a, s.target)
	if err != nil {
		return readerTokens{}, err
	}
	t := readerTokens{all: all}
	for i := len(all) - 1; i >= 0; i-- {
		tok := string(all[i].Data[corev1.ServiceAccountTokenKey])
		if tok == "" {
			continue
		}
		if tok == inB {
			t.current = &all[i]
			return t, nil
		}
		if t.current == nil {
			t.current = &all[i]
		}
	}
	return t, nil
}

// token is the current token ("" for none).
func (t readerTokens) token() []byte {
	if t.current == nil {
		return nil
	}
	return t.current.Data[corev1.ServiceAccountTokenKey]
}

// older are the reader's tokens other than the current one.
func (t readerTokens) older() []string {
	var names []string
	for _, sec := range t.all {
		if t.current == nil || sec.Name != t.current.Name {
			names = append(names, sec.Name)
		}
	}
	return names
}

// rotationDue says why the current token is to be replaced, "" when it
// is not (no rotation set, or young enough).
func (s *IstioRemoteSecret) rotationDue(t readerTokens, now time.Time) string {
	if !s.rotate || t.current == nil {
		return ""
	}
	age := now.Sub(t.current.CreationTimestamp.Time)
	if age < s.rotateAfter {
		return ""
	}
	return fmt.Sprintf("reader token %s of %s is %s old, remoteSecrets.rotateAfter is %s",
		t.current.Name, s.source.Name, ageText(age), ageText(s.rotateAfter))
}

// rotatedTokenName is the name of a reader's token made at now.
func (s *IstioRemoteSecret) rotatedTokenName(now time.Time) string {
	return istiorender.ReaderTokenSecretFor(s.target) + "-" + strings.ToLower(now.UTC().Format("20060102t150405"))
}

// waitReaderUses waits until the target's istiod reads A with the token
// of Secret name: kube-apiserver has marked the Secret used, and the
// istiod's remote-clusters status shows A synced.
func (s *IstioRemoteSecret) waitReaderUses(ctx context.Context, env *engine.Env, a, b *kube.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, s.TokenSwitchTimeout)
	defer cancel()
	start := time.Now()
	dial := xds.PortForward(map[string]*kube.Client{s.target: b}, s.revision, env.Logf)
	last := "not asked yet"
	for {
		sec, err := a.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, name, metav1.GetOptions{})
		switch {
		case err != nil:
			last = err.Error()
		case sec.Labels[legacyTokenLastUsedLabel] == "":
			last = fmt.Sprintf("%s's token not used yet", name)
		default:
			status, err := s.readerStatus(ctx, dial)
			if err == nil && status == xds.SyncStatusSynced {
				env.Logf("%s's istiod reads %s with the token of %s (synced, after %s)", s.target, s.source.Name, name, time.Since(start).Round(100*time.Millisecond))
				return nil
			}
			last = fmt.Sprintf("%s's istiod: %s is %q (%v)", s.target, s.source.Name, status, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s's istiod did not take the new token of %s within %s (%s); the older tokens stay valid until it does: apply again",
				s.target, s.source.Name, s.TokenSwitchTimeout, last)
		case <-time.After(time.Second):
		}
	}
}

// readerStatus is the sync status of A in the target's istiod.
func (s *IstioRemoteSecret) readerStatus(ctx context.Context, dial xds.DialIstiod) (string, error) {
	ist, err := dial(ctx, s.target)
	if err != nil {
		return "", err
	}
	defer ist.Close()
	clusters, err := xds.RemoteClusters(ctx, ist)
	if err != nil {
		return "", err
	}
	for _, c := range clusters {
		if string(c.ID) == s.source.Name {
			return c.SyncStatus, nil
		}
	}
	return "not listed", nil
}

// deleteTokens deletes token Secrets of the reader in A, which revokes them.
func deleteTokens(ctx context.Context, env *engine.Env, a *kube.Client, names []string, why string) error {
	for _, name := range names {
		ref := kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: name}
		deleted, err := a.Delete(ctx, ref)
		if err != nil {
			return err
		}
		if deleted {
			env.Logf("deleted %s in %s: %s", ref, a.Name, why)
		}
	}
	return nil
}

// ageText is a token's age for messages: days from a day on.
func ageText(d time.Duration) string {
	if d >= 24*time.Hour {
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	}
	return d.Round(time.Second).String()
}
