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

// Outputs of the CA steps. None of them is secret.
const (
	CAOutputCertSHA256 = "certSHA256" // SHA-256 of the certificate's DER, hex
	CAOutputNotAfter   = "notAfter"   // expiry, RFC 3339 UTC
	CAOutputCertFile   = "certFile"   // root only: the mesh's root-cert.pem
	CAOutputKeyFile    = "keyFile"    // root only, provided roots: the user's key (ca.rootKey), which intermediates are signed from
	CAOutputSource     = "source"     // root only: CASourceGenerated or CASourceProvided
	CAOutputRootSHA256 = "rootSHA256" // intermediate only: SHA-256 of the root it chains to
	CAOutputDir        = "dir"        // intermediate only: the cluster's CA directory
)

// Values of the root's CAOutputSource.
const (
	CASourceGenerated = "generated"
	CASourceProvided  = "provided"
)

// CARoot is the step that makes the root CA of a mesh into statedir.CARoot, or
// takes the root the user provides (ca.rootCert and ca.rootKey): its
// certificate is copied there, its key is not (intermediates are signed
// from the user's key file, where the user keeps it).
//
// A root, once recorded, is never replaced: every cluster of the mesh
// trusts it, and a new one would break trust across the mesh. When its
// files are lost, Apply fails and says how to restore them or to start
// over on purpose. When the state is lost but the files are there, Apply
// adopts them.
type CARoot struct {
	mesh    string
	ca      plans.CA
	planDir string
}

// NewCARoot returns the root CA step of spec.Mesh.
func NewCARoot(p *plans.Plan, spec plans.StepSpec, _ *Runtime) *CARoot {
	return newCARoot(spec.Mesh, p.Mesh(spec.Mesh).CA, p.Dir())
}

// newCARoot is the root CA step of a mesh whose CA settings are ca.
// planDir resolves relative ca.rootCert and ca.rootKey paths.
func newCARoot(mesh string, ca plans.CA, planDir string) *CARoot {
	return &CARoot{mesh: mesh, ca: ca, planDir: planDir}
}

// rootFiles is what the mesh CA directory holds.
type rootFiles struct {
	certPEM, keyPEM []byte
	cert            *x509.Certificate
	key             crypto.Signer
	certFound       bool
	keyFound        bool
	expired         bool // the problem is that the root is not valid now
	keyMode         os.FileMode
	// file and problem say what is wrong ("root-key.pem", "is missing");
	// problem is empty when the files hold a usable root.
	file, problem string
}

// reason is the problem as a Drift reason: "root-key.pem missing".
func (f *rootFiles) reason() string {
	return f.file + " " + strings.TrimPrefix(f.problem, "is ")
}

func (f *rootFiles) setProblem(file, problem string) {
	if f.problem == "" {
		f.file, f.problem = file, problem
	}
}

// readRootFiles reads and checks the root CA files of dir.
func readRootFiles(dir string, now time.Time) *rootFiles {
	f := &rootFiles{}
	var err error
	f.certPEM, _, err = statedir.ReadFile(dir, statedir.RootCertFile)
	f.certFound = !errors.Is(err, fs.ErrNotExist)
	switch {
	case !f.certFound:
		f.setProblem(statedir.RootCertFile, "is missing")
	case err != nil:
		f.setProblem(statedir.RootCertFile, fmt.Sprintf("cannot be read: %v", err))
	}
	f.keyPEM, f.keyMode, err = statedir.ReadFile(dir, statedir.RootKeyFile)
	f.keyFound = !errors.Is(err, fs.ErrNotExist)
	switch {
	case !f.keyFound:
		f.setProblem(statedir.RootKeyFile, "is missing")
	case err != nil:
		f.setProblem(statedir.RootKeyFile, fmt.Sprintf("cannot be read: %v", err))
	}
	if f.certPEM != nil {
		if f.cert, err = pki.DecodeCert(f.certPEM); err != nil {
			f.setProblem(statedir.RootCertFile, fmt.Sprintf("is not a usable certificate: %v", err))
		}
	}
	if f.keyPEM != nil {
		if f.key, err = pki.DecodeKey(f.keyPEM); err != nil {
			f.setProblem(statedir.RootKeyFile, fmt.Sprintf("is not a usable private key: %v", err))
		}
	}
	if f.problem != "" {
		return f
	}
	if err := pki.CheckCA(f.cert); err != nil {
		f.setProblem(statedir.RootCertFile, fmt.Sprintf("is not a usable root: %v", err))
	} else if !pki.KeyMatches(f.cert, f.key) {
		f.setProblem(statedir.RootKeyFile, "does not match "+statedir.RootCertFile)
	} else if err := pki.CheckValidAt(f.cert, now); err != nil {
		f.setProblem(statedir.RootCertFile, "is not usable now: "+err.Error())
		f.expired = true
	}
	return f
}

