package plans

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in testdata/%s: %v", dir, err)
	}
	return files
}

func TestValidFixtures(t *testing.T) {
	for _, file := range fixtures(t, "valid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := LoadAndValidate(file)
			if err != nil {
				t.Fatalf("LoadAndValidate: %v", err)
			}
			if err := Validate(p); err != nil {
				t.Fatalf("Validate after defaults: %v", err)
			}
			out, err := MarshalEffective(p)
			if err != nil {
				t.Fatal(err)
			}
			// The effective plan parses strictly and is valid and stable.
			q, err := Parse(file, out)
			if err != nil {
				t.Fatalf("re-parse effective plan: %v\n%s", err, out)
			}
			if err := Validate(q); err != nil {
				t.Fatalf("effective plan invalid: %v", err)
			}
			again, err := MarshalEffective(q)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(out) {
				t.Errorf("defaults not idempotent:\n%s\nvs\n%s", out, again)
			}
			var ws []string
			for _, w := range Warnings(p) {
				ws = append(ws, w.String()+"\n")
			}
			golden.Check(t, strings.TrimSuffix(file, ".yaml")+".warnings", strings.Join(ws, ""))
		})
	}
}

func TestInvalidFixtures(t *testing.T) {
	files := fixtures(t, "invalid")
	if len(files) < 40 {
		t.Errorf("only %d invalid fixtures", len(files))
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := LoadAndValidate(file)
			if err == nil {
				t.Fatalf("no error; plan %+v", p)
			}
			var list Errors
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T is not plans.Errors: %v", err, err)
			}
			for _, e := range list {
				if e.File != file || e.Line == 0 || e.Column == 0 || e.Path == "" || e.Message == "" {
					t.Errorf("incomplete error %#v", e)
				}
			}
			var one *Error
			if !errors.As(err, &one) {
				t.Errorf("errors.As(*Error) failed")
			}
			golden.Check(t, strings.TrimSuffix(file, ".yaml")+".golden", err.Error()+"\n")
		})
	}
}

func TestEffectiveGolden(t *testing.T) {
	for _, file := range fixtures(t, "valid") {
		t.Run(filepath.Base(file), func(t *testing.T) {
			p, err := Load(file)
			if err != nil {
				t.Fatal(err)
			}
			out, err := MarshalEffective(p)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, strings.TrimSuffix(file, ".yaml")+".effective", string(out))
			// MarshalEffective leaves p alone.
			if p.Kubeconfig != nil && p.Kubeconfig.Context != "" && !strings.Contains(file, "single") {
				t.Errorf("MarshalEffective changed the plan")
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want not-exist", err)
	}
}

func goPlan() *Plan {
	return &Plan{
		APIVersion: APIVersion,
		Kind:       Kind,
		Metadata:   Metadata{Name: "go"},
		Hosts: []Host{
			{Name: "h1", Address: "10.0.0.1"},
			{Name: "h2", Address: "10.0.0.2"},
			{Name: "h3", Address: "10.1.0.3", SSH: &SSH{User: "admin", Port: 2200}},
			{Name: "h4", Address: "10.1.0.4"},
		},
		Networks: []Network{{Name: "a"}, {Name: "b"}},
		Clusters: []Cluster{
			{Name: "p1", Network: "a", Servers: []string{"h1"}},
			{Name: "r1", Network: "a", Servers: []string{"h2"}},
			{Name: "p2", Network: "b", Servers: []string{"h3"}, Agents: []string{"h4"}},
		},
		Meshes: []Mesh{{Name: "m", Model: ModelPrimaryRemote, Clusters: []string{"p1", "r1", "p2"}, Primaries: []string{"p1", "p2"}}},
	}
}

func TestGoPlanErrorsHaveNoPosition(t *testing.T) {
	p := goPlan()
	p.Clusters[1].Servers = []string{"nope"}
	p.Meshes[0].Primaries = nil
	err := Validate(p)
	want := `clusters[1].servers[0]: host "nope" is not declared in hosts` + "\n" +
		`meshes[0]: network "a" has clusters of this primary-remote mesh (p1, r1) but no primary (list one of them under primaries)` + "\n" +
		`meshes[0]: network "b" has clusters of this primary-remote mesh (p2) but no primary (list one of them under primaries)`
	if err == nil || err.Error() != want {
		t.Fatalf("got\n%v\nwant\n%s", err, want)
	}
}

func TestLookups(t *testing.T) {
	p := goPlan()
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	ApplyDefaults(p)
	if err := Validate(p); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ got, want any }{
		{p.Host("h2").Address, "10.0.0.2"},
		{p.Host("zz") == nil, true},
		{p.Cluster("p2").Network, "b"},
		{p.Network("a").Name, "a"},
		{p.Mesh("m").Name, "m"},
		{p.MeshOf("r1").Name, "m"},
		{p.MeshOf("zz") == nil, true},
		{p.IsPrimary("m", "p1"), true},
		{p.IsPrimary("m", "r1"), false},
		{p.PrimaryFor("m", "r1"), "p1"},
		{p.PrimaryFor("m", "p2"), "p2"},
		{p.PrimaryFor("m", "zz"), ""},
		{strings.Join(p.Cluster("p2").Hosts(), ","), "h3,h4"},
		{p.HostSSH("h3").User, "admin"},
		{p.HostSSH("h3").Port, 2200},
		{p.HostSSH("h3").ConnectTimeout, "10s"},
		{p.HostSSH("h1").User, "root"},
		{p.HostSSH("h1").IdentityFile, DefaultIdentityFile},
		{p.Cluster("p2").API.MeshAddress, "10.1.0.3"},
		{p.Host("h4").PrivateIP, "10.1.0.4"},
		{filepath.IsAbs(p.StateDir()), true},
		{filepath.Base(p.StateDir()), ".mcplan"},
		{filepath.Base(p.KubeconfigPath()), "kubeconfig"},
		{*p.Meshes[0].Verify.Enabled, true},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %v, want %v", i, tt.got, tt.want)
		}
	}
	agent := true
	p.Hosts[0].SSH = &SSH{UseAgent: &agent}
	if s := p.HostSSH("h1"); s.IdentityFile != "" || !*s.UseAgent {
		t.Errorf("agent host inherits default key: %+v", s)
	}
}

