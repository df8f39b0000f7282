package e2e

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mcplan.io/mcplan/internal/golden"
)

// checkGoldenPlan runs an offline `mcplan plan --detailed-exitcode` with
// args, wants exit 2 (changes), and compares its output with
// testdata/<name>.txt after the world's own paths and addresses are
// replaced by $DIR and <host name>: what plan shows of a removal or a
// destroy then reads the same on every test world.
func (w *world) checkGoldenPlan(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	args = append(append([]string{"plan", "--offline", "--detailed-exitcode"}, args...), filepath.Join(w.dir, "plan.yaml"))
	out, err := exec.CommandContext(ctx, w.mcplan, args...).Output()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 {
		t.Fatalf("mcplan %s: %v, want exit 2\n%s", strings.Join(args, " "), err, out)
	}
	golden.Check(t, filepath.Join("testdata", name+".txt"), w.normalize(string(out)))
}

// normalize replaces what differs between test worlds in a command's
// output: the world's directory, and each host's address by its name.
func (w *world) normalize(out string) string {
	pairs := []string{w.dir, "$DIR"}
	for _, h := range w.bed.Hosts {
		pairs = append(pairs, h.Address, "<"+h.Name+">")
	}
	return strings.NewReplacer(pairs...).Replace(out)
}
