package steps

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/digest"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

// CAIntermediate is the step that makes a cluster's intermediate CA,
// signed by its mesh's root, and the files Istio's "cacerts" Secret is
// made of, in statedir.CACluster. A valid intermediate is kept; one that is
// missing, broken, about to expire, not chained to the current root, or
// made with other key size or validity than the plan asks is replaced.
type CAIntermediate struct {
	mesh    string
	cluster string
	ca      plans.CA
	// root is the step whose outputs record the mesh's root (its spec's
	// Reads).
	root string
}

// NewCAIntermediate returns the intermediate CA step of spec.Cluster in
// spec.Mesh; it reads the outputs of spec.Reads, the mesh's root step.
func NewCAIntermediate(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *CAIntermediate {
	return newCAIntermediate(spec.Mesh, spec.Cluster, p.Mesh(spec.Mesh).CA, spec.Reads)
}

// newCAIntermediate is the intermediate CA step of a cluster of mesh
// whose CA settings are ca; root is the ID of the mesh's root step.
func newCAIntermediate(mesh, cluster string, ca plans.CA, root string) *CAIntermediate {
	return &CAIntermediate{mesh: mesh, cluster: cluster, ca: ca, root: root}
}

func (s *CAIntermediate) checkNames() error {
	if err := checkPathName("mesh", s.mesh); err != nil {
		return err
	}
	if err := checkPathName("cluster", s.cluster); err != nil {
		return err
	}
	return nil
}

func (s *CAIntermediate) keySize() int {
	if s.ca.KeySize == 0 {
		return pki.DefaultKeySize
	}
	return s.ca.KeySize
}

func (s *CAIntermediate) validityDays() int {
	if s.ca.IntermediateValidityDays == 0 {
		return pki.DefaultIntermediateValidityDays
	}
	return s.ca.IntermediateValidityDays
}

// meshRoot is the mesh's root CA as its directory holds it.
type meshRoot struct {
	certPEM []byte
	cert    *x509.Certificate
	key     crypto.Signer // only when read with the key
}

// readMeshRoot reads the mesh's root certificate and, if withKey, its key.
// It fails when they are missing, unusable or expired, or when the
// certificate is not the one the root step recorded.
func (s *CAIntermediate) readMeshRoot(env *engine.Env, withKey bool) (*meshRoot, error) {
	dir := statedir.CARoot(env.Dir, s.mesh)
	r := &meshRoot{}
	var err error
	if r.certPEM, _, err = statedir.ReadFile(dir, statedir.RootCertFile); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("root CA of mesh %q: %w; the root step %s must run first", s.mesh, err, s.root)
	} else if err != nil {
		return nil, fmt.Errorf("root CA of mesh %q: %w", s.mesh, err)
	}
	if r.cert, err = pki.DecodeCert(r.certPEM); err != nil {
		return nil, fmt.Errorf("root CA of mesh %q: %s: %w", s.mesh, filepath.Join(dir, statedir.RootCertFile), err)
	}
	if err := pki.CheckValidAt(r.cert, time.Now()); err != nil {
		return nil, fmt.Errorf("root CA of mesh %q: %s: %w", s.mesh, filepath.Join(dir, statedir.RootCertFile), err)
	}
	if want, ok := env.Output(s.root, CAOutputCertSHA256); ok {
		if got := pki.Fingerprint(r.cert); got != want {
			return nil, fmt.Errorf("root CA of mesh %q: %s (sha256 %s) is not the root step %s recorded (sha256 %s)",
				s.mesh, filepath.Join(dir, statedir.RootCertFile), digest.Short(got), s.root, digest.Short(want))
		}
	}
	if !withKey {
		return r, nil
	}
	// A provided root's key stays where the user keeps it (ca.rootKey).
	keyPath := filepath.Join(dir, statedir.RootKeyFile)
	if kf, ok := env.Output(s.root, CAOutputKeyFile); ok && kf != "" {
		keyPath = kf
	}
	keyPEM, err := os.ReadFile(keyPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("root CA of mesh %q: %w; restore it from a backup: no intermediate can be signed without it", s.mesh, err)
	} else if err != nil {
		return nil, fmt.Errorf("root CA of mesh %q: %w", s.mesh, err)
	}
	if r.key, err = pki.DecodeKey(keyPEM); err != nil {
		return nil, fmt.Errorf("root CA of mesh %q: %s: %w", s.mesh, keyPath, err)
	}
	if !pki.KeyMatches(r.cert, r.key) {
		return nil, fmt.Errorf("root CA of mesh %q: %s does not match %s", s.mesh, keyPath, statedir.RootCertFile)
	}
	return r, nil
}

