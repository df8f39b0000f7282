package steps

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
)

// renderEveryExample renders the control plane and east-west gateway of
// every cluster of every mesh of every example, as apply would.
func renderEveryExample(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "examples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	ctx := context.Background()
	for _, file := range files {
		p, err := plans.LoadAndValidate(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range plans.Steps(p) {
			var objects int
			switch spec.Kind {
			case plans.KindIstioControlPlane:
				s := NewIstioControlPlane(p, spec, nil)
				deps := map[string]map[string]string{}
				if s.primary != "" {
					deps[plans.IstioExposeID(s.primary)] = map[string]string{"address": "192.0.2.1"}
				}
				env := engine.NewEnv(spec.ID, t.TempDir(), nil, deps, nil)
				cp, err := s.wanted(env)
				if err != nil {
					t.Fatalf("%s: %s: %v", file, spec.ID, err)
				}
				m, err := s.render(ctx, env, cp)
				if err != nil {
					t.Fatalf("%s: %s: %v", file, spec.ID, err)
				}
				objects = len(m.Objects)
			case plans.KindIstioEastWest:
				m, err := NewIstioEastWest(p, spec, nil).render(ctx)
				if err != nil {
					t.Fatalf("%s: %s: %v", file, spec.ID, err)
				}
				objects = len(m.Objects)
			default:
				continue
			}
			if objects == 0 {
				t.Errorf("%s: %s rendered nothing", file, spec.ID)
			}
			t.Logf("%s: %s: %d objects", filepath.Base(file), spec.ID, objects)
		}
	}
}

// TestRenderEveryExampleWithoutNetwork renders every example in a new,
// empty network namespace (unshare -n): rendering must need nothing but
// the charts built into mcplan.
func TestRenderEveryExampleWithoutNetwork(t *testing.T) {
	if os.Getenv("MCPLAN_TEST_IN_EMPTY_NETNS") == "1" {
		renderEveryExample(t)
		return
	}
	if testing.Short() {
		t.Skip("renders every example in a child process; skipped with -short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for unshare -n (a network namespace without any interface but a down loopback)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("needs unshare (util-linux)")
	}
	cmd := exec.Command(unshare, "-n", os.Args[0], "-test.run=^TestRenderEveryExampleWithoutNetwork$", "-test.v")
	cmd.Env = append(os.Environ(), "MCPLAN_TEST_IN_EMPTY_NETNS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("render without network: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
