package steps

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/kube"
	"mcplan.io/mcplan/steps/statedir"
)

// IstioRemoteSecret lets the istiod of one cluster (the target, B) read
// another cluster's API (the source, A): the walkthrough's `istioctl x
// create-remote-secret --context=A --name=A | kubectl apply --context=B`.
// In A: the reader ServiceAccount (the control plane renders it) and a
// long-lived token Secret for it that A's token controller fills. In B:
// Secret istio-remote-secret-A, holding a kubeconfig for A with that token
// and the address other clusters reach A's API at. The Secret is rewritten
// only when the token, address or CA changed.
type IstioRemoteSecret struct {
	mesh   string
	source plans.Cluster
	target string
	// readers are every cluster of the mesh that reads the source (asked of
	// the plan when needed: a mesh of n clusters has n² of these steps).
	readers func() []string
	// rotate and rotateAfter are remoteSecrets.rotateAfter; revision is
	// the mesh's, whose istiod in B is asked whether it took a new token.
	rotate      bool
	rotateAfter time.Duration
	revision    string
	// TokenTimeout bounds the wait for A's token controller;
	// TokenSwitchTimeout the wait for B's istiod to read with a new token.
	TokenTimeout, TokenSwitchTimeout time.Duration
}

// NewIstioRemoteSecret returns the istio/remotesecret step of spec.Mesh
// by which spec.Target reads spec.Source.
func NewIstioRemoteSecret(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioRemoteSecret {
	mesh, source, target := spec.Mesh, spec.Source, spec.Target
	s := &IstioRemoteSecret{mesh: mesh, target: target, TokenTimeout: tokenTimeout, TokenSwitchTimeout: tokenSwitchTimeout}
	if m := p.Mesh(mesh); m != nil {
		s.rotateAfter, s.rotate = m.TokenRotation()
		s.revision = m.Istio.Revision
	}
	if c := p.Cluster(source); c != nil {
		s.source = *c
	} else {
		s.source = plans.Cluster{Name: source}
	}
	s.readers = func() []string { return p.Readers(mesh, source) }
	return s
}

// meshServer is the URL of A's API as other clusters reach it. A loopback
// or unspecified address is refused: in B's istiod it would mean B itself.
func (s *IstioRemoteSecret) meshServer() (string, error) {
	addr := s.source.API.MeshAddress
	if err := plans.CheckMeshAddress(addr); err != nil {
		return "", fmt.Errorf("clusters[%s].api.meshAddress %w. The remote secret tells %s's istiod where %s's API is; "+
			"127.0.0.1 there means %s itself, so istiod would watch the wrong cluster or none (the classic multicluster failure: "+
			"k3s.yaml says server: https://127.0.0.1:6443). Set clusters[%s].api.meshAddress to an address of %s's server that %s reaches",
			s.source.Name, err, s.target, s.source.Name, s.target, s.source.Name, s.source.Name, s.target)
	}
	return apiURL(addr, s.source.API.Port), nil
}

// sourceCA is the CA A's API server certificate is signed by, from A's
// admin kubeconfig.
func (s *IstioRemoteSecret) sourceCA(env *engine.Env) ([]byte, error) {
	kept, err := kube.ReadKeptKubeconfig(statedir.Kubeconfig(env.Dir, s.source.Name))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of %s: %w", s.source.Name, err)
	}
	return kept.CAData, nil
}

// remoteKubeconfig is the kubeconfig B's istiod uses for A. It holds the
// token: never log it.
func remoteKubeconfig(cluster, server string, ca, token []byte) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[cluster] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca}
	cfg.AuthInfos[cluster] = &clientcmdapi.AuthInfo{Token: string(token)}
	cfg.Contexts[cluster] = &clientcmdapi.Context{Cluster: cluster, AuthInfo: cluster}
	cfg.CurrentContext = cluster
	return clientcmd.Write(*cfg)
}

func (s *IstioRemoteSecret) secret(kubeconfig []byte) *unstructured.Unstructured {
	sec := &corev1.Secret{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{
			Name:        istiorender.RemoteSecretName(s.source.Name),
			Namespace:   istiorender.Namespace,
			Labels:      map[string]string{istiorender.MultiClusterLabel: "true"},
			Annotations: map[string]string{istiorender.RemoteClusterAnnotation: s.source.Name},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{s.source.Name: kubeconfig},
	}
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(sec)
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}
}

