package progress

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/internal/golden"
)

var t0 = time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)

// events is one small apply: a root CA made, an intermediate failing, its
// dependent blocked, an unchanged step and a step left out by a stop.
func events() []engine.Event {
	return []engine.Event{
		{Time: t0, Type: engine.EventPlanned, Step: "mesh/mesh1/ca/root", Action: engine.ActionCreate, Message: "not applied yet"},
		{Time: t0, Type: engine.EventStarted, Step: "mesh/mesh1/ca/root", Action: engine.ActionCreate, Message: "not applied yet"},
		{Time: t0.Add(time.Second), Type: engine.EventLog, Step: "mesh/mesh1/ca/root", Message: "made root CA"},
		{Time: t0.Add(2 * time.Second), Type: engine.EventSucceeded, Step: "mesh/mesh1/ca/root", Action: engine.ActionCreate, Elapsed: 2345 * time.Millisecond},
		{Time: t0.Add(2 * time.Second), Type: engine.EventUnchanged, Step: "host/vm1/facts", Action: engine.ActionNoChange, Elapsed: 3 * time.Millisecond},
		{Time: t0.Add(3 * time.Second), Type: engine.EventStarted, Step: "cluster/cluster1/ca/intermediate", Action: engine.ActionUpdate, Message: "inputs changed"},
		{Time: t0.Add(4 * time.Second), Type: engine.EventFailed, Step: "cluster/cluster1/ca/intermediate", Action: engine.ActionUpdate, Elapsed: 1500 * time.Millisecond, Error: "mesh mesh1: root-cert.pem missing"},
		{Time: t0.Add(4 * time.Second), Type: engine.EventBlocked, Step: "cluster/cluster1/istio/cacerts", Message: "not run: cluster/cluster1/ca/intermediate failed"},
		{Time: t0.Add(4 * time.Second), Type: engine.EventCancelled, Step: "mesh/mesh1/verify/sample", Message: "not started: the run was stopped"},
	}
}

func TestPlainLines(t *testing.T) {
	for _, verbose := range []bool{false, true} {
		name := "plain.txt"
		if verbose {
			name = "plain-verbose.txt"
		}
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			p := NewPlain(&b)
			p.Verbose = verbose
			for _, ev := range events() {
				p.Sink(ev)
			}
			golden.Check(t, filepath.Join("testdata", name), b.String())
		})
	}
}