// providedPaths returns the user's root files resolved against planDir,
// or ok=false when the plan has none.
func (s *CARoot) providedPaths() (certFile, keyFile string, ok bool, err error) {
	if s.ca.RootCert == "" && s.ca.RootKey == "" {
		return "", "", false, nil
	}
	if s.ca.RootCert == "" || s.ca.RootKey == "" {
		return "", "", false, errors.New("ca.rootCert and ca.rootKey must be given together")
	}
	return plans.ResolvePath(s.planDir, s.ca.RootCert), plans.ResolvePath(s.planDir, s.ca.RootKey), true, nil
}

// rootDecision is what the root step found, decided once: Check reports
// drift; Apply fails with refuse when the root cannot be kept, made or
// copied without breaking the mesh's trust, and runs do otherwise.
type rootDecision struct {
	drift  engine.Drift
	refuse error
	do     func(ctx context.Context, env *engine.Env) error
}

// decide reads the mesh's root CA files (and the user's, with ca.rootCert)
// and the recorded root, and decides. It changes nothing.
func (s *CARoot) decide(env *engine.Env) (rootDecision, error) {
	if err := checkPathName("mesh", s.mesh); err != nil {
		return rootDecision{}, err
	}
	certFile, keyFile, provided, err := s.providedPaths()
	if err != nil {
		return rootDecision{}, err
	}
	dir := statedir.CARoot(env.Dir, s.mesh)
	prev, hasPrev := env.Previous(CAOutputCertSHA256)
	f := readRootFiles(dir, time.Now())
	if provided {
		return s.decideProvided(env, dir, f, certFile, keyFile)
	}
	source := CASourceGenerated
	if src, ok := env.Previous(CAOutputSource); ok {
		source = src
	}
	keep := func(_ context.Context, env *engine.Env) error { return s.keep(env, dir, f, source) }
	if hasPrev {
		switch {
		case f.expired:
			return rootDecision{drift: engine.Drifted(f.reason()),
				refuse: s.refuse(dir, prev, filepath.Join(dir, f.file)+" "+f.problem, "renew it (same key, same subject) or rotate the mesh's root by hand")}, nil
		case f.problem != "":
			return rootDecision{drift: engine.Drifted(f.reason()),
				refuse: s.refuse(dir, prev, filepath.Join(dir, f.file)+" "+f.problem, "restore it from a backup")}, nil
		}
		if sha := pki.Fingerprint(f.cert); sha != prev {
			return rootDecision{drift: engine.Drifted(fmt.Sprintf("%s is not the recorded root CA (sha256 %s, recorded %s)", statedir.RootCertFile, digest.Short(sha), digest.Short(prev))),
				refuse: s.refuse(dir, prev, fmt.Sprintf("%s holds another certificate (sha256 %s)", filepath.Join(dir, statedir.RootCertFile), digest.Short(sha)), "restore the recorded one from a backup")}, nil
		}
		return rootDecision{drift: keyModeDrift(statedir.RootKeyFile, f.keyMode), do: keep}, nil
	}
	switch {
	case f.problem == "":
		return rootDecision{drift: keyModeDrift(statedir.RootKeyFile, f.keyMode), do: func(ctx context.Context, env *engine.Env) error {
			env.Logf("adopting the root CA found in %s (sha256 %s); no earlier apply recorded it", dir, digest.Short(pki.Fingerprint(f.cert)))
			return keep(ctx, env)
		}}, nil
	case f.certFound:
		return rootDecision{drift: engine.Drifted(f.reason()),
			refuse: fmt.Errorf("%s %s, and no earlier apply recorded this root CA. mcplan does not overwrite a root certificate: clusters may trust it. Restore the root's files from a backup, or, to start over on purpose, delete %s",
				filepath.Join(dir, f.file), f.problem, dir)}, nil
	}
	drift := engine.Drifted(f.reason())
	if !f.keyFound {
		drift = engine.Drifted("root CA not created yet")
	}
	return rootDecision{drift: drift, do: func(ctx context.Context, env *engine.Env) error {
		if f.keyFound {
			env.Logf("%s has no %s (an apply was interrupted): making a new root CA", statedir.RootKeyFile, statedir.RootCertFile)
		}
		return s.make(ctx, env, dir)
	}}, nil
}