// tokenInB is the reader token the remote secret in B carries, "" when
// there is none.
func (s *IstioRemoteSecret) tokenInB(live *corev1.Secret) string {
	if live == nil {
		return ""
	}
	creds, err := kube.ParseTokenKubeconfig(live.Data[s.source.Name])
	if err != nil {
		return ""
	}
	return creds.Token
}

// ensureToken makes the reader ServiceAccount (when the control plane
// did not) and the token Secret name in A, and waits for the token.
func (s *IstioRemoteSecret) ensureToken(ctx context.Context, env *engine.Env, a *kube.Client, name string) ([]byte, error) {
	sas := a.Typed.CoreV1().ServiceAccounts(istiorender.Namespace)
	if _, err := sas.Get(ctx, istiorender.ReaderServiceAccount, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		// Created, not applied: the control plane's apply owns its fields.
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: istiorender.ReaderServiceAccount, Namespace: istiorender.Namespace}}
		if _, err := sas.Create(ctx, sa, metav1.CreateOptions{FieldManager: kube.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("ServiceAccount %s in %s: %w", istiorender.ReaderServiceAccount, s.source.Name, err)
		}
		env.Logf("created ServiceAccount %s/%s in %s", istiorender.Namespace, istiorender.ReaderServiceAccount, s.source.Name)
	} else if err != nil {
		return nil, fmt.Errorf("ServiceAccount %s in %s: %w", istiorender.ReaderServiceAccount, s.source.Name, err)
	}
	secrets := a.Typed.CoreV1().Secrets(istiorender.Namespace)
	sec, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		sec = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name:      name,
				Namespace: istiorender.Namespace,
				Annotations: map[string]string{
					corev1.ServiceAccountNameKey:            istiorender.ReaderServiceAccount,
					istiorender.ReaderTokenTargetAnnotation: s.target,
				},
			},
			Type: corev1.SecretTypeServiceAccountToken,
		}
		if _, err := secrets.Create(ctx, sec, metav1.CreateOptions{FieldManager: kube.FieldManager}); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("token Secret %s in %s: %w", name, s.source.Name, err)
		}
		env.Logf("created token Secret %s/%s in %s (for %s)", istiorender.Namespace, name, s.source.Name, s.target)
	case err != nil:
		return nil, fmt.Errorf("token Secret %s in %s: %w", name, s.source.Name, err)
	case sec.Type != corev1.SecretTypeServiceAccountToken || sec.Annotations[corev1.ServiceAccountNameKey] != istiorender.ReaderServiceAccount:
		return nil, fmt.Errorf("Secret %s/%s in %s exists but is not a token of %s (type %s); delete it and apply again",
			istiorender.Namespace, name, s.source.Name, istiorender.ReaderServiceAccount, sec.Type)
	}
	err = env.Wait(fmt.Sprintf("token Secret %s/%s in %s filled (kube-controller-manager's token controller)", istiorender.Namespace, name, s.source.Name), func() error {
		var err error
		sec, err = a.WaitSecretKey(ctx, istiorender.Namespace, name, corev1.ServiceAccountTokenKey, s.TokenTimeout)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("token of %s in %s (filled by the token controller of kube-controller-manager): %w%s",
			istiorender.ReaderServiceAccount, s.source.Name, err, a.Diagnose(ctx, istiorender.Namespace))
	}
	return sec.Data[corev1.ServiceAccountTokenKey], nil
}

