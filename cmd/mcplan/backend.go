package main

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"mcplan.io/mcplan/engine"
	"mcplan.io/mcplan/plans"
	"mcplan.io/mcplan/statebackend"
)

// backend is a plan's kubernetes state backend: its Secrets, its lock
// and the mirror between them and the state directory (the cache).
type backend struct {
	host    string // the API server's URL
	secrets *statebackend.Secrets
	lock    *statebackend.LeaseLock
	mirror  *statebackend.Mirror
	held    *statebackend.Held
}

// openBackend connects to the cluster state.kubernetes names, as kubectl
// would with that kubeconfig and context; command is who would lock.
func openBackend(p *plans.Plan, command string) (*backend, error) {
	k, ok := p.KubernetesState()
	if !ok {
		return nil, fmt.Errorf("the plan has no state.kubernetes: it names where the kubernetes backend keeps the state")
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.Kubeconfig != "" {
		rules.ExplicitPath = k.Kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.Context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("state backend: kubeconfig %s: %w", kubeconfigName(k.Kubeconfig), err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("state backend: %w", err)
	}
	b := &backend{host: cfg.Host, secrets: &statebackend.Secrets{Client: client, Namespace: k.Namespace, Name: k.Name}}
	b.mirror = &statebackend.Mirror{Remote: b.secrets, Dir: p.StateDir()}
	b.lock = &statebackend.LeaseLock{Client: client, Namespace: k.Namespace, Name: k.Name + "-lock", Timeout: p.LockTimeout(), Holder: lockHolder(command)}
	return b, nil
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
	if err != nil {
		return ""
	}
	return p.ClusterAt(u.Hostname())
}

// close writes the cache back (when it changed) and releases the lock.
func (b *backend) close(ctx context.Context) error {
	if b.held == nil {
		return nil
	}
	err := b.mirror.Push(ctx)
	if rerr := b.held.Release(); err == nil {
		err = rerr
	}
	b.held = nil
	return err
}

// pullCache, for a plan whose state is kept in Kubernetes, rebuilds the
// state directory from the backend without locking: for the commands
// that only read the state.
func pullCache(ctx context.Context, p *plans.Plan) error {
	if p.StateBackend() != plans.BackendKubernetes {
		return nil
	}
	b, err := openBackend(p, "")
	if err != nil {
		return err
	}
	if err := engine.PrepareStateDir(p.StateDir()); err != nil {
		return err
	}
	return b.mirror.Pull(ctx)
}
