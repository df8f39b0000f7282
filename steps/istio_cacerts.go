package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/istiorender"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

// cacertsKeys are the Secret's keys, each a file of the cluster's CA dir.
func cacertsKeys() []string {
	return []string{statedir.CACertFile, statedir.CAKeyFile, statedir.RootCertFile, statedir.CertChainFile}
}

// IstioCACerts is the Secret cacerts of a cluster, made of its
// intermediate CA: the walkthrough's `kubectl create secret generic cacerts
// -n istio-system --from-file=...`. Before writing it, it checks that every
// cluster of the mesh chains to the same root: istiods with different
// roots do not trust each other's workloads.
type IstioCACerts struct {
	mesh     string
	cluster  string
	clusters []string // every cluster of the mesh
}

// NewIstioCACerts returns the istio/cacerts step of spec.Cluster in
// spec.Mesh.
func NewIstioCACerts(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *IstioCACerts {
	return &IstioCACerts{mesh: spec.Mesh, cluster: spec.Cluster, clusters: p.Mesh(spec.Mesh).Clusters}
}

// files reads the cluster's CA files after checking the mesh's roots.
// The result holds the intermediate's private key: never log it.
func (s *IstioCACerts) files(env *engine.Env) (map[string][]byte, error) {
	if err := CheckMeshRoots(env.Dir, s.mesh, s.clusters); err != nil {
		return nil, err
	}
	dir := statedir.CACluster(env.Dir, s.mesh, s.cluster)
	data := map[string][]byte{}
	for _, name := range cacertsKeys() {
		b, _, err := statedir.ReadFile(dir, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w (the cluster's ca/intermediate step makes it)", filepath.Join(dir, name), err)
		}
		data[name] = b
	}
	inter, err := pki.DecodeCert(data[statedir.CACertFile])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statedir.CACertFile, err)
	}
	root, err := pki.DecodeCert(data[statedir.RootCertFile])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statedir.RootCertFile, err)
	}
	if err := pki.VerifyChain(inter, root); err != nil {
		return nil, fmt.Errorf("%s does not chain to %s in %s: %w", statedir.CACertFile, statedir.RootCertFile, dir, err)
	}
	return data, nil
}

// CheckMeshRoots checks that every cluster of a mesh that has its CA
// files has the mesh's root certificate: the same root everywhere, or
// cross-cluster mTLS fails. Clusters whose intermediate is not made yet
// are skipped; the mesh's root itself must exist.
func CheckMeshRoots(stateDir, mesh string, clusters []string) error {
	rootFile := filepath.Join(statedir.CARoot(stateDir, mesh), statedir.RootCertFile)
	want, _, err := statedir.ReadFile(statedir.CARoot(stateDir, mesh), statedir.RootCertFile)
	if err != nil {
		return fmt.Errorf("mesh %s root: %w (the mesh's ca/root step makes it)", mesh, err)
	}
	wantCert, err := pki.DecodeCert(want)
	if err != nil {
		return fmt.Errorf("%s: %w", rootFile, err)
	}
	var bad []string
	for _, c := range clusters {
		dir := statedir.CACluster(stateDir, mesh, c)
		got, _, err := statedir.ReadFile(dir, statedir.RootCertFile)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			what := "unreadable certificate"
			if cert, err := pki.DecodeCert(got); err == nil {
				what = fmt.Sprintf("root %q (sha256 %s)", cert.Subject.CommonName, digest.Short(pki.Fingerprint(cert)))
			}
			bad = append(bad, fmt.Sprintf("%s has %s", c, what))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("the clusters of mesh %s do not chain to the same root: the mesh root is %q (sha256 %s, %s) but %s; "+
			"workloads of clusters with different roots cannot authenticate each other. Remove the stale cluster directories under %s "+
			"and apply again so that their intermediates are signed by the mesh root",
			mesh, wantCert.Subject.CommonName, digest.Short(pki.Fingerprint(wantCert)), rootFile, strings.Join(bad, "; "), statedir.CARoot(stateDir, mesh))
	}
	return nil
}

func (s *IstioCACerts) secret(data map[string][]byte) *unstructured.Unstructured {
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: istiorender.CACertsSecret, Namespace: istiorender.Namespace},
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
	m, _ := runtime.DefaultUnstructuredConverter.ToUnstructured(sec)
	unstructured.RemoveNestedField(m, "metadata", "creationTimestamp")
	return &unstructured.Unstructured{Object: m}
}

// Check compares the live Secret's keys with the CA files.
func (s *IstioCACerts) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	data, c, err := wantedOn(ctx, env, s.cluster, func() (map[string][]byte, error) { return s.files(env) })
	if err != nil {
		return engine.Drift{}, err
	}
	live, err := c.Typed.CoreV1().Secrets(istiorender.Namespace).Get(ctx, istiorender.CACertsSecret, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return engine.Drifted("Secret " + istiorender.Namespace + "/" + istiorender.CACertsSecret + " missing"), nil
	}
	if err != nil {
		return engine.Drift{}, err
	}
	var differ []string
	for _, k := range cacertsKeys() {
		if !bytes.Equal(live.Data[k], data[k]) {
			differ = append(differ, k)
		}
	}
	for k := range live.Data {
		if !slices.Contains(cacertsKeys(), k) {
			differ = append(differ, k+" (extra)")
		}
	}
	if len(differ) > 0 {
		return engine.Drifted("Secret cacerts differs from the cluster's CA files: " + strings.Join(differ, ", ")), nil
	}
	return engine.InSync(), nil
}

// Apply writes the Secret (server-side apply). It records the sha256 of
// the certificates, never their keys.
func (s *IstioCACerts) Apply(ctx context.Context, env *engine.Env) error {
	data, c, err := wantedOn(ctx, env, s.cluster, func() (map[string][]byte, error) { return s.files(env) })
	if err != nil {
		return err
	}
	res, err := c.Apply(ctx, []*unstructured.Unstructured{s.secret(data)}, kubeApplyOptions(env))
	if err != nil {
		return err
	}
	sum := digest.SHA256Hex
	env.SetOutput("rootCertSHA256", sum(data[statedir.RootCertFile]))
	env.SetOutput("caCertSHA256", sum(data[statedir.CACertFile]))
	if res.Changed() {
		env.Logf("Secret %s/%s written from %s", istiorender.Namespace, istiorender.CACertsSecret, statedir.CACluster(env.Dir, s.mesh, s.cluster))
	}
	return nil
}