// compare says how the live remote secret in B differs from the wanted
// one; "" when it does not.
func (s *IstioRemoteSecret) compare(live *corev1.Secret, server string, ca, token []byte) string {
	if live == nil {
		return "Secret " + istiorender.Namespace + "/" + istiorender.RemoteSecretName(s.source.Name) + " missing in " + s.target
	}
	var why []string
	if live.Labels[istiorender.MultiClusterLabel] != "true" {
		why = append(why, "label "+istiorender.MultiClusterLabel+" missing")
	}
	if live.Annotations[istiorender.RemoteClusterAnnotation] != s.source.Name {
		why = append(why, "annotation "+istiorender.RemoteClusterAnnotation+" differs")
	}
	if len(live.Data) != 1 {
		why = append(why, fmt.Sprintf("%d data keys, want 1", len(live.Data)))
	}
	creds, err := kube.ParseTokenKubeconfig(live.Data[s.source.Name])
	if err != nil {
		return strings.Join(append(why, "no usable kubeconfig under key "+s.source.Name+" ("+err.Error()+")"), "; ")
	}
	if creds.Server != server {
		why = append(why, fmt.Sprintf("server %s, want %s", creds.Server, server))
	}
	if !bytes.Equal(creds.CAData, ca) {
		why = append(why, "CA of "+s.source.Name+" changed")
	}
	if creds.Token != string(token) {
		why = append(why, "reader token of "+s.source.Name+" changed")
	}
	want, err := remoteKubeconfig(s.source.Name, server, ca, token)
	if len(why) == 0 && (err != nil || !bytes.Equal(want, live.Data[s.source.Name])) {
		why = append(why, "kubeconfig differs")
	}
	return strings.Join(why, "; ")
}

func (s *IstioRemoteSecret) liveSecret(ctx context.Context, b *kube.Client) (*corev1.Secret, error) {
	live, err := b.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.RemoteSecretName(s.source.Name), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	return live, err
}

// Check reads A's token and B's remote secret and compares them.
func (s *IstioRemoteSecret) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	server, err := s.meshServer()
	if err != nil {
		return engine.Drift{}, err
	}
	ca, err := s.sourceCA(env)
	if err != nil {
		return engine.Drift{}, err
	}
	a, err := reachableClient(ctx, env, s.source.Name)
	if err != nil {
		return engine.Drift{}, err
	}
	b, err := reachableClient(ctx, env, s.target)
	if err != nil {
		return engine.Drift{}, err
	}
	live, err := s.liveSecret(ctx, b)
	if err != nil {
		return engine.Drift{}, err
	}
	tokens, err := s.readerTokens(ctx, a, s.tokenInB(live))
	if err != nil {
		return engine.Drift{}, err
	}
	token := tokens.token()
	if len(token) == 0 {
		return engine.Drifted("no reader token in " + s.source.Name + " yet"), nil
	}
	if why := s.compare(live, server, ca, token); why != "" {
		return engine.Drifted(why), nil
	}
	if due := s.rotationDue(tokens, time.Now()); due != "" {
		return engine.Drifted(due), nil
	}
	if older := tokens.older(); len(older) > 0 {
		return engine.Drifted(fmt.Sprintf("older reader token Secrets of %s still valid in %s: %s (deleted once %s's istiod reads with the current one)",
			s.target, s.source.Name, strings.Join(older, ", "), s.target)), nil
	}
	shared, err := s.sharedToken(ctx, a)
	if err != nil {
		return engine.Drift{}, err
	}
	if shared != nil {
		return engine.Drifted("the reader token Secret " + istiorender.ReaderTokenSecret + " that every reader shared is still in " + s.source.Name), nil
	}
	return engine.InSync(), nil
}

// sharedToken returns the one reader token Secret earlier versions of
// mcplan made in A for every reader (istioctl's name), or nil: nil too for
// a Secret of that name mcplan did not make (istioctl's own), which is not
// mcplan's to remove.
func (s *IstioRemoteSecret) sharedToken(ctx context.Context, a *kube.Client) (*corev1.Secret, error) {
	sec, err := a.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.ReaderTokenSecret, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, err
	case !kube.ManagedByMcplan(sec):
		return nil, nil
	}
	return sec, nil
}