// intermediateFiles is what a cluster's CA directory holds.
type intermediateFiles struct {
	certPEM []byte
	cert    *x509.Certificate
	keyMode os.FileMode
	// problem says why the intermediate must be replaced; empty when it
	// is kept.
	problem string
	// stale lists the files derived from the intermediate and the root
	// (root-cert.pem, cert-chain.pem) whose content differs from wantDerived.
	stale       []string
	wantDerived map[string][]byte
}

// readIntermediateFiles reads and checks a cluster's CA files against the
// mesh's root.
func (s *CAIntermediate) readIntermediateFiles(dir string, root *meshRoot, now time.Time) *intermediateFiles {
	f := &intermediateFiles{}
	f.problem = s.checkIntermediate(dir, root, now, f)

	f.wantDerived = map[string][]byte{statedir.RootCertFile: root.certPEM}
	if f.problem == "" {
		f.wantDerived[statedir.CertChainFile] = append(append([]byte{}, f.certPEM...), root.certPEM...)
	}
	for _, name := range []string{statedir.RootCertFile, statedir.CertChainFile} {
		want, ok := f.wantDerived[name]
		if !ok {
			continue
		}
		if got, _, err := statedir.ReadFile(dir, name); err != nil || !bytes.Equal(got, want) {
			f.stale = append(f.stale, name)
		}
	}
	return f
}

// checkIntermediate returns why the intermediate in dir cannot be kept,
// or "" and fills f.
func (s *CAIntermediate) checkIntermediate(dir string, root *meshRoot, now time.Time, f *intermediateFiles) string {
	certPEM, _, err := statedir.ReadFile(dir, statedir.CACertFile)
	if errors.Is(err, fs.ErrNotExist) {
		return statedir.CACertFile + " missing"
	} else if err != nil {
		return fmt.Sprintf("%s cannot be read: %v", statedir.CACertFile, err)
	}
	keyPEM, keyMode, err := statedir.ReadFile(dir, statedir.CAKeyFile)
	if errors.Is(err, fs.ErrNotExist) {
		return statedir.CAKeyFile + " missing"
	} else if err != nil {
		return fmt.Sprintf("%s cannot be read: %v", statedir.CAKeyFile, err)
	}
	cert, err := pki.DecodeCert(certPEM)
	if err != nil {
		return fmt.Sprintf("%s is not a usable certificate: %v", statedir.CACertFile, err)
	}
	key, err := pki.DecodeKey(keyPEM)
	if err != nil {
		return fmt.Sprintf("%s is not a usable private key: %v", statedir.CAKeyFile, err)
	}
	if !pki.KeyMatches(cert, key) {
		return statedir.CAKeyFile + " does not match " + statedir.CACertFile
	}
	if err := pki.VerifyChainAt(cert, root.cert, now); err != nil {
		return fmt.Sprintf("%s is not signed by the mesh's current root CA: %v", statedir.CACertFile, err)
	}
	if l := cert.Subject.Locality; len(l) != 1 || l[0] != s.cluster {
		return fmt.Sprintf("%s is for L=%s, want L=%s", statedir.CACertFile, strings.Join(l, ","), s.cluster)
	}
	lifetime := cert.NotAfter.Sub(cert.NotBefore)
	// ca.renewBefore, but at most a third of its lifetime, so that a short-lived
	// intermediate is not re-issued on every apply.
	renew := min(s.ca.RenewWindow(), lifetime/3)
	if left := cert.NotAfter.Sub(now); left < renew {
		return fmt.Sprintf("%s expires on %s, in less than %d days", statedir.CACertFile, cert.NotAfter.UTC().Format(time.RFC3339), int(renew.Hours()/24))
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || pub.N.BitLen() != s.keySize() {
		return fmt.Sprintf("%s has a %s key, the plan asks for RSA %d", statedir.CACertFile, describeKey(cert.PublicKey), s.keySize())
	}
	days := int((lifetime - pki.ClockSkew + 12*time.Hour) / (24 * time.Hour))
	if days != s.validityDays() {
		return fmt.Sprintf("%s is valid for %d days, the plan asks for %d", statedir.CACertFile, days, s.validityDays())
	}
	f.certPEM, f.cert, f.keyMode = certPEM, cert, keyMode
	return ""
}

func describeKey(pub crypto.PublicKey) string {
	if k, ok := pub.(*rsa.PublicKey); ok {
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	}
	return fmt.Sprintf("%T", pub)
}

// Check says whether the cluster's CA files are present, consistent and
// chained to the mesh's current root. It changes nothing.
func (s *CAIntermediate) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	if err := s.checkNames(); err != nil {
		return engine.Drift{}, err
	}
	root, err := s.readMeshRoot(env, false)
	if errors.Is(err, fs.ErrNotExist) {
		return engine.Drifted(fmt.Sprintf("root CA of mesh %s not created yet", s.mesh)), nil
	} else if err != nil {
		return engine.Drifted(err.Error()), nil
	}
	f := s.readIntermediateFiles(statedir.CACluster(env.Dir, s.mesh, s.cluster), root, time.Now())
	switch {
	case f.problem != "":
		return engine.Drifted(f.problem), nil
	case len(f.stale) > 0:
		return engine.Drifted(f.stale[0] + " missing or not up to date"), nil
	}
	return keyModeDrift(statedir.CAKeyFile, f.keyMode), nil
}