func TestJSONLinesAreOneObjectPerEvent(t *testing.T) {
	var b bytes.Buffer
	j := NewJSONLines(&b)
	for _, ev := range events() {
		j.Sink(ev)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != len(events()) {
		t.Fatalf("%d lines for %d events", len(lines), len(events()))
	}
	if !strings.Contains(lines[6], `"type":"failed"`) || !strings.Contains(lines[6], `"error":"mesh mesh1: root-cert.pem missing"`) {
		t.Errorf("failed event line: %s", lines[6])
	}
}

func TestLiveViewKeepsFinishedLinesAndClearsFooter(t *testing.T) {
	var b bytes.Buffer
	l := NewLive(&b, 5)
	l.now = func() time.Time { return t0.Add(10 * time.Second) }
	for _, ev := range events() {
		l.Sink(ev)
	}
	out := b.String()
	for _, frag := range []string{"mesh/mesh1/ca/root  done after 2.3s", "FAILED after 1.5s: mesh mesh1: root-cert.pem missing", "1 running", "updating"} {
		if !strings.Contains(out, frag) {
			t.Errorf("live output lacks %q", frag)
		}
	}
	if l.footer != 0 || len(l.running) != 0 {
		t.Errorf("after every step ended: footer %d lines, %d running", l.footer, len(l.running))
	}
}

func TestWritePlan(t *testing.T) {
	rep := &engine.Report{
		Steps: []engine.StepResult{
			{ID: "mesh/mesh1/ca/root", Kind: "ca/root", Decision: engine.Decision{Action: engine.ActionNoChange}, Outcome: engine.EventPlanned},
			{ID: "cluster/cluster1/ca/intermediate", Kind: "ca/intermediate", Decision: engine.Decision{Action: engine.ActionUpdate, Reason: "drift: ca-cert.pem missing"}, Outcome: engine.EventPlanned},
			{ID: "cluster/cluster1/istio/controlplane", Kind: "istio/controlplane", Decision: engine.Decision{Action: engine.ActionUpdate, Reason: "inputs changed: ~ ConfigMap istio-system/istio",
				Details: []engine.Change{
					{Object: "~ ConfigMap istio-system/istio", Fields: []string{"~ data.a: 1 → 2", "~ data.b: 1 → 2", "~ data.c: 1 → 2", "~ data.d: 1 → 2"}},
					{Object: "+ Secret istio-system/x"},
				}}, Outcome: engine.EventPlanned},
			{ID: "host/vm1/facts", Kind: "host/facts", Decision: engine.Decision{Action: engine.ActionCreate, Reason: "not applied yet"}, Outcome: engine.EventPlanned},
			{ID: "host/vm2/facts", Kind: "host/facts", Outcome: engine.EventFailed, Err: errors.New("ssh: connection refused")},
		},
		Removals: []engine.RemovalResult{
			{ID: "cluster/old/istio/controlplane", Kind: "istio/controlplane", HasRemover: true, Removes: "deletes the 14 objects of its inventory", Outcome: engine.EventPlanned},
			{ID: "mesh/old/ca/root", Kind: "ca/root", Outcome: engine.EventPlanned},
		},
		Forgotten: []string{"cluster/old/istio/controlplane", "mesh/old/ca/root"},
		Removing:  []string{"cluster/old/istio/controlplane"},
	}
	var b bytes.Buffer
	WritePlan(&b, rep, PlanView{Offline: true})
	golden.Check(t, filepath.Join("testdata", "plan.txt"), b.String())
	b.Reset()
	WritePlan(&b, rep, PlanView{Full: true})
	if !strings.Contains(b.String(), "~ data.d: 1 → 2") || strings.Contains(b.String(), "more changed fields") {
		t.Errorf("--full does not show every field:\n%s", b.String())
	}

	b.Reset()
	WritePlan(&b, &engine.Report{Steps: rep.Steps[:1]}, PlanView{})
	if !strings.Contains(b.String(), "No changes.") {
		t.Errorf("plan without changes does not say so:\n%s", b.String())
	}
}

// TestEventTextFromHostsCannotDriveTheTerminal: a log line or error that
// carries escape sequences (from a host's command output, say) is shown
// with them escaped, in the plain and the live view.
func TestEventTextFromHostsCannotDriveTheTerminal(t *testing.T) {
	evs := []engine.Event{
		{Type: engine.EventLog, Step: "host/h1/k3s/server", Message: "output \x1b]0;owned\x07\x1b[2Jgone\rover"},
		{Type: engine.EventFailed, Step: "host/h1/k3s/server", Error: "exit 1: \x1b[1A\x1b[2K"},
	}
	var plain, live bytes.Buffer
	p := NewPlain(&plain)
	l := NewLive(&live, 1)
	for _, ev := range evs {
		p.Sink(ev)
		l.Sink(ev)
	}
	for name, out := range map[string]string{"plain": plain.String(), "live": live.String()} {
		lines := strings.SplitAfter(out, "\n")
		for _, line := range lines {
			if i := strings.Index(line, "host/h1"); i >= 0 { // after the live view's own coloured mark
				if strings.ContainsAny(line[i:], "\x1b\x07\r") {
					t.Errorf("%s view printed a control character: %q", name, line)
				}
			}
		}
		if !strings.Contains(out, `output \x1b]0;owned\a\x1b[2Jgone\rover`) {
			t.Errorf("%s view: %q", name, out)
		}
	}
}
