package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// DialOptions tune Dial.
type DialOptions struct {
	// Trust keeps pinned host keys (Endpoint.KnownHosts == KnownHostsPin).
	Trust TrustStore
	// Attempts is how often a failing dial is tried; default 5.
	Attempts int
	// Backoff is the wait after the first failed attempt, doubled after
	// each further one; default 500 ms.
	Backoff time.Duration
	// KeepAlive is the interval of keepalive requests; default 15 s.
	KeepAlive time.Duration
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (o *DialOptions) defaults() {
	if o.Attempts <= 0 {
		o.Attempts = 5
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = 15 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
}

// Client reaches one host over SSH. It is a handle on the host's
// connection (shared by every handle, see WithLogf) that logs to its own
// step. A connection that drops is dialled again, its host key checked
// again, and an idempotent command re-run (see Run).
type Client struct {
	*link
	// logf receives this handle's lines (a redial, a re-run).
	logf func(format string, args ...any)
}

// link is the connection to one host, shared by its handles.
type link struct {
	endpoint Endpoint
	config   *ssh.ClientConfig
	opts     DialOptions
	jump     *Client
	stop     chan struct{}
	closing  sync.Once
	closeErr error

	mu     sync.Mutex
	conn   *ssh.Client // the current connection
	dialed int         // how many connections were made
}

// Endpoint is what the client is connected to.
func (c *Client) Endpoint() Endpoint { return c.endpoint }

// WithLogf returns a handle on the same connection whose redials and
// re-runs are logged to logf (a step's log).
func (c *Client) WithLogf(logf func(string, ...any)) *Client {
	if logf == nil {
		logf = c.opts.Logf
	}
	return &Client{link: c.link, logf: logf}
}

// Dial connects to a host, through its bastion when it has one, retrying
// failed dials with backoff. Authentication and host key failures are not
// retried: trying again cannot fix them.
func Dial(ctx context.Context, ep Endpoint, opts DialOptions) (*Client, error) {
	opts.defaults()
	var jump *Client
	if ep.Jump != nil {
		var err error
		if jump, err = Dial(ctx, *ep.Jump, opts); err != nil {
			return nil, fmt.Errorf("%s: through bastion: %w", ep, err)
		}
	}
	config, err := clientConfig(ep, opts)
	if err != nil {
		jump.closeIfAny()
		return nil, err
	}
	l := &link{endpoint: ep, config: config, opts: opts, jump: jump, stop: make(chan struct{})}
	conn, err := l.dial(ctx, opts.Logf)
	if err != nil {
		jump.closeIfAny()
		return nil, err
	}
	l.use(conn)
	return &Client{link: l, logf: opts.Logf}, nil
}

// dial makes a new connection, trying failed dials again with backoff.
func (l *link) dial(ctx context.Context, logf func(string, ...any)) (*ssh.Client, error) {
	ep, opts := l.endpoint, l.opts
	wait := opts.Backoff
	var lastErr error
	for attempt := 1; attempt <= opts.Attempts; attempt++ {
		conn, err := dialOnce(ctx, ep, l.jump, l.config)
		if err == nil {
			return conn, nil
		}
		lastErr = err
		if !retryable(err) || ctx.Err() != nil {
			break
		}
		if attempt < opts.Attempts {
			logf("%s: ssh dial attempt %d/%d failed (%v); retrying in %s", ep, attempt, opts.Attempts, err, wait)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return nil, fmt.Errorf("%s: ssh: %w (last error: %v)", ep, ctx.Err(), lastErr)
			}
			wait *= 2
		}
	}
	if retryable(lastErr) {
		return nil, fmt.Errorf("%s: ssh: no connection after %d attempts: %w", ep, opts.Attempts, lastErr)
	}
	return nil, fmt.Errorf("%s: ssh: %w", ep, lastErr)
}

// use makes conn the link's connection and keeps it alive.
func (l *link) use(conn *ssh.Client) {
	l.mu.Lock()
	l.conn = conn
	l.dialed++
	l.mu.Unlock()
	go l.keepAlive(conn, l.opts.KeepAlive)
}

// current is the connection commands start on now.
func (l *link) current() *ssh.Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.conn
}

// redial replaces broken, the connection a command lost, by a new one
// (host key checked again, as on the first dial); when another command
// already replaced it, that one is used. The bastion's connection is
// replaced too when it is the one that broke.
func (l *link) redial(ctx context.Context, broken *ssh.Client, logf func(string, ...any)) (*ssh.Client, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.stop:
		return nil, fmt.Errorf("%s: ssh: the connection was closed", l.endpoint)
	default:
	}
	if l.conn != broken {
		return l.conn, nil
	}
	broken.Close()
	if l.jump != nil && !alive(l.jump.current()) {
		if _, err := l.jump.redial(ctx, l.jump.current(), logf); err != nil {
			return nil, fmt.Errorf("%s: through bastion: %w", l.endpoint, err)
		}
	}
	conn, err := l.dial(ctx, logf)
	if err != nil {
		return nil, err
	}
	l.conn = conn
	l.dialed++
	go l.keepAlive(conn, l.opts.KeepAlive)
	return conn, nil
}