func TestDirAndStateDir(t *testing.T) {
	p, err := LoadAndValidate("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	wd, _ := os.Getwd()
	if want := filepath.Join(wd, "testdata", "valid"); p.Dir() != want {
		t.Errorf("Dir = %s, want %s", p.Dir(), want)
	}
	if want := filepath.Join(wd, "testdata", "valid", ".mcplan"); p.StateDir() != want {
		t.Errorf("StateDir = %s, want %s", p.StateDir(), want)
	}
	if p.Clusters[0].Network != DefaultNetwork || len(p.Networks) != 1 {
		t.Errorf("default network not applied: %+v %+v", p.Networks, p.Clusters)
	}
}

func TestSuggest(t *testing.T) {
	cands := []string{"network", "servers", "agents", "k3s", "api", "eastWest", "name"}
	for got, want := range map[string]string{
		"netwrk": "network", "Network": "network", "server": "servers", "eastwest": "eastWest",
		"k8s": "k3s", "zzzzzz": "", "apis": "api", "": "",
	} {
		if s := suggest(got, cands); s != want {
			t.Errorf("suggest(%q) = %q, want %q", got, s, want)
		}
	}
}

func TestEffectiveQuotesNumericStrings(t *testing.T) {
	p := goPlan()
	p.Meshes[0].Istio = Istio{Tag: "1.24", Hub: "123", Values: map[string]any{"x": "true", "y": 1}}
	p.Hosts[0].SSH = &SSH{ProxyJump: "null"}
	out, err := MarshalEffective(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse("effective.yaml", out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if q.Meshes[0].Istio.Tag != "1.24" || q.Meshes[0].Istio.Hub != "123" || q.Hosts[0].SSH.ProxyJump != "null" {
		t.Errorf("round trip changed strings: %+v", q.Meshes[0].Istio)
	}
	if p.Kubeconfig != nil || p.Meshes[0].Verify.Enabled != nil {
		t.Errorf("MarshalEffective changed its argument")
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{File: "p.yaml", Line: 3, Column: 5, Path: "hosts[0].name", Message: "bad", Hint: "fix it"}, "p.yaml:3:5: hosts[0].name: bad (fix it)"},
		{Error{File: "p.yaml", Path: "hosts", Message: "bad"}, "p.yaml: hosts: bad"},
		{Error{Message: "bad"}, "(root): bad"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

func TestAliasBombIsRejected(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: mcplan.io/v1alpha1\nkind: Plan\nmeshes:\n  - name: m\n    istio:\n      values:\n")
	b.WriteString("        l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 7; i++ {
		prev := "*l" + strconv.Itoa(i-1)
		fmt.Fprintf(&b, "        l%d: &l%d [%s]\n", i, i, strings.Repeat(prev+", ", 9)+prev)
	}
	_, err := Parse("bomb.yaml", []byte(b.String()))
	if err == nil || !strings.Contains(err.Error(), "document too large") {
		t.Fatalf("got %v", err)
	}
}

func TestParseRemoteSecretID(t *testing.T) {
	for _, tc := range []struct {
		mesh, src, dst string
	}{{"mesh1", "cluster1", "cluster2"}, {"m", "a-b", "c"}} {
		mesh, src, dst, ok := ParseRemoteSecretID(RemoteSecretID(tc.mesh, tc.src, tc.dst))
		if !ok || mesh != tc.mesh || src != tc.src || dst != tc.dst {
			t.Errorf("round trip of %v: %q %q %q %v", tc, mesh, src, dst, ok)
		}
	}
	for _, id := range []string{"cluster/c1/istio/controlplane", "mesh/m/remotesecret/a", "mesh/m/remotesecret/->b", "mesh//remotesecret/a->b", "mesh/m/x/remotesecret/a->b"} {
		if _, _, _, ok := ParseRemoteSecretID(id); ok {
			t.Errorf("%q parsed as a remote secret ID", id)
		}
	}
}