// retireSharedToken deletes the shared reader token in A (which revokes
// it) once no remote secret of a reader in the plan still carries it. A
// reader that cannot be read keeps it, for a later apply.
func (s *IstioRemoteSecret) retireSharedToken(ctx context.Context, env *engine.Env, a *kube.Client) error {
	sec, err := s.sharedToken(ctx, a)
	if err != nil || sec == nil {
		return err
	}
	shared := string(sec.Data[corev1.ServiceAccountTokenKey])
	for _, r := range s.readers() {
		b, err := reachableClient(ctx, env, r)
		if err != nil {
			env.Logf("keeping %s in %s for now: %s cannot be read (%v)", istiorender.ReaderTokenSecret, s.source.Name, r, err)
			return nil
		}
		live, err := b.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.RemoteSecretName(s.source.Name), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			env.Logf("keeping %s in %s for now: %s cannot be read (%v)", istiorender.ReaderTokenSecret, s.source.Name, r, err)
			return nil
		}
		if creds, err := kube.ParseTokenKubeconfig(live.Data[s.source.Name]); err == nil && creds.Token == shared {
			return nil // that reader's step has not moved it to its own token yet
		}
	}
	deleted, err := a.Delete(ctx, kube.Ref{Version: "v1", Kind: "Secret", Namespace: istiorender.Namespace, Name: istiorender.ReaderTokenSecret})
	if err != nil {
		return err
	}
	if deleted {
		env.Logf("deleted the shared reader token Secret %s/%s in %s: every reader has its own token now", istiorender.Namespace, istiorender.ReaderTokenSecret, s.source.Name)
	}
	return nil
}

// retireOlderTokens deletes (revokes) the reader's tokens in A other
// than the one of Secret current, once B's istiod reads A with it.
func (s *IstioRemoteSecret) retireOlderTokens(ctx context.Context, env *engine.Env, a, b *kube.Client, current string) error {
	all, err := readerTokenSecrets(ctx, a, s.target)
	if err != nil {
		return err
	}
	var older []string
	for _, sec := range all {
		if sec.Name != current {
			older = append(older, sec.Name)
		}
	}
	if len(older) == 0 {
		return nil
	}
	if err := s.waitReaderUses(ctx, env, a, b, current); err != nil {
		return err
	}
	return deleteTokens(ctx, env, a, older, "an older token of "+s.target+"'s reader, revoked after the rotation")
}

// Apply makes the token in A (a new one when remoteSecrets.rotateAfter
// says it is due), writes the remote secret in B when it differs, and
// deletes older tokens once B's istiod reads with the current one.
func (s *IstioRemoteSecret) Apply(ctx context.Context, env *engine.Env) error {
	server, err := s.meshServer()
	if err != nil {
		return err
	}
	ca, err := s.sourceCA(env)
	if err != nil {
		return err
	}
	a, err := reachableClient(ctx, env, s.source.Name)
	if err != nil {
		return err
	}
	b, err := reachableClient(ctx, env, s.target)
	if err != nil {
		return err
	}
	live, err := s.liveSecret(ctx, b)
	if err != nil {
		return err
	}
	tokens, err := s.readerTokens(ctx, a, s.tokenInB(live))
	if err != nil {
		return err
	}
	name := istiorender.ReaderTokenSecretFor(s.target)
	if tokens.current != nil {
		name = tokens.current.Name
	}
	if due := s.rotationDue(tokens, time.Now()); due != "" {
		name = s.rotatedTokenName(time.Now())
		env.Logf("rotating: %s; new token Secret %s", due, name)
	}
	token, err := s.ensureToken(ctx, env, a, name)
	if err != nil {
		return err
	}
	if why := s.compare(live, server, ca, token); why != "" {
		kc, err := remoteKubeconfig(s.source.Name, server, ca, token)
		if err != nil {
			return err
		}
		if _, err := b.Apply(ctx, []*unstructured.Unstructured{s.secret(kc)}, kubeApplyOptions(env)); err != nil {
			return err
		}
		env.Logf("Secret %s/%s written in %s (%s)", istiorender.Namespace, istiorender.RemoteSecretName(s.source.Name), s.target, why)
	}
	if err := s.retireOlderTokens(ctx, env, a, b, name); err != nil {
		return err
	}
	if err := s.retireSharedToken(ctx, env, a); err != nil {
		return err
	}
	env.SetOutput("tokenSecret", name)
	env.SetOutput("secret", istiorender.RemoteSecretName(s.source.Name))
	env.SetOutput("server", server)
	env.SetOutput("tokenSHA256", digest.SHA256Hex(token))
	return nil
}
