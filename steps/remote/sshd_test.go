package remote

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
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
)

// sshd is a real OpenSSH server on a loopback port, run for one test.
type sshd struct {
	t          *testing.T
	dir        string
	port       int
	cmd        *exec.Cmd
	clientKey  string // private key file
	knownHosts string // has this server's key
	hostKey    ssh.PublicKey
	// netns is the network namespace it runs in; "" is the test's own.
	netns string
}

// startSSHD runs Debian's /usr/sbin/sshd on 127.0.0.1, root login by key only.
func startSSHD(t *testing.T) *sshd {
	t.Helper()
	return startSSHDIn(t, "")
}

// startSSHDIn is startSSHD in network namespace ns ("" for the test's
// own), on 127.0.0.1 there. The port is one free in the test's own
// namespace, so a connection that misses ns is refused.
func startSSHDIn(t *testing.T, ns string) *sshd {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs a real sshd that logs in as root (CI runs as root)")
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err != nil {
		t.Skip("needs /usr/sbin/sshd (Debian package openssh-server; scripts/install-deps.sh installs it)")
	}
	s := &sshd{t: t, dir: t.TempDir(), netns: ns}
	s.knownHosts = filepath.Join(s.dir, "known_hosts")
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatal(err)
	}
	s.clientKey = filepath.Join(s.dir, "id_ed25519")
	clientPub := writeKey(t, s.clientKey)
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600); err != nil {
		t.Fatal(err)
	}
	s.newHostKey()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	s.start()
	t.Cleanup(s.stop)
	return s
}

func writeKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub
}

// newHostKey gives the server a new host key, as a reinstalled host has;
// start writes it to the test's known_hosts.
func (s *sshd) newHostKey() {
	s.hostKey = writeKey(s.t, filepath.Join(s.dir, "host_ed25519"))
}

func (s *sshd) start() {
	s.t.Helper()
	line := fmt.Sprintf("[127.0.0.1]:%d %s", s.port, ssh.MarshalAuthorizedKey(s.hostKey))
	if err := os.WriteFile(s.knownHosts, []byte(line), 0o644); err != nil {
		s.t.Fatal(err)
	}
	config := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
AllowTcpForwarding yes
`, s.port, filepath.Join(s.dir, "host_ed25519"), filepath.Join(s.dir, "authorized_keys"))
	cfg := filepath.Join(s.dir, "sshd_config")
	if err := os.WriteFile(cfg, []byte(config), 0o600); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	if s.netns != "" {
		s.cmd = exec.Command("ip", "netns", "exec", s.netns, "/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	}
	if testing.Verbose() {
		s.cmd.Stderr = os.Stderr
	}
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		conn, err := net.DialTimeout("tcp", s.addr(), time.Second)
		if s.netns != "" {
			conn, err = dialIn(s.netns, s.addr(), time.Second)
		}
		if err == nil {
			banner, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(banner, "SSH-2.0-OpenSSH") {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("sshd on %s (network namespace %q) did not answer", s.addr(), s.netns)
}

// knownHostsFor writes a known_hosts file with this server's key at
// 127.0.0.1:port (a relay's port) and returns its path.
func (s *sshd) knownHostsFor(port int) string {
	s.t.Helper()
	path := filepath.Join(s.dir, fmt.Sprintf("known_hosts_%d", port))
	line := fmt.Sprintf("[127.0.0.1]:%d %s", port, ssh.MarshalAuthorizedKey(s.hostKey))
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

func (s *sshd) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
		s.cmd = nil
	}
}

func (s *sshd) addr() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

func (s *sshd) endpoint() Endpoint {
	return Endpoint{Name: "vm1", Address: "127.0.0.1", Port: s.port, User: "root",
		IdentityFile: s.clientKey, KnownHosts: s.knownHosts, ConnectTimeout: 5 * time.Second}
}

// memTrust is a TrustStore in memory.
type memTrust struct {
	mu sync.Mutex
	m  map[string]string
}

func (m *memTrust) Trusted(k string) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.m[k]
	return v, ok
}

func (m *memTrust) Trust(k, v string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string]string{}
	}
	m.m[k] = v
	return nil
}
