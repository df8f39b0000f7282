package steps

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/steps/remote"
)

// Runtime is what the steps of one run share: one SSH connection per host,
// opened on first use, and the store of host keys pinned on first use.
// Close it when the run ends.
type Runtime struct {
	plan  *plans.Plan
	trust remote.TrustStore
	// Force lets an upgrade go while a node of its cluster is not Ready
	// (apply --force).
	Force bool

	mu    sync.Mutex
	hosts map[string]*hostConn
	// recorded are hosts that left the plan, as their last apply recorded
	// them (RecordedHost): their removal reaches them.
	recorded map[string]plans.Host
	// renders are the run's Istio renders (render_once.go).
	renders renderOnce
	// sums are the run's sums of local files (file_sums.go).
	sums fileSums
}

// hostConn is a host's connection, dialled once however many steps ask.
type hostConn struct {
	once   sync.Once
	client *remote.Client
	err    error
}

// NewRuntime returns the runtime of one run of a plan.
func NewRuntime(p *plans.Plan, trust remote.TrustStore) *Runtime {
	return &Runtime{plan: p, trust: trust, hosts: map[string]*hostConn{}, recorded: map[string]plans.Host{}}
}

// Host returns the SSH connection to a host of the plan, dialling it on
// first use. logf receives the dial's progress (retries, pinned keys).
func (r *Runtime) Host(ctx context.Context, name string, logf func(string, ...any)) (*remote.Client, error) {
	r.mu.Lock()
	hc := r.hosts[name]
	if hc == nil {
		hc = &hostConn{}
		r.hosts[name] = hc
	}
	r.mu.Unlock()
	hc.once.Do(func() {
		ep, err := r.Endpoint(name)
		if err != nil {
			hc.err = err
			return
		}
		hc.client, hc.err = remote.Dial(ctx, ep, remote.DialOptions{Trust: r.trust, Logf: logf})
	})
	if hc.err != nil {
		return nil, hc.err
	}
	// The connection is shared; its redials and re-runs go to the
	// caller's log.
	return hc.client.WithLogf(logf), nil
}

// Close closes every connection.
func (r *Runtime) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, hc := range r.hosts {
		hc.client.Close()
	}
}

// remember makes a host that left the plan reachable, with the settings
// its last apply recorded (absolute paths, effective SSH settings).
func (r *Runtime) remember(h plans.Host) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recorded[h.Name] = h
}

// Endpoint turns a host's effective SSH settings into a remote.Endpoint:
// the plan's, or for a host that left it, what its last apply recorded.
func (r *Runtime) Endpoint(name string) (remote.Endpoint, error) {
	h := r.plan.Host(name)
	var s plans.SSH
	switch {
	case h != nil:
		s = r.plan.HostSSH(name)
	default:
		r.mu.Lock()
		rec, ok := r.recorded[name]
		r.mu.Unlock()
		if !ok || rec.SSH == nil {
			return remote.Endpoint{}, fmt.Errorf("host %s: not in the plan", name)
		}
		h, s = &rec, *rec.SSH
	}
	ep := remote.Endpoint{
		Name:         name,
		Address:      h.Address,
		Port:         s.Port,
		User:         s.User,
		IdentityFile: r.plan.Resolve(s.IdentityFile),
		UseAgent:     s.UseAgent != nil && *s.UseAgent,
		AgentSocket:  os.Getenv("SSH_AUTH_SOCK"),
		KnownHosts:   s.KnownHosts,
	}
	if ep.KnownHosts != remote.KnownHostsPin {
		ep.KnownHosts = r.plan.Resolve(s.KnownHosts)
	}
	if s.PassphraseEnv != "" {
		ep.Passphrase = []byte(os.Getenv(s.PassphraseEnv))
	}
	if s.ConnectTimeout != "" {
		d, err := time.ParseDuration(s.ConnectTimeout)
		if err != nil {
			return remote.Endpoint{}, fmt.Errorf("host %s: ssh.connectTimeout: %w", name, err)
		}
		ep.ConnectTimeout = d
	}
	if s.ProxyJump != "" {
		jump, err := remote.ParseJump(s.ProxyJump, ep)
		if err != nil {
			return remote.Endpoint{}, fmt.Errorf("host %s: %w", name, err)
		}
		ep.Jump = &jump
	}
	return ep, nil
}