// decideProvided decides for the user's root (ca.rootCert, ca.rootKey):
// its certificate is copied into dir, its key stays where it is.
func (s *CARoot) decideProvided(env *engine.Env, dir string, f *rootFiles, certFile, keyFile string) (rootDecision, error) {
	root, err := pki.LoadRoot(certFile, keyFile)
	if err != nil {
		return rootDecision{}, err
	}
	sha := pki.Fingerprint(root.Cert)
	prev, hasPrev := env.Previous(CAOutputCertSHA256)
	if hasPrev && sha != prev {
		return rootDecision{drift: engine.Drifted(fmt.Sprintf("ca.rootCert %s is not the recorded root CA (sha256 %s, recorded %s)", certFile, digest.Short(sha), digest.Short(prev))),
			refuse: s.refuse(dir, prev, fmt.Sprintf("ca.rootCert %s is another certificate (sha256 %s)", certFile, digest.Short(sha)), "point ca.rootCert and ca.rootKey back to the recorded root")}, nil
	}
	d := rootDecision{do: func(_ context.Context, env *engine.Env) error { return s.provide(env, dir, root, certFile, keyFile) }}
	recordedKey, _ := env.Previous(CAOutputKeyFile)
	switch {
	case !f.certFound:
		d.drift = engine.Drifted("root CA not copied yet")
	case !bytes.Equal(f.certPEM, pki.EncodeCerts(root.Cert)):
		d.drift = engine.Drifted(statedir.RootCertFile + " differs from " + certFile)
		if !hasPrev && (f.cert == nil || pki.Fingerprint(f.cert) != sha) {
			d.refuse = fmt.Errorf("%s holds another root CA than ca.rootCert %s, and no earlier apply recorded it. mcplan does not overwrite a root certificate: clusters may trust it. To switch to ca.rootCert on purpose, delete %s",
				filepath.Join(dir, statedir.RootCertFile), certFile, dir)
		}
	case f.keyFound && bytes.Equal(f.keyPEM, root.KeyPEM):
		d.drift = engine.Drifted(statedir.RootKeyFile + " is a copy of " + keyFile + ": intermediates are signed from ca.rootKey, the copy goes")
	case recordedKey != keyFile:
		d.drift = engine.Drifted("ca.rootKey is " + keyFile + ", not the recorded " + orUnknown(recordedKey))
	default:
		d.drift = engine.InSync()
	}
	return d, nil
}

// Check says whether the mesh's root CA files are present and are the
// recorded root (or, with ca.rootCert, the user's root). It changes
// nothing.
func (s *CARoot) Check(ctx context.Context, env *engine.Env) (engine.Drift, error) {
	d, err := s.decide(env)
	if err != nil {
		return engine.Drift{}, err
	}
	return d.drift, nil
}

// Apply makes the root CA, takes the user's, keeps the recorded one or
// adopts one found without a record. It never replaces a recorded root.
func (s *CARoot) Apply(ctx context.Context, env *engine.Env) error {
	d, err := s.decide(env)
	if err != nil {
		return err
	}
	if d.refuse != nil {
		return d.refuse
	}
	return d.do(ctx, env)
}

// keyModeDrift is InSync when a private key file has mode 0600.
func keyModeDrift(name string, mode os.FileMode) engine.Drift {
	if mode != statedir.KeyMode {
		return engine.Drifted(fmt.Sprintf("%s has mode %#o, want %#o", name, mode, statedir.KeyMode))
	}
	return engine.InSync()
}

