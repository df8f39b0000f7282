package steps

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

const caTestMesh = "mesh1"

func TestCARootCreatesAndKeeps(t *testing.T) {
	r := newCARun(t)
	id := plans.CARootID(caTestMesh)
	step := newCARoot(caTestMesh, fastCA(), "")
	caWantDrift(t, r.check(id, step), "root CA not created yet")

	out := r.mustApply(id, step)
	dir := statedir.CARoot(r.dir, caTestMesh)
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{
		{filepath.Join(r.dir, "ca"), 0o700},
		{dir, 0o700},
		{filepath.Join(dir, "root-key.pem"), 0o600},
		{filepath.Join(dir, "root-cert.pem"), 0o644},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != f.mode {
			t.Errorf("%s: mode %v, want %v", f.path, fi.Mode().Perm(), f.mode)
		}
	}
	root, err := pki.LoadRoot(filepath.Join(dir, "root-cert.pem"), filepath.Join(dir, "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"certSHA256": pki.Fingerprint(root.Cert),
		"notAfter":   root.Cert.NotAfter.UTC().Format(time.RFC3339),
		"certFile":   filepath.Join(dir, "root-cert.pem"),
		"source":     "generated",
	}
	if len(out) != len(want) {
		t.Errorf("outputs = %v, want %v", out, want)
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("output %s = %q, want %q", k, out[k], v)
		}
	}
	if root.Cert.Subject.CommonName != "Root CA" {
		t.Errorf("subject %v", root.Cert.Subject)
	}

	// Converged: Check is InSync and Apply changes nothing.
	before := caSnapshot(t, r.dir)
	caWantDrift(t, r.check(id, step), "")
	again := r.mustApply(id, step)
	caSameSnapshot(t, "second apply", before, caSnapshot(t, r.dir))
	if again["certSHA256"] != out["certSHA256"] || again["source"] != "generated" {
		t.Errorf("second apply outputs = %v, want %v", again, out)
	}
}

// TestCARootNeverReplacesRecordedRoot: once an apply recorded a root,
// losing or changing its files makes Check drift and Apply fail, and Apply
// writes nothing.
func TestCARootNeverReplacesRecordedRoot(t *testing.T) {
	tests := []struct {
		name      string
		break_    func(t *testing.T, dir string)
		wantDrift string
		wantErr   []string
	}{
		{
			name:      "key deleted",
			break_:    func(t *testing.T, dir string) { caRemove(t, filepath.Join(dir, "root-key.pem")) },
			wantDrift: "root-key.pem missing",
			wantErr: []string{
				`root CA of mesh "mesh1" was created by an earlier apply (sha256 `,
				"root-key.pem is missing; restore it from a backup. mcplan does not make a new root: every cluster trusts the old one. To start over on purpose, delete ",
				`and run "mcplan state rm <plan.yaml> mesh/mesh1/ca/root"`,
			},
		},
		{
			name:      "both deleted",
			break_:    func(t *testing.T, dir string) { caRemove(t, dir) },
			wantDrift: "root-cert.pem missing",
			wantErr:   []string{"root-cert.pem is missing; restore it from a backup", "mcplan state rm <plan.yaml> mesh/mesh1/ca/root"},
		},
		{
			name: "cert replaced by another root",
			break_: func(t *testing.T, dir string) {
				other, otherKey, err := pki.NewRoot(context.Background(), pki.Options{KeySize: 2048})
				if err != nil {
					t.Fatal(err)
				}
				keyPEM, _ := pki.EncodeKey(otherKey)
				caWrite(t, filepath.Join(dir, "root-key.pem"), keyPEM, 0o600)
				caWrite(t, filepath.Join(dir, "root-cert.pem"), pki.EncodeCerts(other), 0o644)
			},
			wantDrift: "root-cert.pem is not the recorded root CA",
			wantErr:   []string{"root-cert.pem holds another certificate", "mcplan does not make a new root"},
		},
		{
			name: "key of another root",
			break_: func(t *testing.T, dir string) {
				_, otherKey, err := pki.NewRoot(context.Background(), pki.Options{KeySize: 2048})
				if err != nil {
					t.Fatal(err)
				}
				keyPEM, _ := pki.EncodeKey(otherKey)
				caWrite(t, filepath.Join(dir, "root-key.pem"), keyPEM, 0o600)
			},
			wantDrift: "root-key.pem does not match root-cert.pem",
			wantErr:   []string{"root-key.pem does not match root-cert.pem; restore it from a backup"},
		},
		{
			name: "cert corrupt",
			break_: func(t *testing.T, dir string) {
				caWrite(t, filepath.Join(dir, "root-cert.pem"), []byte("garbage"), 0o644)
			},
			wantDrift: "root-cert.pem not a usable certificate",
			wantErr:   []string{"root-cert.pem is not a usable certificate"},
		},
	}
	id := plans.CARootID(caTestMesh)
	step := newCARoot(caTestMesh, fastCA(), "")
	template := newCARun(t)
	template.mustApply(id, step)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := template.clone(t)
			recorded := r.state[id]
			dir := statedir.CARoot(r.dir, caTestMesh)
			tt.break_(t, dir)

			caWantDrift(t, r.check(id, step), tt.wantDrift)
			before := caSnapshot(t, r.dir)
			err := r.apply(id, step)
			if err == nil {
				t.Fatal("Apply: no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Apply error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			if !strings.Contains(err.Error(), recorded["certSHA256"][:16]) {
				t.Errorf("Apply error does not name the recorded sha256 %s: %v", recorded["certSHA256"], err)
			}
			caSameSnapshot(t, "failed apply", before, caSnapshot(t, r.dir))
		})
	}
}

