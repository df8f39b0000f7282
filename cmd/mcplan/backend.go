package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/statebackend"
)

// backend is where a plan's state is kept when it is not only the state
// directory: in Kubernetes (Secrets, a Lease) and/or sealed. The mirror
// keeps the directory the steps work in (the cache, or a sealed state's
// run-private directory) and the remote in step.
type backend struct {
	host    string                  // the kubernetes backend's API server URL
	secrets *statebackend.Secrets   // nil for local state
	lock    *statebackend.LeaseLock // nil for local state
	mirror  *statebackend.Mirror
	held    *statebackend.Held
	// stateDir is the plan's state directory; work, for a sealed state,
	// the run's own directory of the opened state under it (removed when
	// the run ends: the state at rest is only the sealed copy).
	stateDir, work string
	// sealedLocal is set for a sealed local state (the sealed file in
	// stateDir).
	sealedLocal bool
}

// openBackend returns the plan's backend, nil when the state is only the
// state directory; for kubernetes it connects as kubectl would with that
// kubeconfig and context. command is who would lock.
func openBackend(p *plans.Plan, command string) (*backend, error) {
	kube := p.StateBackend() == plans.BackendKubernetes
	env := p.PassphraseEnv()
	if !kube && env == "" {
		return nil, nil
	}
	b := &backend{stateDir: p.StateDir()}
	var remote statebackend.Remote
	if kube {
		if err := b.connect(p, command); err != nil {
			return nil, err
		}
		remote = b.secrets
	} else {
		b.sealedLocal = true
		remote = &statebackend.File{Path: filepath.Join(b.stateDir, statebackend.SealedFile)}
	}
	dir := b.stateDir
	if env != "" {
		pass := os.Getenv(env)
		if pass == "" {
			return nil, fmt.Errorf("state.encryption.passphraseEnv names %s, which is not set: it holds the state's passphrase", env)
		}
		remote = &statebackend.Sealed{Remote: remote, Passphrase: []byte(pass)}
		b.work = filepath.Join(b.stateDir, statebackend.OpenDirPrefix+strconv.Itoa(os.Getpid()))
		dir = b.work
	}
	b.mirror = &statebackend.Mirror{Remote: remote, Dir: dir}
	return b, nil
}

