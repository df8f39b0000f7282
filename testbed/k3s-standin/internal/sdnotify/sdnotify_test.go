package sdnotify

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestNotifyWritesDatagram receives the datagram on a real unix socket,
// as systemd would, for a path and an abstract socket name.
func TestNotifyWritesDatagram(t *testing.T) {
	for _, c := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@k3s-standin-sdnotify-test-" + time.Now().Format("150405.000000000")},
	} {
		t.Run(c.name, func(t *testing.T) {
			ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: c.addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			t.Setenv("NOTIFY_SOCKET", c.addr)
			mu.Lock()
			taken = false
			mu.Unlock()
			Take()
			sent, err := Notify("READY=1")
			if err != nil || !sent {
				t.Fatalf("Notify: sent %v, %v", sent, err)
			}
			_ = ln.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			n, err := ln.Read(buf)
			if err != nil || string(buf[:n]) != "READY=1" {
				t.Fatalf("received %q, %v", buf[:n], err)
			}
		})
	}
	mu.Lock()
	taken, socket = true, ""
	mu.Unlock()
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without a socket: sent %v, %v", sent, err)
	}
}