func TestCARootAdoptsFilesWhenStateIsLost(t *testing.T) {
	r := newCARun(t)
	id := plans.CARootID(caTestMesh)
	step := newCARoot(caTestMesh, fastCA(), "")
	first := r.mustApply(id, step)
	before := caSnapshot(t, r.dir)

	delete(r.state, id) // the state file was lost, the files were not
	caWantDrift(t, r.check(id, step), "")
	adopted := r.mustApply(id, step)
	if adopted["certSHA256"] != first["certSHA256"] {
		t.Errorf("certSHA256 = %s, want the existing %s", adopted["certSHA256"], first["certSHA256"])
	}
	caSameSnapshot(t, "adopting apply", before, caSnapshot(t, r.dir))
}

// TestCARootWithoutRecordRefusesToOverwriteCert: files found without a
// record that are not a usable root are not overwritten, except a lone
// key (an apply interrupted between key and certificate).
func TestCARootWithoutRecord(t *testing.T) {
	tests := []struct {
		name      string
		files     map[string]string
		wantDrift string
		wantErr   string // "": Apply makes a new root
	}{
		{"cert without key", map[string]string{"root-cert.pem": "cert"}, "root-key.pem missing", "no earlier apply recorded this root CA"},
		{"garbage cert", map[string]string{"root-cert.pem": "garbage", "root-key.pem": "key"}, "root-cert.pem not a usable certificate", "mcplan does not overwrite a root certificate"},
		{"key without cert", map[string]string{"root-key.pem": "key"}, "root-cert.pem missing", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCARun(t)
			id := plans.CARootID(caTestMesh)
			step := newCARoot(caTestMesh, fastCA(), "")
			// A real certificate where the test says "cert".
			other, otherKey, err := pki.NewRoot(context.Background(), pki.Options{KeySize: 2048})
			if err != nil {
				t.Fatal(err)
			}
			keyPEM, _ := pki.EncodeKey(otherKey)
			dir := statedir.CARoot(r.dir, caTestMesh)
			for name, content := range tt.files {
				data := []byte(content)
				switch content {
				case "cert":
					data = pki.EncodeCerts(other)
				case "key":
					data = keyPEM
				}
				caWrite(t, filepath.Join(dir, name), data, 0o600)
			}
			caWantDrift(t, r.check(id, step), tt.wantDrift)
			before := caSnapshot(t, r.dir)
			err = r.apply(id, step)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Apply: err = %v, want one containing %q", err, tt.wantErr)
				}
				caSameSnapshot(t, "failed apply", before, caSnapshot(t, r.dir))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			caWantDrift(t, r.check(id, step), "")
		})
	}
}

func TestCARootKeyModeRepaired(t *testing.T) {
	r := newCARun(t)
	id := plans.CARootID(caTestMesh)
	step := newCARoot(caTestMesh, fastCA(), "")
	out := r.mustApply(id, step)
	key := filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-key.pem")
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	caWantDrift(t, r.check(id, step), "root-key.pem has mode 0644, want 0600")
	if again := r.mustApply(id, step); again["certSHA256"] != out["certSHA256"] {
		t.Error("root changed")
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v after apply", fi.Mode().Perm())
	}
	caWantDrift(t, r.check(id, step), "")
}

