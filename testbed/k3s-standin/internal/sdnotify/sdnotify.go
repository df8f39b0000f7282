// Package sdnotify tells systemd about the service's state through
// $NOTIFY_SOCKET (sd_notify(3)), as k3s does for its Type=notify unit.
package sdnotify

import (
	"fmt"
	"net"
	"os"
	"sync"
)

var (
	mu     sync.Mutex
	socket string
	taken  bool
)

// Take reads $NOTIFY_SOCKET and removes it from the environment, so that
// processes the stand-in starts (native pods) do not inherit it, as k3s
// does. Call it once, early; Ready uses the socket it read.
func Take() {
	mu.Lock()
	defer mu.Unlock()
	if taken {
		return
	}
	taken = true
	socket = os.Getenv("NOTIFY_SOCKET")
	os.Unsetenv("NOTIFY_SOCKET")
}

// Notify sends state (e.g. "READY=1") to systemd. Without a notify socket
// (not started by systemd with Type=notify) it does nothing and reports
// false.
func Notify(state string) (bool, error) {
	mu.Lock()
	if !taken {
		socket = os.Getenv("NOTIFY_SOCKET")
	}
	path := socket
	mu.Unlock()
	if path == "" {
		return false, nil
	}
	// A leading '@' names an abstract socket; the net package maps it.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: dial %s: %w", path, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: write to %s: %w", path, err)
	}
	return true, nil
}

// Ready sends READY=1, logging through logf what it did.
func Ready(logf func(string, ...any)) {
	sent, err := Notify("READY=1")
	switch {
	case err != nil:
		logf("systemd notify: %v", err)
	case sent:
		logf("told systemd READY=1")
	}
}