// make makes a new root CA in dir.
func (s *CARoot) make(ctx context.Context, env *engine.Env, dir string) error {
	if err := makeCADir(dir); err != nil {
		return err
	}
	cert, key, err := pki.NewRoot(ctx, pki.Options{KeySize: s.ca.KeySize, ValidityDays: s.ca.RootValidityDays})
	if err != nil {
		return err
	}
	keyPEM, err := pki.EncodeKey(key)
	if err != nil {
		return err
	}
	// Key first: a root-cert.pem on disk always has its key beside it.
	if err := writeCAFile(dir, statedir.RootKeyFile, keyPEM, statedir.KeyMode); err != nil {
		return err
	}
	if err := writeCAFile(dir, statedir.RootCertFile, pki.EncodeCerts(cert), statedir.CertMode); err != nil {
		return err
	}
	env.Logf("made root CA of mesh %s (sha256 %s, RSA %d, valid until %s)", s.mesh, digest.Short(pki.Fingerprint(cert)), key.N.BitLen(), cert.NotAfter.UTC().Format(time.DateOnly))
	s.setOutputs(env, dir, cert, CASourceGenerated)
	return nil
}

// keep keeps a usable root found on disk, fixing the key's mode.
func (s *CARoot) keep(env *engine.Env, dir string, f *rootFiles, source string) error {
	if err := makeCADir(dir); err != nil {
		return err
	}
	if f.keyMode != statedir.KeyMode {
		if err := os.Chmod(filepath.Join(dir, statedir.RootKeyFile), statedir.KeyMode); err != nil {
			return err
		}
	}
	if source == CASourceGenerated {
		want := s.ca.KeySize
		if want == 0 {
			want = pki.DefaultKeySize
		}
		if pub, ok := f.cert.PublicKey.(*rsa.PublicKey); ok && pub.N.BitLen() != want {
			env.Logf("the root CA keeps its %d-bit key; ca.keySize %d applies to intermediates and new roots only", pub.N.BitLen(), want)
		}
	}
	s.setOutputs(env, dir, f.cert, source)
	return nil
}

// provide copies the user's root certificate into dir and records the
// key's path. A copy of the user's key that an earlier version made there
// is removed (only when it is byte for byte the user's key, which stays).
func (s *CARoot) provide(env *engine.Env, dir string, root *pki.Root, certFile, keyFile string) error {
	if err := makeCADir(dir); err != nil {
		return err
	}
	certPEM := pki.EncodeCerts(root.Cert)
	old, mode, err := statedir.ReadFile(dir, statedir.RootCertFile)
	switch {
	case err == nil && bytes.Equal(old, certPEM):
		if mode != statedir.CertMode {
			if err := os.Chmod(filepath.Join(dir, statedir.RootCertFile), statedir.CertMode); err != nil {
				return err
			}
		}
	default:
		if err := writeCAFile(dir, statedir.RootCertFile, certPEM, statedir.CertMode); err != nil {
			return err
		}
		env.Logf("copied %s to %s", certFile, filepath.Join(dir, statedir.RootCertFile))
	}
	if copied, _, err := statedir.ReadFile(dir, statedir.RootKeyFile); err == nil && bytes.Equal(copied, root.KeyPEM) {
		if err := os.Remove(filepath.Join(dir, statedir.RootKeyFile)); err != nil {
			return err
		}
		env.Logf("removed %s, a copy of %s: intermediates are signed from ca.rootKey", filepath.Join(dir, statedir.RootKeyFile), keyFile)
	}
	s.setOutputs(env, dir, root.Cert, CASourceProvided)
	env.SetOutput(CAOutputKeyFile, keyFile)
	return nil
}

// refuse is the error of an Apply that would have to replace a recorded
// root.
func (s *CARoot) refuse(dir, prev, problem, advice string) error {
	return fmt.Errorf("root CA of mesh %q was created by an earlier apply (sha256 %s) but %s; %s. "+
		"mcplan does not make a new root: every cluster trusts the old one. "+
		"To start over on purpose, delete %s and run \"mcplan state rm <plan.yaml> %s\"",
		s.mesh, digest.Short(prev), problem, advice, dir, plans.CARootID(s.mesh))
}

func (s *CARoot) setOutputs(env *engine.Env, dir string, cert *x509.Certificate, source string) {
	env.SetOutput(CAOutputCertSHA256, pki.Fingerprint(cert))
	env.SetOutput(CAOutputNotAfter, cert.NotAfter.UTC().Format(time.RFC3339))
	env.SetOutput(CAOutputCertFile, filepath.Join(dir, statedir.RootCertFile))
	env.SetOutput(CAOutputSource, source)
}
