package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// event is one line of apply -o json's event stream.
type event struct {
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	Step string    `json:"step"`
}

// applyEvents runs apply -o json and returns its events and exit code;
// with killAt, it SIGKILLs mcplan once that step has started.
func (w *world) applyEvents(t *testing.T, ctx context.Context, killAt string, args ...string) ([]event, int, string) {
	t.Helper()
	kill := func(ev event) bool { return killAt != "" && ev.Type == "started" && ev.Step == killAt }
	return w.applyEventsUntil(t, ctx, kill, args...)
}

// applyEventsUntil runs apply -o json and returns its events, exit code
// and output; once kill says so of an event (the last one returned), it
// SIGKILLs mcplan, releases the lock it left and returns exit code -1.
func (w *world) applyEventsUntil(t *testing.T, ctx context.Context, kill func(event) bool, args ...string) ([]event, int, string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, w.mcplan, append(append([]string{"apply", "-o", "json"}, args...), filepath.Join(w.dir, "plan.yaml"))...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var events []event
	var out strings.Builder
	sc := bufio.NewScanner(pipe)
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		var ev event
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Type == "" {
			continue
		}
		events = append(events, ev)
		if kill(ev) {
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			w.unlock(t)
			t.Logf("killed mcplan right after %s %s", ev.Step, ev.Type)
			return events, -1, out.String()
		}
	}
	err = cmd.Wait()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return events, code, out.String() + stderr.String()
}