// Apply keeps a valid intermediate, refreshing the files derived from it
// and the root, or makes a new one.
func (s *CAIntermediate) Apply(ctx context.Context, env *engine.Env) error {
	if err := s.checkNames(); err != nil {
		return err
	}
	root, err := s.readMeshRoot(env, true)
	if err != nil {
		return err
	}
	dir := statedir.CACluster(env.Dir, s.mesh, s.cluster)
	if err := makeCADir(dir); err != nil {
		return err
	}
	f := s.readIntermediateFiles(dir, root, time.Now())
	cert := f.cert
	if f.problem == "" && env.Replace {
		f.problem = "replaced on request (--replace)"
	}
	if f.problem != "" {
		env.Logf("making a new intermediate CA: %s", f.problem)
		newCert, key, err := pki.NewIntermediate(ctx, root.cert, root.key, s.cluster, pki.Options{KeySize: s.ca.KeySize, ValidityDays: s.ca.IntermediateValidityDays})
		if err != nil {
			return err
		}
		keyPEM, err := pki.EncodeKey(key)
		if err != nil {
			return err
		}
		certPEM := pki.EncodeCerts(newCert)
		// Key first: a ca-cert.pem with a stale key beside it is
		// replaced by the next apply.
		if err := writeCAFile(dir, statedir.CAKeyFile, keyPEM, statedir.KeyMode); err != nil {
			return err
		}
		if err := writeCAFile(dir, statedir.CACertFile, certPEM, statedir.CertMode); err != nil {
			return err
		}
		cert = newCert
		f.wantDerived[statedir.CertChainFile] = append(append([]byte{}, certPEM...), root.certPEM...)
		f.stale = []string{statedir.RootCertFile, statedir.CertChainFile}
	} else if f.keyMode != statedir.KeyMode {
		if err := os.Chmod(filepath.Join(dir, statedir.CAKeyFile), statedir.KeyMode); err != nil {
			return err
		}
	}
	for _, name := range f.stale {
		if err := writeCAFile(dir, name, f.wantDerived[name], statedir.CertMode); err != nil {
			return err
		}
	}
	env.SetOutput(CAOutputCertSHA256, pki.Fingerprint(cert))
	env.SetOutput(CAOutputRootSHA256, pki.Fingerprint(root.cert))
	env.SetOutput(CAOutputNotAfter, cert.NotAfter.UTC().Format(time.RFC3339))
	env.SetOutput(CAOutputDir, dir)
	return nil
}