// connect makes the kubernetes backend's client, Secrets and lock.
func (b *backend) connect(p *plans.Plan, command string) error {
	k, ok := p.KubernetesState()
	if !ok {
		return fmt.Errorf("the plan has no state.kubernetes: it names where the kubernetes backend keeps the state")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return fmt.Errorf("state backend: kubeconfig %s: %w", kubeconfigName(k.Kubeconfig), err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("state backend: %w", err)
	}
	b.host = cfg.Host
	b.secrets = &statebackend.Secrets{Client: client, Namespace: k.Namespace, Name: k.Name}
	b.lock = &statebackend.LeaseLock{Client: client, Namespace: k.Namespace, Name: k.Name + "-lock", Timeout: p.LockTimeout(), Holder: lockHolder(command)}
	return nil
}

// open takes the backend's lock when locking (waiting up to wait; a lost
// lock calls lost, which cancels the run), and makes the directory the
// steps work in hold the state: the cache pulled, or the sealed state
// opened into the run's own directory, which p's state directory then
// is. A sealed local state that does not exist yet is sealed from the
// plain state directory, whose files go once the sealed copy is written.
func (b *backend) open(ctx context.Context, p *plans.Plan, locking bool, wait time.Duration, logf func(string, ...any), lost func(error)) error {
	if locking && b.lock != nil {
		if err := b.acquire(ctx, wait, logf, lost); err != nil {
			return err
		}
	}
	if err := engine.PrepareStateDir(b.stateDir); err != nil {
		return err
	}
	if b.work == "" {
		return b.mirror.Pull(ctx)
	}
	if locking {
		if err := statebackend.RemoveOpenDirs(b.stateDir, logf); err != nil {
			return err
		}
	}
	if err := os.Mkdir(b.work, 0o700); err != nil {
		return fmt.Errorf("state: %w", err)
	}
	if p.State == nil {
		p.State = &plans.State{}
	}
	p.State.Dir = b.work
	_, version, err := b.mirror.Remote.Read(ctx)
	if err != nil {
		return err
	}
	plain, err := statebackend.ReadSnapshot(b.stateDir)
	if err != nil {
		return err
	}
	switch {
	case version != "":
		return b.mirror.Pull(ctx)
	case plain["state.json"] == nil:
		return nil // a first apply
	case !b.sealedLocal:
		return fmt.Errorf("%s: %w (%s): run \"mcplan state migrate --to kubernetes\" without state.encryption first", b.mirror.Remote, statebackend.ErrLocalOnly, b.stateDir)
	case !locking:
		// Not sealed yet (the next locked run seals it): read it where
		// it is.
		if err := os.Remove(b.work); err != nil {
			return fmt.Errorf("state: %w", err)
		}
		b.work, p.State.Dir = "", b.stateDir
		return nil
	}
	if err := plain.WriteTo(b.work); err != nil {
		return err
	}
	if err := b.mirror.Push(ctx); err != nil {
		return err
	}
	logf("state: sealed the state of %s into %s; its plain files are removed", b.stateDir, statebackend.SealedFile)
	return plain.RemoveFrom(b.stateDir)
}

func kubeconfigName(path string) string {
	if path == "" {
		return "(default: $KUBECONFIG or ~/.kube/config)"
	}
	return path
}

// lockHolder says who this run is, for the lock.
func lockHolder(command string) statebackend.Holder {
	host, _ := os.Hostname()
	name := "?"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return statebackend.Holder{User: name, Host: host, PID: os.Getpid(), Command: command, Since: time.Now().UTC()}
}

// acquire takes the backend's lock, waiting up to wait; a lost lock
// calls lost (which cancels the run).
func (b *backend) acquire(ctx context.Context, wait time.Duration, logf func(string, ...any), lost func(error)) error {
	b.lock.Logf = logf
	held, err := b.lock.Acquire(ctx, wait, lost)
	if err != nil {
		return err
	}
	b.held = held
	return nil
}

// cluster is the plan's cluster that holds the backend ("" when it is
// not one of them): destroying it destroys the state.
func (b *backend) cluster(p *plans.Plan) string {
	u, err := url.Parse(b.host)
	if b.host == "" || err != nil || u.Hostname() == "" {
		return ""
	}
	return p.ClusterAt(u.Hostname())
}

// close writes the state back (when it changed and this run holds the
// lock), releases the lock, and removes a sealed state's opened copy.
func (b *backend) close(ctx context.Context, locked bool) error {
	var err error
	if locked {
		err = b.mirror.Push(ctx)
	}
	if b.held != nil {
		if rerr := b.held.Release(); err == nil {
			err = rerr
		}
		b.held = nil
	}
	if b.work != "" {
		if rerr := os.RemoveAll(b.work); err == nil && rerr != nil {
			err = fmt.Errorf("state: %w", rerr)
		}
	}
	return err
}

// openReadOnly, for a plan whose state is kept in Kubernetes or sealed,
// makes its state directory hold the state without locking, for the
// commands that only read it; done ends that (a sealed state's opened
// copy is removed).
func openReadOnly(ctx context.Context, p *plans.Plan, logf func(string, ...any)) (done func(), err error) {
	b, err := openBackend(p, "")
	if err != nil || b == nil {
		return func() {}, err
	}
	if err := b.open(ctx, p, false, 0, logf, nil); err != nil {
		_ = b.close(ctx, false)
		return nil, err
	}
	return func() { _ = b.close(context.WithoutCancel(ctx), false) }, nil
}

// where says where the state is kept, for summaries: the Secret or the
// sealed file.
func (b *backend) where() string {
	if b.secrets != nil {
		w := fmt.Sprintf("Secret %s/%s", b.secrets.Namespace, b.secrets.Name)
		if b.work != "" {
			w += " (sealed)"
		}
		return w
	}
	return filepath.Join(b.stateDir, statebackend.SealedFile) + " (sealed)"
}
