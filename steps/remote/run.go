package remote

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// RunOptions tune Run.
type RunOptions struct {
	// Stdin feeds the command.
	Stdin io.Reader
	// Output receives every line the command writes, stdout and stderr,
	// as it comes (stream: "stdout" or "stderr"). Never pass commands that
	// print secrets with an Output that logs.
	Output func(stream, line string)
}

// Result is what a command left behind.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Endpoint string
	Command  string
	Result
}

func (e *ExitError) Error() string {
	msg := fmt.Sprintf("%s: %q exited with status %d", e.Endpoint, e.Command, e.ExitCode)
	if tail := lastLines(e.Stderr, 5); tail != "" {
		msg += ": " + tail
	}
	return msg
}

// maxCaptured bounds how much of each stream Run keeps in memory.
const maxCaptured = 1 << 20

// maxLine is the longest line handed to Output in one piece.
const maxLine = 64 << 10

// Run runs a shell command on the host, as root: a non-root login user
// runs it through sudo -n. It returns an *ExitError when the command exits
// non-zero. Cancelling ctx kills the command.
func (c *Client) Run(ctx context.Context, command string, opts RunOptions) (Result, error) {
	session, err := c.conn.NewSession()
	if err != nil {
		return Result{}, fmt.Errorf("%s: new session: %w", c.endpoint, err)
	}
	defer session.Close()
	var stdout, stderr capture
	stdout.stream, stderr.stream, stdout.emit, stderr.emit = "stdout", "stderr", opts.Output, opts.Output
	session.Stdout, session.Stderr = &stdout, &stderr
	if opts.Stdin != nil {
		session.Stdin = opts.Stdin
	}
	pidFile := remotePIDDir + "/run-" + randomToken() + ".pid"
	full := AsRoot(c.endpoint.User, killable(command, pidFile))
	if err := session.Start(full); err != nil {
		return Result{}, fmt.Errorf("%s: start %q: %w", c.endpoint, command, err)
	}
	done := make(chan error, 1)
	go func() { done <- session.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		c.kill(pidFile)
		select {
		case <-done:
		case <-time.After(killGrace):
			session.Close()
		}
		return Result{}, fmt.Errorf("%s: %q: %w", c.endpoint, command, ctx.Err())
	}
	stdout.flush()
	stderr.flush()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *ssh.ExitError
	switch {
	case err == nil:
		return res, nil
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitStatus()
		return res, &ExitError{Endpoint: c.endpoint.String(), Command: command, Result: res}
	default:
		return res, fmt.Errorf("%s: %q: %w", c.endpoint, command, err)
	}
}

// remotePIDDir holds the PID files of running commands: root's alone
// (0700), not world-writable /tmp where another user could plant one.
const remotePIDDir = "/run/mcplan"

// killGrace is how long a cancelled command has to go away.
const killGrace = 5 * time.Second

// killable makes a command killable from another session: the shell
// running it records its PID in pidFile (removed when it ends). sshd does
// not deliver signal requests to root sessions, so kill is the way.
func killable(command, pidFile string) string {
	f := ShellQuote(pidFile)
	return "mkdir -p -m 0700 " + ShellQuote(path.Dir(pidFile)) + " && echo $$ > " + f + " && trap 'rm -f " + strings.ReplaceAll(f, "'", `'\''`) + "' EXIT && (" + command + "\n)"
}

// kill stops the process tree of a running command, from a new session:
// stop each process so it cannot start more, kill its children, then it.
func (c *Client) kill(pidFile string) {
	f := ShellQuote(pidFile)
	script := `kt() { kill -STOP "$1" 2>/dev/null; for c in $(pgrep -P "$1"); do kt "$c"; done; kill -KILL "$1" 2>/dev/null; }; ` +
		`p=$(cat ` + f + ` 2>/dev/null) && [ -n "$p" ] && kt "$p"; rm -f ` + f
	ctx, cancel := context.WithTimeout(context.Background(), killGrace)
	defer cancel()
	_, _ = c.Run(ctx, script, RunOptions{})
}

func randomToken() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AsRoot wraps a command so it runs as root for the given login user.
func AsRoot(user, command string) string {
	if user == "root" || user == "" {
		return command
	}
	return "sudo -n -- sh -c " + ShellQuote(command)
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// capture keeps a stream (bounded) and hands complete lines to emit.
type capture struct {
	mu      sync.Mutex
	stream  string
	emit    func(stream, line string)
	buf     bytes.Buffer
	partial []byte
}

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := maxCaptured - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	if c.emit == nil {
		return len(p), nil
	}
	c.partial = append(c.partial, p...)
	for {
		i := bytes.IndexByte(c.partial, '\n')
		if i < 0 && len(c.partial) < maxLine {
			break // keep an incomplete line for the next write
		}
		if i < 0 {
			i = len(c.partial)
		}
		c.emit(c.stream, string(c.partial[:i]))
		c.partial = c.partial[min(i+1, len(c.partial)):]
	}
	return len(p), nil
}

func (c *capture) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.emit != nil && len(c.partial) > 0 {
		c.emit(c.stream, string(c.partial))
		c.partial = nil
	}
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}
