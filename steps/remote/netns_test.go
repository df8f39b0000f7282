package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newNetns makes a network namespace of the test's own with only its
// loopback up, and deletes it when the test ends. Its name is not of the
// testbed's run-prefix form ("mtb" and 5 hex digits): the testbed's
// crash-cleanup test, running at the same time in another package, would
// take it for a crashed run's and kill what runs in it (this test's
// sshd, and the test itself). A killed test leaves it behind.
func newNetns(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("needs ip (iproute2; scripts/install-deps.sh installs it): %v", err)
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := "mcplan-remote-test-" + hex.EncodeToString(b[:])
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s link set lo up: %v: %s", ns, err, out)
	}
	return ns
}

// dialIn opens a TCP connection from inside network namespace ns: the
// socket is made on an OS thread moved into ns (and never moved back: the
// thread ends with its goroutine), so it belongs to ns for its life.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // not unlocked: Go then ends the thread
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{err: fmt.Errorf("setns %s: %w", ns, err)}
			return
		}
		c, err := net.DialTimeout("tcp", addr, timeout)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.conn, r.err
}

// relayInto listens on a loopback port of the test's namespace and
// relays each connection to addr inside ns: the one way in from outside.
// It returns the port.
func relayInto(t *testing.T, ns, addr string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := dialIn(ns, addr, 5*time.Second)
				if err != nil {
					return
				}
				defer out.Close()
				go io.Copy(out, in)
				io.Copy(in, out)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// netnsInode is the inode of a network namespace file, which tells
// namespaces apart.
func netnsInode(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(st.Ino)
}

// refusedDirectly checks that ep, without a jump, cannot be reached from
// the test's namespace.
func refusedDirectly(t *testing.T, ep Endpoint) {
	t.Helper()
	ep.Jump = nil
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := Dial(ctx, ep, DialOptions{})
	if err == nil {
		c.Close()
		t.Fatalf("%s reached directly: the target is not where only the jump host reaches it", ep.HostPort())
	}
	if !strings.Contains(err.Error(), "connection refused") && !strings.Contains(err.Error(), "deadline") {
		t.Logf("direct dial failed: %v", err)
	}
}
