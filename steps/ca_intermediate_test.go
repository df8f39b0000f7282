package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

// caMesh applies the root of caTestMesh and the intermediates of clusters.
func caMesh(t *testing.T, ca plans.CA, clusters ...string) *caRun {
	t.Helper()
	r := newCARun(t)
	r.mustApply(plans.CARootID(caTestMesh), newCARoot(caTestMesh, ca, ""))
	for _, c := range clusters {
		r.mustApply(plans.CAIntermediateID(c), newCAIntermediate(caTestMesh, c, ca, plans.CARootID(caTestMesh)))
	}
	return r
}

func TestCAIntermediateCreatesAndKeeps(t *testing.T) {
	r := caMesh(t, fastCA())
	rootID := plans.CARootID(caTestMesh)
	rootPEM := caReadFile(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-cert.pem"))
	root := caReadCert(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-cert.pem"))

	for _, cluster := range []string{"cluster1", "cluster2"} {
		id := plans.CAIntermediateID(cluster)
		step := newCAIntermediate(caTestMesh, cluster, fastCA(), plans.CARootID(caTestMesh))
		caWantDrift(t, r.check(id, step), "ca-cert.pem missing")
		out := r.mustApply(id, step)

		dir := statedir.CACluster(r.dir, caTestMesh, cluster)
		modes := map[string]os.FileMode{"": 0o700, "ca-key.pem": 0o600, "ca-cert.pem": 0o644, "root-cert.pem": 0o644, "cert-chain.pem": 0o644}
		for name, mode := range modes {
			fi, err := os.Stat(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != mode {
				t.Errorf("%s/%s: mode %v, want %v", cluster, name, fi.Mode().Perm(), mode)
			}
		}
		certPEM := caReadFile(t, filepath.Join(dir, "ca-cert.pem"))
		inter := caReadCert(t, filepath.Join(dir, "ca-cert.pem"))
		if got := caReadFile(t, filepath.Join(dir, "cert-chain.pem")); got != certPEM+rootPEM {
			t.Errorf("%s: cert-chain.pem is not ca-cert.pem then root-cert.pem", cluster)
		}
		if got := caReadFile(t, filepath.Join(dir, "root-cert.pem")); got != rootPEM {
			t.Errorf("%s: root-cert.pem is not the mesh's root", cluster)
		}
		roots := x509.NewCertPool()
		roots.AddCert(root)
		if _, err := inter.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			t.Errorf("%s: %v", cluster, err)
		}
		key, err := pki.DecodeKey([]byte(caReadFile(t, filepath.Join(dir, "ca-key.pem"))))
		if err != nil || !pki.KeyMatches(inter, key) {
			t.Errorf("%s: ca-key.pem does not match ca-cert.pem (%v)", cluster, err)
		}
		if l := inter.Subject.Locality; len(l) != 1 || l[0] != cluster {
			t.Errorf("%s: L = %v", cluster, l)
		}
		if k := inter.PublicKey.(*rsa.PublicKey); k.N.BitLen() != 2048 {
			t.Errorf("%s: key size %d, want the plan's 2048", cluster, k.N.BitLen())
		}
		want := map[string]string{
			"certSHA256": pki.Fingerprint(inter),
			"rootSHA256": r.state[rootID]["certSHA256"],
			"notAfter":   inter.NotAfter.UTC().Format(time.RFC3339),
			"dir":        dir,
		}
		if len(out) != len(want) {
			t.Errorf("outputs = %v, want %v", out, want)
		}
		for k, v := range want {
			if out[k] != v {
				t.Errorf("%s: output %s = %q, want %q", cluster, k, out[k], v)
			}
		}

		before := caSnapshot(t, r.dir)
		caWantDrift(t, r.check(id, step), "")
		again := r.mustApply(id, step)
		caSameSnapshot(t, "second apply", before, caSnapshot(t, r.dir))
		if again["certSHA256"] != out["certSHA256"] {
			t.Error("second apply changed the intermediate")
		}
	}
}

// TestCAIntermediateOpenSSL checks the files with the tool Istio's
// Makefile uses.
func TestCAIntermediateOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not on PATH; CI installs it to cross-check the certificates")
	}
	r := caMesh(t, fastCA(), "cluster1")
	rootCert := filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-cert.pem")
	dir := statedir.CACluster(r.dir, caTestMesh, "cluster1")
	caCert := filepath.Join(dir, "ca-cert.pem")

	// A workload certificate signed by the intermediate, as istiod signs.
	inter := caReadCert(t, caCert)
	interKey, err := pki.DecodeKey([]byte(caReadFile(t, filepath.Join(dir, "ca-key.pem"))))
	if err != nil {
		t.Fatal(err)
	}
	leafKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{Organization: []string{"cluster.local"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"helloworld.sample.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, inter, leafKey.Public(), interKey)
	if err != nil {
		t.Fatal(err)
	}
	leafFile := filepath.Join(t.TempDir(), "leaf.pem")
	caWrite(t, leafFile, pki.EncodeCerts(&x509.Certificate{Raw: der}), 0o644)

	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("verify", "-CAfile", rootCert, caCert)
	run("verify", "-CAfile", rootCert, "-untrusted", caCert, leafFile)
	run("verify", "-CAfile", filepath.Join(dir, "root-cert.pem"), "-untrusted", filepath.Join(dir, "cert-chain.pem"), leafFile)

	text := run("x509", "-noout", "-text", "-in", caCert)
	for _, want := range []string{
		"CA:TRUE, pathlen:0",
		"DNS:istiod.istio-system.svc",
		"Subject: O = Istio, CN = Intermediate CA, L = cluster1",
		"Issuer: O = Istio, CN = Root CA",
		"Signature Algorithm: sha256WithRSAEncryption",
		"X509v3 Basic Constraints: critical",
		"X509v3 Key Usage: critical",
		"Certificate Sign",
		"X509v3 Authority Key Identifier",
		"X509v3 Subject Key Identifier",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl x509 -text of ca-cert.pem lacks %q:\n%s", want, text)
		}
	}
	rootText := run("x509", "-noout", "-text", "-in", rootCert)
	for _, want := range []string{"CA:TRUE", "Subject: O = Istio, CN = Root CA", "X509v3 Basic Constraints: critical", "Certificate Sign, CRL Sign"} {
		if !strings.Contains(rootText, want) {
			t.Errorf("openssl x509 -text of root-cert.pem lacks %q:\n%s", want, rootText)
		}
	}
}

// TestCAIntermediateRepairs: what Check reports and whether Apply keeps
// the intermediate (rewriting derived files) or makes a new one.
func TestCAIntermediateRepairs(t *testing.T) {
	tests := []struct {
		name      string
		ca        plans.CA // the plan after the first apply; zero: fastCA
		break_    func(t *testing.T, r *caRun, dir string)
		wantDrift string
		wantNew   bool
	}{
		{"ca-cert.pem deleted", plans.CA{}, func(t *testing.T, r *caRun, dir string) { caRemove(t, filepath.Join(dir, "ca-cert.pem")) }, "ca-cert.pem missing", true},
		{"ca-key.pem deleted", plans.CA{}, func(t *testing.T, r *caRun, dir string) { caRemove(t, filepath.Join(dir, "ca-key.pem")) }, "ca-key.pem missing", true},
		{"key of another cluster", plans.CA{}, func(t *testing.T, r *caRun, dir string) {
			other := statedir.CACluster(r.dir, caTestMesh, "cluster2")
			caWrite(t, filepath.Join(dir, "ca-key.pem"), []byte(caReadFile(t, filepath.Join(other, "ca-key.pem"))), 0o600)
		}, "ca-key.pem does not match ca-cert.pem", true},
		{"intermediate of another cluster", plans.CA{}, func(t *testing.T, r *caRun, dir string) {
			other := statedir.CACluster(r.dir, caTestMesh, "cluster2")
			for _, name := range []string{"ca-key.pem", "ca-cert.pem"} {
				caWrite(t, filepath.Join(dir, name), []byte(caReadFile(t, filepath.Join(other, name))), 0o600)
			}
		}, "ca-cert.pem is for L=cluster2, want L=cluster1", true},
		{"expires in 10 days", plans.CA{}, func(t *testing.T, r *caRun, dir string) {
			writeIntermediate(t, r, dir, "cluster1", pki.Options{KeySize: 2048, Now: time.Now().AddDate(0, 0, -720)})
		}, "in less than 90 days", true},
		{"plan asks for another validity", plans.CA{KeySize: 2048, IntermediateValidityDays: 365}, nil, "ca-cert.pem is valid for 730 days, the plan asks for 365", true},
		{"plan asks for another key size", plans.CA{KeySize: 3072}, nil, "ca-cert.pem has a RSA 2048 key, the plan asks for RSA 3072", true},
		{"root-cert.pem deleted", plans.CA{}, func(t *testing.T, r *caRun, dir string) { caRemove(t, filepath.Join(dir, "root-cert.pem")) }, "root-cert.pem missing or not up to date", false},
		{"cert-chain.pem in the wrong order", plans.CA{}, func(t *testing.T, r *caRun, dir string) {
			caWrite(t, filepath.Join(dir, "cert-chain.pem"), []byte(caReadFile(t, filepath.Join(dir, "root-cert.pem"))+caReadFile(t, filepath.Join(dir, "ca-cert.pem"))), 0o644)
		}, "cert-chain.pem missing or not up to date", false},
		{"ca-key.pem readable by all", plans.CA{}, func(t *testing.T, r *caRun, dir string) {
			if err := os.Chmod(filepath.Join(dir, "ca-key.pem"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "ca-key.pem has mode 0644, want 0600", false},
	}
	template := caMesh(t, fastCA(), "cluster1", "cluster2")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := template.clone(t)
			id := plans.CAIntermediateID("cluster1")
			first := r.state[id]
			dir := statedir.CACluster(r.dir, caTestMesh, "cluster1")
			keyBefore := caReadFile(t, filepath.Join(dir, "ca-key.pem"))
			if tt.break_ != nil {
				tt.break_(t, r, dir)
			}
			ca := tt.ca
			if ca == (plans.CA{}) {
				ca = fastCA()
			}
			step := newCAIntermediate(caTestMesh, "cluster1", ca, plans.CARootID(caTestMesh))
			caWantDrift(t, r.check(id, step), tt.wantDrift)

			out := r.mustApply(id, step)
			caWantDrift(t, r.check(id, step), "")
			if renewed := out["certSHA256"] != first["certSHA256"]; renewed != tt.wantNew {
				t.Errorf("new intermediate = %v, want %v", renewed, tt.wantNew)
			}
			if !tt.wantNew && caReadFile(t, filepath.Join(dir, "ca-key.pem")) != keyBefore {
				t.Error("ca-key.pem rewritten")
			}
			inter := caReadCert(t, filepath.Join(dir, "ca-cert.pem"))
			root := caReadCert(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-cert.pem"))
			if err := pki.VerifyChain(inter, root); err != nil {
				t.Error(err)
			}
			if fi, _ := os.Stat(filepath.Join(dir, "ca-key.pem")); fi.Mode().Perm() != 0o600 {
				t.Errorf("ca-key.pem mode %v", fi.Mode().Perm())
			}
		})
	}
}

// writeIntermediate replaces a cluster's CA files by an intermediate made
// with opts.
func writeIntermediate(t *testing.T, r *caRun, dir, cluster string, opts pki.Options) {
	t.Helper()
	rootDir := statedir.CARoot(r.dir, caTestMesh)
	root, err := pki.LoadRoot(filepath.Join(rootDir, "root-cert.pem"), filepath.Join(rootDir, "root-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := pki.NewIntermediate(context.Background(), root.Cert, root.Key, cluster, opts)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := pki.EncodeKey(key)
	caWrite(t, filepath.Join(dir, "ca-key.pem"), keyPEM, 0o600)
	caWrite(t, filepath.Join(dir, "ca-cert.pem"), pki.EncodeCerts(cert), 0o644)
	caWrite(t, filepath.Join(dir, "cert-chain.pem"), append(pki.EncodeCerts(cert), root.CertPEM...), 0o644)
}

// TestCAIntermediateFollowsNewRoot: after the mesh's root was replaced on
// purpose (directory deleted, state removed), intermediates are made anew
// and chain to the new root.
func TestCAIntermediateFollowsNewRoot(t *testing.T) {
	r := caMesh(t, fastCA(), "cluster1")
	rootID, id := plans.CARootID(caTestMesh), plans.CAIntermediateID("cluster1")
	oldRoot := r.state[rootID]["certSHA256"]
	oldInter := r.state[id]["certSHA256"]

	// "delete <dir> and run mcplan state rm <plan.yaml> mesh/mesh1/ca/root"
	caRemove(t, statedir.CARoot(r.dir, caTestMesh))
	delete(r.state, rootID)
	step := newCAIntermediate(caTestMesh, "cluster1", fastCA(), plans.CARootID(caTestMesh))
	caWantDrift(t, r.check(id, step), "root CA of mesh mesh1 not created yet")
	// Restore the old cluster files, as if only the root files were gone.
	newRoot := r.mustApply(rootID, newCARoot(caTestMesh, fastCA(), ""))["certSHA256"]
	if newRoot == oldRoot {
		t.Fatal("root not replaced")
	}
	out := r.mustApply(id, step)
	if out["certSHA256"] == oldInter || out["rootSHA256"] != newRoot {
		t.Errorf("outputs = %v, want a new intermediate under root %s", out, newRoot)
	}
	caWantDrift(t, r.check(id, step), "")
}

func TestCAIntermediateStaleClusterFilesUnderNewRoot(t *testing.T) {
	r := caMesh(t, fastCA(), "cluster1")
	rootID, id := plans.CARootID(caTestMesh), plans.CAIntermediateID("cluster1")
	dir := statedir.CACluster(r.dir, caTestMesh, "cluster1")
	// Replace only the root files; the cluster directory keeps the old
	// intermediate.
	rootDir := statedir.CARoot(r.dir, caTestMesh)
	caRemove(t, filepath.Join(rootDir, "root-cert.pem"))
	caRemove(t, filepath.Join(rootDir, "root-key.pem"))
	delete(r.state, rootID)
	newRoot := r.mustApply(rootID, newCARoot(caTestMesh, fastCA(), ""))["certSHA256"]

	step := newCAIntermediate(caTestMesh, "cluster1", fastCA(), plans.CARootID(caTestMesh))
	caWantDrift(t, r.check(id, step), "ca-cert.pem is not signed by the mesh's current root CA")
	out := r.mustApply(id, step)
	if out["rootSHA256"] != newRoot {
		t.Errorf("rootSHA256 = %s, want %s", out["rootSHA256"], newRoot)
	}
	if err := pki.VerifyChain(caReadCert(t, filepath.Join(dir, "ca-cert.pem")), caReadCert(t, filepath.Join(rootDir, "root-cert.pem"))); err != nil {
		t.Error(err)
	}
	if !bytes.Equal([]byte(caReadFile(t, filepath.Join(dir, "root-cert.pem"))), []byte(caReadFile(t, filepath.Join(rootDir, "root-cert.pem")))) {
		t.Error("cluster root-cert.pem not updated")
	}
}

func TestCAIntermediateWithoutRoot(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(t *testing.T, r *caRun)
		wantDrift string
		wantErr   string
	}{
		{"no root yet", func(t *testing.T, r *caRun) {}, "root CA of mesh mesh1 not created yet", "the root step mesh/mesh1/ca/root must run first"},
		{"root key lost", func(t *testing.T, r *caRun) {
			r.mustApply(plans.CARootID(caTestMesh), newCARoot(caTestMesh, fastCA(), ""))
			caRemove(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-key.pem"))
		}, "ca-cert.pem missing", "root-key.pem: no such file"},
		{"root expired", func(t *testing.T, r *caRun) {
			cert, key, err := pki.NewRoot(context.Background(), pki.Options{KeySize: 2048, ValidityDays: 1, Now: time.Now().AddDate(0, 0, -2)})
			if err != nil {
				t.Fatal(err)
			}
			keyPEM, _ := pki.EncodeKey(key)
			caWrite(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-key.pem"), keyPEM, 0o600)
			caWrite(t, filepath.Join(statedir.CARoot(r.dir, caTestMesh), "root-cert.pem"), pki.EncodeCerts(cert), 0o644)
		}, "certificate expired on", "root-cert.pem: certificate expired on"},
		{"root not the recorded one", func(t *testing.T, r *caRun) {
			r.mustApply(plans.CARootID(caTestMesh), newCARoot(caTestMesh, fastCA(), ""))
			r.state[plans.CARootID(caTestMesh)]["certSHA256"] = strings.Repeat("ab", 32)
		}, "is not the root step mesh/mesh1/ca/root recorded (sha256 abababababababab…)", "is not the root step mesh/mesh1/ca/root recorded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newCARun(t)
			tt.setup(t, r)
			id := plans.CAIntermediateID("cluster1")
			step := newCAIntermediate(caTestMesh, "cluster1", fastCA(), plans.CARootID(caTestMesh))
			caWantDrift(t, r.check(id, step), tt.wantDrift)
			before := caSnapshot(t, r.dir)
			err := r.apply(id, step)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "ca intermediate:") {
				t.Fatalf("Apply: err = %v, want one containing %q and not restating the step (the engine names it)", err, tt.wantErr)
			}
			caSameSnapshot(t, "failed apply", before, caSnapshot(t, r.dir))
		})
	}
}