func TestCARootCancelled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := engine.NewEnv(plans.CARootID(caTestMesh), dir, nil, nil, nil)
	err := newCARoot(caTestMesh, fastCA(), "").Apply(ctx, env)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(statedir.CARoot(dir, caTestMesh), "root-key.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("root-key.pem written by a cancelled apply (%v)", err)
	}
}

// userRoot writes a root CA the way a user brings one: cert and key files
// in a directory of their own.
func userRoot(t *testing.T, dir string, withEC bool) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	var keyPEM []byte
	if withEC {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(42),
			Subject:               pkix.Name{Organization: []string{"Example Corp"}, CommonName: "Example Mesh Root"},
			NotBefore:             time.Now().Add(-time.Hour),
			NotAfter:              time.Now().AddDate(5, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		if cert, err = x509.ParseCertificate(der); err != nil {
			t.Fatal(err)
		}
		keyPEM, _ = pki.EncodeKey(key)
	} else {
		c, key, err := pki.NewRoot(context.Background(), pki.Options{KeySize: 2048})
		if err != nil {
			t.Fatal(err)
		}
		cert = c
		keyPEM, _ = pki.EncodeKey(key)
	}
	certFile, keyFile = filepath.Join(dir, "my-root.crt"), filepath.Join(dir, "my-root.key")
	caWrite(t, certFile, append([]byte("My root\n"), pki.EncodeCerts(cert)...), 0o644)
	caWrite(t, keyFile, keyPEM, 0o600)
	return certFile, keyFile, cert
}

func TestCARootProvided(t *testing.T) {
	for _, ec := range []bool{false, true} {
		name := map[bool]string{false: "RSA", true: "ECDSA"}[ec]
		t.Run(name, func(t *testing.T) {
			r := newCARun(t)
			planDir := t.TempDir()
			_, keyFile, userCert := userRoot(t, filepath.Join(planDir, "pki"), ec)
			ca := plans.CA{KeySize: 2048, RootCert: "pki/my-root.crt", RootKey: "pki/my-root.key"} // relative to the plan
			id := plans.CARootID(caTestMesh)
			step := newCARoot(caTestMesh, ca, planDir)

			caWantDrift(t, r.check(id, step), "root CA not copied yet")
			out := r.mustApply(id, step)
			if out["source"] != "provided" || out["certSHA256"] != pki.Fingerprint(userCert) {
				t.Errorf("outputs = %v, want source provided and the user's sha256 %s", out, pki.Fingerprint(userCert))
			}
			dir := statedir.CARoot(r.dir, caTestMesh)
			if _, err := os.Stat(filepath.Join(dir, "root-key.pem")); err == nil {
				t.Error("the user's root key was copied into the state directory")
			}
			if out["keyFile"] != keyFile {
				t.Errorf("keyFile output %q, want the user's %s", out["keyFile"], keyFile)
			}
			if got := caReadFile(t, filepath.Join(dir, "root-cert.pem")); got != string(pki.EncodeCerts(userCert)) {
				t.Error("root-cert.pem is not the user's certificate")
			}
			before := caSnapshot(t, r.dir)
			caWantDrift(t, r.check(id, step), "")
			r.mustApply(id, step)
			caSameSnapshot(t, "second apply", before, caSnapshot(t, r.dir))

			// Intermediates chain to the user's root.
			for _, cluster := range []string{"c1", "c2"} {
				r.mustApply(plans.CAIntermediateID(cluster), newCAIntermediate(caTestMesh, cluster, ca, plans.CARootID(caTestMesh)))
				inter := caReadCert(t, filepath.Join(statedir.CACluster(r.dir, caTestMesh, cluster), "ca-cert.pem"))
				if err := pki.VerifyChain(inter, userCert); err != nil {
					t.Errorf("%s: %v", cluster, err)
				}
			}

			// A lost copy of the certificate is restored from the user's file.
			before = caSnapshot(t, dir)
			caRemove(t, filepath.Join(dir, "root-cert.pem"))
			caWantDrift(t, r.check(id, step), "root CA not copied yet")
			r.mustApply(id, step)
			caSameSnapshot(t, "restoring apply", before, caSnapshot(t, dir))

			// A copy of the key an earlier version made goes; the user's stays.
			caWrite(t, filepath.Join(dir, "root-key.pem"), []byte(caReadFile(t, keyFile)), 0o600)
			caWantDrift(t, r.check(id, step), "root-key.pem is a copy of "+keyFile)
			r.mustApply(id, step)
			caSameSnapshot(t, "apply removing the key copy", before, caSnapshot(t, dir))
			if _, err := os.Stat(keyFile); err != nil {
				t.Errorf("the user's key: %v", err)
			}
		})
	}
}

