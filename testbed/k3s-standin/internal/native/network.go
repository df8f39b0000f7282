package native

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// netnsFile is a pod's network namespace under its state directory.
const netnsFile = "netns"

// cniTimeout bounds one CNI ADD or DEL.
const cniTimeout = 30 * time.Second

// ownNetwork reports whether p gets a network namespace of its own: not a
// hostNetwork pod, and the node has a pod network (CNI configured).
func (p *podRun) ownNetwork() bool {
	return p.rt.net != nil && !p.latest().Spec.HostNetwork
}

// ip is the pod's IP: the CNI result's, or the node IP for hostNetwork
// pods ("" while its network is being set up).
func (p *podRun) ip() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.podIP
}

// netNS is the pod's network namespace path, "" for hostNetwork pods.
func (p *podRun) netNS() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.netnsPath
}

// setupNetwork gives the pod its network, as kubelet's pod sandbox: a
// fresh network namespace attached by CNI ADD (bridge + host-local +
// loopback). The IP the pod showed before (a restart of the stand-in) is
// asked for again. It retries until it succeeds or ctx ends (false).
func (p *podRun) setupNetwork(ctx context.Context) bool {
	if !p.ownNetwork() {
		p.mu.Lock()
		p.podIP = p.rt.cfg.NodeIP
		p.mu.Unlock()
		return true
	}
	path := filepath.Join(p.stateDir, netnsFile)
	want := p.latest().Status.PodIP
	if want == p.rt.cfg.NodeIP {
		want = ""
	}
	for {
		ip, err := p.rt.attach(ctx, p.uid, path, want)
		p.mu.Lock()
		if err == nil {
			p.netnsPath, p.podIP, p.sandboxErr = path, ip, ""
		} else {
			p.sandboxErr = "Failed to create pod sandbox: " + err.Error()
		}
		p.mu.Unlock()
		p.changed()
		if err == nil {
			p.rt.logf("native: pod %s (%s) network namespace %s, IP %s", p.key, p.uid, path, ip)
			return true
		}
		p.rt.logf("native: pod %s: network: %v", p.key, err)
		if !sleep(ctx, 2*time.Second) {
			return false
		}
	}
}

// teardownNetwork detaches the pod (CNI DEL) and removes its namespace once
// its processes are gone. The pod keeps reporting its last IP.
func (p *podRun) teardownNetwork(ctx context.Context) {
	path := p.netNS()
	if path == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cniTimeout)
	defer cancel()
	if err := p.rt.detach(ctx, p.uid, path); err != nil {
		p.rt.logf("native: pod %s: %v", p.key, err)
	}
	p.mu.Lock()
	p.netnsPath = ""
	p.mu.Unlock()
}

// attach makes the namespace at path (replacing a leftover) and calls CNI
// ADD for pod uid.
func (r *Runtime) attach(ctx context.Context, uid types.UID, path, want string) (string, error) {
	if err := r.detach(ctx, uid, path); err != nil {
		return "", err
	}
	if err := createNetNS(path); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, cniTimeout)
	defer cancel()
	ip, err := r.net.add(ctx, string(uid), path, want)
	if err != nil {
		_ = r.net.del(context.WithoutCancel(ctx), string(uid), path)
		_ = removeNetNS(path)
		return "", err
	}
	return ip, nil
}

// detach calls CNI DEL for pod uid and removes its namespace file when
// there is one.
func (r *Runtime) detach(ctx context.Context, uid types.UID, path string) error {
	_, statErr := os.Lstat(path)
	if errors.Is(statErr, os.ErrNotExist) {
		return nil
	}
	err := r.net.del(ctx, string(uid), path)
	return errors.Join(err, removeNetNS(path))
}

// cleanupNetworks detaches every pod network namespace a previous run of
// the stand-in left (it was killed, or the pods went while it was down):
// no process of this run uses one yet. Pods that are still bound get a
// fresh one, with the IP they had, when they start.
func (r *Runtime) cleanupNetworks(ctx context.Context) {
	paths, _ := filepath.Glob(filepath.Join(r.cfg.StateDir, "*", netnsFile))
	for _, path := range paths {
		uid := types.UID(filepath.Base(filepath.Dir(path)))
		dctx, cancel := context.WithTimeout(ctx, cniTimeout)
		err := r.detach(dctx, uid, path)
		cancel()
		if err != nil {
			r.logf("native: leftover network of pod %s: %v", uid, err)
			continue
		}
		r.logf("native: removed the leftover network namespace of pod %s", uid)
	}
}
