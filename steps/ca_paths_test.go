package steps

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/pki"
	"mcplan.io/mcplan/steps/statedir"
)

func TestCAPaths(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{statedir.CARoot("/s", "mesh1"), "/s/ca/mesh1"},
		{statedir.CACluster("/s", "mesh1", "c1"), "/s/ca/mesh1/c1"},
		{plans.CARootID("mesh1"), "mesh/mesh1/ca/root"},
		{plans.CAIntermediateID("c1"), "cluster/c1/ca/intermediate"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestCANamesThatAreNotDirectories(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"", ".", "..", "a/b", `a\b`} {
		t.Run(name, func(t *testing.T) {
			env := engine.NewEnv("x", t.TempDir(), nil, nil, nil)
			if _, err := newCARoot(name, fastCA(), "").Check(ctx, env); err == nil {
				t.Error("root Check: no error")
			}
			if err := newCARoot(name, fastCA(), "").Apply(ctx, env); err == nil {
				t.Error("root Apply: no error")
			}
			if err := newCAIntermediate("mesh1", name, fastCA(), plans.CARootID("mesh1")).Apply(ctx, env); err == nil {
				t.Error("intermediate Apply: no error")
			}
		})
	}
}

// fastCA is a plan's CA section with test-sized keys.
func fastCA() plans.CA { return plans.CA{KeySize: 2048} }

// caRun runs steps the way the executor does for one step and returns
// its outputs: previous holds the step's outputs of the last apply, deps
// those of other steps.
type caRun struct {
	t     *testing.T
	dir   string
	state map[string]map[string]string // recorded outputs by step ID
}

func newCARun(t *testing.T) *caRun {
	return &caRun{t: t, dir: t.TempDir(), state: map[string]map[string]string{}}
}

// clone copies the state directory and the recorded outputs, so that
// table cases can start from one mesh made once (RSA keys are slow).
func (r *caRun) clone(t *testing.T) *caRun {
	t.Helper()
	c := &caRun{t: t, dir: t.TempDir(), state: map[string]map[string]string{}}
	for id, out := range r.state {
		c.state[id] = map[string]string{}
		for k, v := range out {
			c.state[id][k] = v
		}
	}
	err := filepath.WalkDir(r.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(r.dir, path)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		to := filepath.Join(c.dir, rel)
		if d.IsDir() {
			return os.MkdirAll(to, fi.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, fi.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
	// Outputs that name files point into the copy.
	for _, out := range c.state {
		for k, v := range out {
			if strings.HasPrefix(v, r.dir) {
				out[k] = c.dir + strings.TrimPrefix(v, r.dir)
			}
		}
	}
	return c
}

func (r *caRun) env(id string) *engine.Env {
	return engine.NewEnv(id, r.dir, r.state[id], r.state, nil)
}

// check runs Check of step id.
func (r *caRun) check(id string, s engine.Step) engine.Drift {
	r.t.Helper()
	d, err := s.Check(context.Background(), r.env(id))
	if err != nil {
		r.t.Fatalf("%s: Check: %v", id, err)
	}
	return d
}

// apply runs Apply of step id and records its outputs on success.
func (r *caRun) apply(id string, s engine.Step) error {
	env := r.env(id)
	if err := s.Apply(context.Background(), env); err != nil {
		return err
	}
	for k, v := range env.Outputs() {
		if strings.Contains(v, "PRIVATE KEY") || strings.Contains(v, "CERTIFICATE") {
			r.t.Errorf("%s: output %s holds PEM: %q", id, k, v)
		}
	}
	r.state[id] = env.Outputs()
	return nil
}

func (r *caRun) mustApply(id string, s engine.Step) map[string]string {
	r.t.Helper()
	if err := r.apply(id, s); err != nil {
		r.t.Fatalf("%s: Apply: %v", id, err)
	}
	return r.state[id]
}

// snapshot returns every file under dir with its content and mode.
func caSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if d.IsDir() {
			files[rel+"/"] = fi.Mode().Perm().String()
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files[rel] = fi.Mode().Perm().String() + " " + string(data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func caSameSnapshot(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %s changed or disappeared", what, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			t.Errorf("%s: %s appeared", what, k)
		}
	}
}

func caWantDrift(t *testing.T, d engine.Drift, reason string) {
	t.Helper()
	if reason == "" {
		if !d.InSync {
			t.Errorf("Check = Drifted(%q), want InSync", d.Reason)
		}
		return
	}
	if d.InSync || !strings.Contains(d.Reason, reason) {
		t.Errorf("Check = %+v, want Drifted with a reason containing %q", d, reason)
	}
}

func caRemove(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func caWrite(t *testing.T, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func caReadFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func caReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	c, err := pki.DecodeCert([]byte(caReadFile(t, path)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}
