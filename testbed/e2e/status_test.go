package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"mcplan.io/mcplan/steps/status"
)

// statusRun is one run of `mcplan status`: its report (-o json), exit
// code and output.
type statusRun struct {
	report status.Report
	code   int
	output string
}

// runStatus runs `mcplan status -o json` on the world's plan.
func (w *world) runStatus(t *testing.T, ctx context.Context) statusRun {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, "status", "-o", "json", filepath.Join(w.dir, "plan.yaml"))
	stdout, err := cmd.Output()
	run := statusRun{output: string(stdout)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		run.code = exit.ExitCode()
		run.output += string(exit.Stderr)
	case err != nil:
		t.Fatalf("mcplan status: %v", err)
	}
	if err := json.Unmarshal(stdout, &run.report); err != nil {
		t.Fatalf("mcplan status -o json: %v\n%s", err, run.output)
	}
	return run
}

// statusText is `mcplan status`'s text output, for the log.
func (w *world) statusText(ctx context.Context) string {
	out, _ := exec.CommandContext(ctx, w.mcplan, "status", filepath.Join(w.dir, "plan.yaml")).CombinedOutput()
	return string(out)
}

// remoteRow is the row of source in the istiod of reader's plan revision,
// nil when status lists none.
func remoteRow(r status.Report, reader, source string) *status.RemoteCluster {
	for _, c := range r.Clusters {
		if c.Name != reader {
			continue
		}
		for _, ist := range c.Istiods {
			if !ist.Expected {
				continue
			}
			for i := range ist.RemoteClusters {
				if ist.RemoteClusters[i].ID == source {
					return &ist.RemoteClusters[i]
				}
			}
		}
	}
	return nil
}

// waitStatus runs status until done says its run is the awaited one, for
// at most timeout, and returns the last run.
func (w *world) waitStatus(t *testing.T, ctx context.Context, timeout time.Duration, done func(statusRun) bool) (statusRun, bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		run := w.runStatus(t, ctx)
		if done(run) {
			return run, true
		}
		if time.Now().After(deadline) {
			return run, false
		}
		time.Sleep(2 * time.Second)
	}
}
