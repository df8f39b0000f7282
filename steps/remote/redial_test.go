package remote

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// dropConnections kills the sshd processes serving connections (the
// listener's children), as a host whose sshd child dies or is killed does:
// the client's connection ends; what the sessions ran goes on.
func (s *sshd) dropConnections() {
	s.t.Helper()
	out, err := exec.Command("pkill", "-KILL", "-P", strconv.Itoa(s.cmd.Process.Pid)).CombinedOutput()
	if err != nil {
		s.t.Fatalf("pkill the sshd children: %v %s", err, out)
	}
}

// waitFile waits until path holds want lines.
func waitFile(t *testing.T, path string, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if data, err := os.ReadFile(path); err == nil && strings.Count(string(data), "\n") >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never had %d lines", path, want)
}

// TestRunSurvivesALostConnection: the connection is cut while a command
// runs; Run dials again (the host key checked again), stops what is left
// of the first run, runs the command again and returns its result; the
// attempt is in the handle's log. A command marked Once is not run again.
func TestRunSurvivesALostConnection(t *testing.T) {
	s := startSSHD(t)
	c := dial(t, s.endpoint(), DialOptions{})
	var mu sync.Mutex
	var logs []string
	h := c.WithLogf(func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		logs = append(logs, fmt.Sprintf(f, a...))
	})
	marks := filepath.Join(t.TempDir(), "marks")
	command := fmt.Sprintf("echo start >> %[1]s; sleep 2; echo end >> %[1]s; echo done", ShellQuote(marks))

	type result struct {
		res Result
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := h.Run(context.Background(), command, RunOptions{})
		done <- result{res, err}
	}()
	waitFile(t, marks, 1)
	s.dropConnections()
	r := <-done
	if r.err != nil || strings.TrimSpace(r.res.Stdout) != "done" {
		t.Fatalf("Run after a lost connection: %q %v; logs %q", r.res.Stdout, r.err, logs)
	}
	time.Sleep(2500 * time.Millisecond) // the first run would have ended by now
	if data, _ := os.ReadFile(marks); string(data) != "start\nstart\nend\n" {
		t.Errorf("marks %q: want two starts and one end (the first run stopped before the second)", data)
	}
	mu.Lock()
	if got := strings.Join(logs, "\n"); !strings.Contains(got, "connection lost while running") || !strings.Contains(got, "(attempt 2 of 3)") {
		t.Errorf("logs %q", logs)
	}
	mu.Unlock()
	if c.dialed != 2 {
		t.Errorf("%d connections made, want 2", c.dialed)
	}
	// The new connection serves the next command.
	if res, err := c.Run(context.Background(), "echo again", RunOptions{}); err != nil || res.Stdout != "again\n" {
		t.Errorf("after the redial: %q %v", res.Stdout, err)
	}

	// Once: not run again.
	os.Remove(marks)
	go func() {
		res, err := h.Run(context.Background(), command, RunOptions{Once: true})
		done <- result{res, err}
	}()
	waitFile(t, marks, 1)
	s.dropConnections()
	r = <-done
	if r.err == nil || !strings.Contains(r.err.Error(), "the command is not run again: it may not run twice") {
		t.Errorf("a Once command after a lost connection: %v", r.err)
	}

	// The connection the Once command lost is replaced by the next Run.
	if _, err := h.Run(context.Background(), "true", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	// An upload whose connection drops is sent again from its start.
	before := c.dialed
	data := []byte(strings.Repeat("mcplan:", 10<<20))
	target := filepath.Join(t.TempDir(), "big")
	uploaded := make(chan error, 1)
	go func() {
		_, err := h.UploadBytes(context.Background(), data, target, 0o600)
		uploaded <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(target + ".mcplan-upload"); err == nil {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.dropConnections()
	if err := <-uploaded; err != nil {
		t.Fatalf("upload after a lost connection: %v", err)
	}
	if got, _ := os.ReadFile(target); string(got) != string(data) {
		t.Errorf("uploaded %d bytes, want %d", len(got), len(data))
	}
	if c.dialed != before+1 {
		t.Errorf("%d connections made during the upload, want 1: the drop did not cut it", c.dialed-before)
	}
}
