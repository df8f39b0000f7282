package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

func dial(t *testing.T, ep Endpoint, opts DialOptions) *Client {
	t.Helper()
	c, err := Dial(context.Background(), ep, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestRunCapturesOutputAndExitStatus(t *testing.T) {
	s := startSSHD(t)
	c := dial(t, s.endpoint(), DialOptions{})
	var mu sync.Mutex
	var lines []string
	res, err := c.Run(context.Background(), "echo one; echo two >&2; printf three", RunOptions{Output: func(stream, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, stream+":"+line)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "one\nthree" || res.Stderr != "two\n" {
		t.Errorf("stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	if got := strings.Join(lines, ","); !strings.Contains(got, "stdout:one") || !strings.Contains(got, "stderr:two") || !strings.Contains(got, "stdout:three") {
		t.Errorf("streamed lines %q", got)
	}
	_, err = c.Run(context.Background(), "echo bad thing >&2; exit 3", RunOptions{})
	var exit *ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 3 || !strings.Contains(err.Error(), "bad thing") || !strings.Contains(err.Error(), "host vm1 (127.0.0.1:") {
		t.Errorf("err = %v", err)
	}
}

func TestManySessionsOnOneConnection(t *testing.T) {
	s := startSSHD(t)
	c := dial(t, s.endpoint(), DialOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Run(context.Background(), fmt.Sprintf("echo %d", i), RunOptions{})
			if err == nil && strings.TrimSpace(res.Stdout) != fmt.Sprint(i) {
				err = fmt.Errorf("session %d got %q", i, res.Stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestHostKeyVerification(t *testing.T) {
	s := startSSHD(t)
	t.Run("unknown host is refused with advice", func(t *testing.T) {
		ep := s.endpoint()
		ep.KnownHosts = filepath.Join(t.TempDir(), "empty")
		os.WriteFile(ep.KnownHosts, nil, 0o644)
		_, err := Dial(context.Background(), ep, DialOptions{})
		if err == nil || !strings.Contains(err.Error(), "is not in") || !strings.Contains(err.Error(), "ssh.knownHosts: pin") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("changed key is refused and not retried", func(t *testing.T) {
		ep := s.endpoint()
		other := writeKey(t, filepath.Join(t.TempDir(), "other"))
		ep.KnownHosts = filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(ep.KnownHosts, []byte(fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(other))), 0o644)
		attempts := 0
		_, err := Dial(context.Background(), ep, DialOptions{Logf: func(string, ...any) { attempts++ }})
		var hk *HostKeyError
		if !errors.As(err, &hk) {
			t.Fatalf("err = %v, want *HostKeyError", err)
		}
		if hk.Presented != ssh.FingerprintSHA256(s.hostKey) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(other)) {
			t.Errorf("error shows %q; want both fingerprints", err)
		}
		if attempts != 0 {
			t.Errorf("a host key mismatch was retried %d times", attempts)
		}
	})
	t.Run("pin on first use, refuse a new key later", func(t *testing.T) {
		trust := &memTrust{}
		ep := s.endpoint()
		ep.KnownHosts = KnownHostsPin
		var logs []string
		c := dial(t, ep, DialOptions{Trust: trust, Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
		c.Close()
		if pinned, ok := trust.Trusted(pinKey(ep)); !ok || !strings.Contains(pinned, "ssh-ed25519") {
			t.Fatalf("nothing pinned: %v", trust.m)
		}
		if !strings.Contains(strings.Join(logs, "\n"), "pinned host key "+ssh.FingerprintSHA256(s.hostKey)) {
			t.Errorf("logs %q", logs)
		}
		dial(t, ep, DialOptions{Trust: trust}).Close() // same key: fine
		old := s.hostKey
		s.stop()
		s.newHostKey()
		s.start()
		_, err := Dial(context.Background(), ep, DialOptions{Trust: trust})
		var hk *HostKeyError
		if !errors.As(err, &hk) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(old)) || !strings.Contains(err.Error(), ssh.FingerprintSHA256(s.hostKey)) {
			t.Fatalf("err = %v, want a mismatch naming both keys", err)
		}
	})
	t.Run("pin file: kept by address, checked by a renamed host, no new pins", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "known_hosts")
		pins, err := OpenPinFile(path, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		ep := s.endpoint()
		ep.KnownHosts = KnownHostsPin
		dial(t, ep, DialOptions{Trust: pins}).Close()
		// The file is a known_hosts file OpenSSH's format readers accept.
		check, err := knownhosts.New(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := check(ep.HostPort(), &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: s.port}, s.hostKey); err != nil {
			t.Errorf("the pin file does not vouch for the pinned key: %v", err)
		}
		// Another process (a CI job on a fresh checkout) with --no-new-pins
		// reads the pin; the host renamed in the plan keeps it.
		again, err := OpenPinFile(path, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		renamed := ep
		renamed.Name = "renamed"
		dial(t, renamed, DialOptions{Trust: again}).Close()
		old := s.hostKey
		s.stop()
		s.newHostKey()
		s.start()
		if _, err := Dial(context.Background(), renamed, DialOptions{Trust: again}); err == nil || !strings.Contains(err.Error(), ssh.FingerprintSHA256(old)) || !strings.Contains(err.Error(), path) {
			t.Errorf("a renamed host with a new key: %v, want a mismatch naming the pinned key and %s", err, path)
		}
		// A host never pinned: --no-new-pins fails instead of pinning.
		fresh, err := OpenPinFile(filepath.Join(t.TempDir(), "known_hosts"), nil, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Dial(context.Background(), ep, DialOptions{Trust: fresh}); err == nil || !strings.Contains(err.Error(), "--no-new-pins") {
			t.Errorf("no pin and --no-new-pins: %v", err)
		}
	})
}

func TestPinFileTakesLegacyStatePins(t *testing.T) {
	path := filepath.Join(t.TempDir(), "known_hosts")
	key := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
	pins, err := OpenPinFile(path, map[string]string{"ssh-host-key/vm1@192.0.2.1:22": key, "other": "x"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := pins.Trusted(pinKey(Endpoint{Name: "anything", Address: "192.0.2.1", Port: 22})); !ok || got != key {
		t.Errorf("legacy pin: %q %v", got, ok)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "192.0.2.1 "+key+"\n") {
		t.Errorf("pin file %q (%v)", data, err)
	}
}

func TestDialRetriesThenNamesTheHost(t *testing.T) {
	s := startSSHD(t)
	s.stop()
	var logs []string
	start := time.Now()
	_, err := Dial(context.Background(), s.endpoint(), DialOptions{Attempts: 3, Backoff: 20 * time.Millisecond,
		Logf: func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }})
	if err == nil || !strings.Contains(err.Error(), "host vm1 (127.0.0.1:") || !strings.Contains(err.Error(), "no connection after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	if len(logs) != 2 || !strings.Contains(logs[1], "attempt 2/3") {
		t.Errorf("retry logs %q", logs)
	}
	if time.Since(start) < 60*time.Millisecond {
		t.Errorf("no backoff between attempts")
	}
}

func TestDialWaitsForAHostComingUp(t *testing.T) {
	s := startSSHD(t)
	s.stop()
	ep := s.endpoint()
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(300 * time.Millisecond)
		s.start()
	}()
	c, err := Dial(context.Background(), ep, DialOptions{Attempts: 8, Backoff: 100 * time.Millisecond})
	<-started // the fixture's fields are the goroutine's until then
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestUploadSkipsWhatIsThere(t *testing.T) {
	s := startSSHD(t)
	c := dial(t, s.endpoint(), DialOptions{})
	local := filepath.Join(t.TempDir(), "k3s")
	os.WriteFile(local, []byte("binary v1"), 0o644)
	remote := filepath.Join(t.TempDir(), "usr", "local", "bin", "k3s")
	for i, want := range []bool{true, false} {
		copied, err := c.Upload(context.Background(), local, remote, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if copied != want {
			t.Errorf("upload %d copied=%v, want %v", i, copied, want)
		}
	}
	got, _ := os.ReadFile(remote)
	fi, _ := os.Stat(remote)
	if string(got) != "binary v1" || fi.Mode().Perm() != 0o755 {
		t.Errorf("remote file %q mode %v", got, fi.Mode().Perm())
	}
	os.WriteFile(local, []byte("binary v2"), 0o644)
	if copied, err := c.Upload(context.Background(), local, remote, 0o755); err != nil || !copied {
		t.Errorf("changed file: copied=%v err=%v", copied, err)
	}
	if got, _ := os.ReadFile(remote); string(got) != "binary v2" {
		t.Errorf("remote file %q after change", got)
	}
	if leftovers, _ := filepath.Glob(remote + ".mcplan-upload"); len(leftovers) != 0 {
		t.Errorf("temporary upload left behind: %v", leftovers)
	}
}

func TestCancelKillsCommandAndBackgroundDoesNotHang(t *testing.T) {
	s := startSSHD(t)
	c := dial(t, s.endpoint(), DialOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	// The command's tree: a child shell and its grandchild, whose output
	// goes to a file (so the session closing does not end it).
	dir := t.TempDir()
	tree := fmt.Sprintf(`sh -c 'echo $$ > %[1]s/child; sleep 31 > %[1]s/out 2>&1 & echo $! > %[1]s/grandchild; wait'`, dir)
	start := time.Now()
	_, err := c.Run(ctx, tree, RunOptions{})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %s", err, time.Since(start))
	}
	for _, name := range []string{"child", "grandchild"} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("the command did not start its %s: %v", name, err)
		}
		pid := strings.TrimSpace(string(data))
		if !gone(pid, killGrace) {
			t.Errorf("the %s (pid %s) still runs after the cancel", name, pid)
			exec.Command("kill", "-9", pid).Run()
		}
	}
	start = time.Now()
	if _, err := c.Run(context.Background(), "nohup sleep 30 >/dev/null 2>&1 &", RunOptions{}); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("a backgrounded command held the session for %s", time.Since(start))
	}
	c.Run(context.Background(), "pkill -f 'sleep 30' || true", RunOptions{})
}

// gone waits up to wait for process pid to end (or be a zombie).
func gone(pid string, wait time.Duration) bool {
	deadline := time.Now().Add(wait)
	for {
		stat, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil {
			return true
		}
		// pid (comm) state ...: state Z is a zombie, dead but not reaped.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i+1:]), " Z") {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyJump reaches a target that only the jump host reaches: both
// run in a network namespace of the test's own, which the test enters
// only through a relay to the jump host's port. The target's port is
// refused from the test's namespace, and the command runs in the
// target's.
func TestProxyJump(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and runs real sshds that log in as root (CI runs as root)")
	}
	ns := newNetns(t)
	target := startSSHDIn(t, ns)
	jumpHost := startSSHDIn(t, ns)
	relay := relayInto(t, ns, jumpHost.addr())

	ep := target.endpoint()
	refusedDirectly(t, ep)

	jump, err := ParseJump("root@127.0.0.1:"+fmt.Sprint(relay), ep)
	if err != nil {
		t.Fatal(err)
	}
	jump.IdentityFile = jumpHost.clientKey
	jump.KnownHosts = jumpHost.knownHostsFor(relay)
	ep.Jump = &jump
	c := dial(t, ep, DialOptions{})
	res, err := c.Run(context.Background(), "echo $SSH_CONNECTION; stat -L -c %i /proc/self/ns/net", RunOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// SSH_CONNECTION is client address and port, server address and port.
	f := strings.Fields(res.Stdout)
	if len(f) != 5 {
		t.Fatalf("output %q, want SSH_CONNECTION and a namespace inode", res.Stdout)
	}
	if f[0] != "127.0.0.1" || f[2] != "127.0.0.1" || f[3] != fmt.Sprint(target.port) {
		t.Errorf("SSH_CONNECTION %q, want the jump host's loopback connection to port %d", strings.Join(f[:4], " "), target.port)
	}
	if inode, want := f[4], netnsInode(t, "/run/netns/"+ns); inode != want {
		t.Errorf("command ran in network namespace %s, want the test's %s (%s)", inode, ns, want)
	}
}

func TestAsRootAndParseJump(t *testing.T) {
	if got := AsRoot("root", "id -u"); got != "id -u" {
		t.Errorf("root: %q", got)
	}
	if got, want := AsRoot("debian", "echo 'a b'"), `sudo -n -- sh -c 'echo '\''a b'\'''`; got != want {
		t.Errorf("non-root: %q, want %q", got, want)
	}
	tests := []struct {
		in, user, addr string
		port           int
		err            bool
	}{
		{"bastion.example.org", "root", "bastion.example.org", 22, false},
		{"ops@192.0.2.7:2222", "ops", "192.0.2.7", 2222, false},
		{"[2001:db8::1]:2200", "root", "2001:db8::1", 2200, false},
		{"ops@host:notaport", "", "", 0, true},
	}
	for _, tt := range tests {
		j, err := ParseJump(tt.in, Endpoint{User: "root"})
		if tt.err {
			if err == nil {
				t.Errorf("%s: no error", tt.in)
			}
			continue
		}
		if err != nil || j.User != tt.user || j.Address != tt.addr || j.Port != tt.port {
			t.Errorf("%s: %+v %v", tt.in, j, err)
		}
	}
}