func TestCARootProvidedRefused(t *testing.T) {
	planDir := t.TempDir()
	certFile, keyFile, _ := userRoot(t, filepath.Join(planDir, "a"), false)
	otherCert, otherKey, _ := userRoot(t, filepath.Join(planDir, "b"), false)
	notCA := filepath.Join(planDir, "leaf.crt")
	caWrite(t, notCA, pki.EncodeCerts(nonCACert(t)), 0o644)

	tests := []struct {
		name     string
		ca       plans.CA
		wantErr  []string
		recorded bool // an earlier apply recorded root a
	}{
		{"key of another root", plans.CA{RootCert: certFile, RootKey: otherKey}, []string{"root key " + otherKey, "does not match"}, false},
		{"not a CA", plans.CA{RootCert: notCA, RootKey: keyFile}, []string{"root certificate " + notCA, "not a CA"}, false},
		{"missing file", plans.CA{RootCert: "nope.crt", RootKey: keyFile}, []string{filepath.Join(planDir, "nope.crt")}, false},
		{"cert without key", plans.CA{RootCert: certFile}, []string{"ca.rootCert and ca.rootKey must be given together"}, false},
		{"another root than the recorded one", plans.CA{RootCert: otherCert, RootKey: otherKey}, []string{
			`root CA of mesh "mesh1" was created by an earlier apply`, "ca.rootCert " + otherCert + " is another certificate", "mcplan state rm <plan.yaml> mesh/mesh1/ca/root",
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCARun(t)
			id := plans.CARootID(caTestMesh)
			if tt.recorded {
				r.mustApply(id, newCARoot(caTestMesh, plans.CA{RootCert: certFile, RootKey: keyFile}, planDir))
			}
			before := caSnapshot(t, r.dir)
			step := newCARoot(caTestMesh, tt.ca, planDir)
			err := r.apply(id, step)
			if err == nil {
				t.Fatal("Apply: no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Apply error:\n%v\nwant it to contain %q", err, w)
				}
			}
			caSameSnapshot(t, "refused apply", before, caSnapshot(t, r.dir))
			if d, err := step.Check(context.Background(), r.env(id)); err == nil && d.InSync {
				t.Error("Check InSync")
			}
		})
	}
}

// TestCARootProvidedDoesNotOverwriteUnrecordedRoot: switching to a
// provided root while the state directory holds another root, without a
// record, is refused.
func TestCARootProvidedDoesNotOverwriteUnrecordedRoot(t *testing.T) {
	r := newCARun(t)
	id := plans.CARootID(caTestMesh)
	r.mustApply(id, newCARoot(caTestMesh, fastCA(), ""))
	delete(r.state, id)
	planDir := t.TempDir()
	certFile, keyFile, _ := userRoot(t, planDir, false)
	before := caSnapshot(t, r.dir)
	err := r.apply(id, newCARoot(caTestMesh, plans.CA{RootCert: certFile, RootKey: keyFile}, planDir))
	if err == nil || !strings.Contains(err.Error(), "holds another root CA than ca.rootCert") {
		t.Fatalf("err = %v", err)
	}
	caSameSnapshot(t, "refused apply", before, caSnapshot(t, r.dir))
}

func nonCACert(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestCARootProvidedTildePaths: ~ in ca.rootCert and ca.rootKey is the
// home directory, as in the plan's other paths.
func TestCARootProvidedTildePaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	_, keyFile, userCert := userRoot(t, filepath.Join(home, "pki"), false)
	r := newCARun(t)
	id := plans.CARootID(caTestMesh)
	out := r.mustApply(id, newCARoot(caTestMesh, plans.CA{RootCert: "~/pki/my-root.crt", RootKey: "~/pki/my-root.key"}, t.TempDir()))
	if out["keyFile"] != keyFile || out["certSHA256"] != pki.Fingerprint(userCert) {
		t.Errorf("outputs %v, want the root under %s", out, home)
	}
}