// alive says whether a connection still answers.
func alive(conn *ssh.Client) bool {
	_, _, err := conn.SendRequest("keepalive@openssh.com", true, nil)
	return err == nil
}

// dialOnce makes one TCP (or bastion-tunnelled) connection and the SSH
// handshake on it, within the endpoint's connect timeout.
func dialOnce(ctx context.Context, ep Endpoint, jump *Client, config *ssh.ClientConfig) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, config.Timeout)
	defer cancel()
	var raw net.Conn
	var err error
	if jump != nil {
		raw, err = jump.current().DialContext(ctx, "tcp", ep.HostPort())
	} else {
		var d net.Dialer
		raw, err = d.DialContext(ctx, "tcp", ep.HostPort())
	}
	if err != nil {
		return nil, &dialError{err}
	}
	// The handshake has no context: bound it with a deadline.
	if deadline, ok := ctx.Deadline(); ok {
		_ = raw.SetDeadline(deadline)
	}
	sconn, chans, reqs, err := ssh.NewClientConn(raw, ep.HostPort(), config)
	if err != nil {
		raw.Close()
		var hk *HostKeyError
		if errors.As(err, &hk) {
			return nil, hk
		}
		if isHandshakeIO(err) {
			return nil, &dialError{err}
		}
		return nil, err
	}
	_ = raw.SetDeadline(time.Time{})
	return ssh.NewClient(sconn, chans, reqs), nil
}

// dialError marks failures worth retrying: the host may not be up yet.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

func retryable(err error) bool {
	var d *dialError
	return errors.As(err, &d)
}

// isHandshakeIO tells a connection dropped during the handshake (sshd
// starting or overloaded) from a refusal (authentication, host key).
func isHandshakeIO(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, io.EOF) ||
		errors.Is(err, net.ErrClosed)
}

func clientConfig(ep Endpoint, opts DialOptions) (*ssh.ClientConfig, error) {
	callback, algos, err := hostKeyCheck(ep, opts.Trust, opts.Logf)
	if err != nil {
		return nil, err
	}
	if len(algos) == 0 {
		algos = preferredHostKeyAlgorithms
	}
	auth, err := authMethods(ep)
	if err != nil {
		return nil, err
	}
	timeout := ep.ConnectTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &ssh.ClientConfig{
		User:              ep.User,
		Auth:              auth,
		HostKeyCallback:   callback,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
	}, nil
}

func authMethods(ep Endpoint) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if ep.IdentityFile != "" {
		data, err := os.ReadFile(ep.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("%s: identity file: %w", ep, err)
		}
		signer, err := ssh.ParsePrivateKey(data)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			if len(ep.Passphrase) == 0 {
				return nil, fmt.Errorf("%s: identity file %s is encrypted: set ssh.passphraseEnv or use an agent", ep, ep.IdentityFile)
			}
			signer, err = ssh.ParsePrivateKeyWithPassphrase(data, ep.Passphrase)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: identity file %s: %w", ep, ep.IdentityFile, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if ep.UseAgent {
		if ep.AgentSocket == "" {
			return nil, fmt.Errorf("%s: ssh agent requested but SSH_AUTH_SOCK is not set", ep)
		}
		conn, err := net.Dial("unix", ep.AgentSocket)
		if err != nil {
			return nil, fmt.Errorf("%s: ssh agent: %w", ep, err)
		}
		methods = append(methods, ssh.PublicKeysCallback(agent.NewClient(conn).Signers))
	}
	if len(methods) == 0 {
		return nil, fmt.Errorf("%s: no identity file and no agent: nothing to log in with", ep)
	}
	return methods, nil
}

// keepAlive pings the server over conn; after three missed answers it
// closes the connection so blocked sessions fail instead of hanging.
func (l *link) keepAlive(conn *ssh.Client, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	missed := 0
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if _, _, err := conn.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				missed++
				if missed >= 3 {
					conn.Close()
					return
				}
				continue
			}
			missed = 0
		}
	}
}

// Close ends the connection (and its bastion's), for every handle.
// Closing twice is fine.
func (c *Client) Close() error {
	if c == nil || c.link == nil {
		return nil
	}
	c.closing.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		close(c.stop)
		c.closeErr = c.conn.Close()
		c.jump.closeIfAny()
	})
	return c.closeErr
}

func (c *Client) closeIfAny() {
	if c != nil {
		c.Close()
	}
}
