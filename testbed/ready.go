package testbed

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"
)

// waitSSH waits until addr answers with an SSH banner, until ctx is done
// or alive reports that the host's process has exited.
func waitSSH(ctx context.Context, addr string, alive func() error) error {
	var last error
	for {
		if err := readBanner(ctx, addr); err == nil {
			return nil
		} else {
			last = err
		}
		if err := alive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for ssh on %s: %w (last: %v)", addr, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// readBanner dials addr and reads the first line, which must be an SSH
// identification string.
func readBanner(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read banner: %w", err)
	}
	if !strings.HasPrefix(line, "SSH-") {
		return fmt.Errorf("not an SSH banner: %q", line)
	}
	return nil
}
