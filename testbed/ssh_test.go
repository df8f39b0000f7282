package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// dial connects to h as root with the run's key, checking the host key
// against knownHostsPath.
func dial(t *testing.T, b *Bed, h Host, knownHostsPath string) (*ssh.Client, error) {
	t.Helper()
	keyData, err := os.ReadFile(b.ClientKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", h.SSHAddr(), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: mustKnownHosts(t, knownHostsPath),
		Timeout:         10 * time.Second,
	})
}

// mustKnownHosts is the host key check of a known_hosts file.
func mustKnownHosts(t *testing.T, path string) ssh.HostKeyCallback {
	t.Helper()
	check, err := knownhosts.New(path)
	if err != nil {
		t.Fatal(err)
	}
	return check
}

// run runs cmd on c and returns its standard output, failing the test
// when it fails or takes longer than timeout.
func run(t *testing.T, c *ssh.Client, cmd string, timeout time.Duration) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var stdout, stderr bytes.Buffer
	s.Stdout, s.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%q: %v: %s", cmd, err, stderr.String())
		}
	case <-time.After(timeout):
		t.Fatalf("%q: still running after %s", cmd, timeout)
	}
	return strings.TrimSpace(stdout.String())
}

// checkHosts is what every kind of host must show: its hostname over SSH
// with verified host keys, a private /etc, the wrong host key refused, and
// a backgrounded command with redirected output not holding the session.
func checkHosts(t *testing.T, b *Bed) []*ssh.Client {
	clients := make([]*ssh.Client, len(b.Hosts))
	for i, h := range b.Hosts {
		c, err := dial(t, b, h, b.KnownHostsPath)
		if err != nil {
			t.Fatalf("ssh %s: %v", h.Name, err)
		}
		t.Cleanup(func() { c.Close() })
		clients[i] = c
		if got := run(t, c, "hostname", 10*time.Second); got != h.Name {
			t.Errorf("%s: hostname = %q", h.Name, got)
		}
	}

	probe := "/etc/mcplan-testbed-probe-" + b.Prefix
	run(t, clients[0], "echo written-on-h1 > "+probe+" && cat "+probe, 10*time.Second)
	if got := run(t, clients[1], "test -e "+probe+" && echo present || echo absent", 10*time.Second); got != "absent" {
		t.Errorf("h2 sees the file h1 wrote in /etc: %q", got)
	}
	if _, err := os.Stat(probe); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the machine sees the file h1 wrote in /etc: %v", err)
	}
	if got := run(t, clients[0], "cat "+probe, 10*time.Second); got != "written-on-h1" {
		t.Errorf("h1 lost its own file: %q", got)
	}

	// h1's address with h2's key: the client must refuse h1.
	wrong := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("%s %s\n", b.Hosts[0].Address, b.Hosts[1].HostKey)
	if err := os.WriteFile(wrong, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := dial(t, b, b.Hosts[0], wrong)
	var keyErr *knownhosts.KeyError
	if err == nil {
		c.Close()
		t.Error("a host with the wrong key was accepted")
	} else if !errors.As(err, &keyErr) || len(keyErr.Want) == 0 {
		t.Errorf("wrong host key: want a knownhosts key mismatch, got %v", err)
	}

	// Root logs in by key only: a password (even with keyboard-interactive
	// offered) is refused before any password is checked.
	pw, err := ssh.Dial("tcp", b.Hosts[0].SSHAddr(), &ssh.ClientConfig{
		User: "root",
		Auth: []ssh.AuthMethod{ssh.Password("root"), ssh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"root"}, nil
		})},
		HostKeyCallback: mustKnownHosts(t, b.KnownHostsPath),
		Timeout:         10 * time.Second,
	})
	if err == nil {
		pw.Close()
		t.Error("a password login as root was accepted")
	} else if !strings.Contains(err.Error(), "unable to authenticate") {
		t.Errorf("password login: want an authentication refusal, got %v", err)
	}

	// The default route is unreachable: a route lookup (no packet sent)
	// of a documentation address finds no way out.
	for i, c := range clients {
		// An unreachable route answers EHOSTUNREACH ("No route to host").
		if got := run(t, c, "ip route get 198.51.100.1 2>&1 || true", 10*time.Second); !strings.Contains(got, "No route to host") {
			t.Errorf("%s: ip route get 198.51.100.1 = %q, want no route to host", b.Hosts[i].Name, got)
		}
		if got := run(t, c, "ip route show default", 10*time.Second); got != "unreachable default" {
			t.Errorf("%s: default route %q, want unreachable default", b.Hosts[i].Name, got)
		}
	}

	start := time.Now()
	run(t, clients[0], "nohup sleep 300 >/dev/null 2>&1 </dev/null & echo started", 10*time.Second)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("backgrounded command held the session for %s", d)
	}
	if got := run(t, clients[0], "pgrep -x sleep >/dev/null && echo running", 10*time.Second); got != "running" {
		t.Errorf("backgrounded sleep is not running on h1: %q", got)
	}
	return clients
}

func TestLightHosts(t *testing.T) {
	start := time.Now()
	b := ForTest(t, 3, KindLight)
	t.Logf("3 light hosts up in %s (run %s, %s)", time.Since(start).Round(time.Millisecond), b.Prefix, b.Subnet)
	clients := checkHosts(t, b)
	if got := run(t, clients[0], "cat /proc/1/comm", 10*time.Second); got != "sshd" {
		t.Errorf("light host PID 1 is %q, want sshd", got)
	}
	// /tmp and /run are private too.
	run(t, clients[0], "touch /tmp/h1-only /root/h1-only", 10*time.Second)
	if got := run(t, clients[1], "ls /tmp/h1-only /root/h1-only 2>/dev/null | wc -l", 10*time.Second); got != "0" {
		t.Errorf("h2 sees h1's /tmp or /root files: %q", got)
	}
}

func TestSystemdHosts(t *testing.T) {
	start := time.Now()
	b := ForTest(t, 3, KindSystemd)
	t.Logf("3 systemd hosts up in %s (run %s, %s)", time.Since(start).Round(time.Millisecond), b.Prefix, b.Subnet)
	clients := checkHosts(t, b)
	ids := map[string]bool{}
	for i, c := range clients {
		state := run(t, c, "systemctl is-system-running --wait || true", 60*time.Second)
		if state != "running" && state != "degraded" {
			t.Errorf("%s: systemctl is-system-running = %q", b.Hosts[i].Name, state)
		}
		if got := run(t, c, "cat /proc/1/comm", 10*time.Second); got != "systemd" {
			t.Errorf("%s: PID 1 is %q, want systemd", b.Hosts[i].Name, got)
		}
		ids[run(t, c, "cat /etc/machine-id", 10*time.Second)] = true
	}
	if len(ids) != len(clients) {
		t.Errorf("hosts share a machine-id: %v", ids)
	}
}

// TestBedRefusesBadOptions needs no root.
func TestBedRefusesBadOptions(t *testing.T) {
	for _, o := range []Options{{Hosts: 0}, {Hosts: MaxHosts + 1}, {Hosts: 1, Kind: "vm"}} {
		if _, err := Up(context.Background(), o); err == nil {
			t.Errorf("Up(%+v) succeeded", o)
		}
	}
}
