package native

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// volumeRefresh is how often volumes are rewritten from the API (kubelet
// syncs pods every minute and on changes; a short period lets processes
// that watch their mounted files see changes within seconds).
const volumeRefresh = 5 * time.Second

// defaultGrace is the API default of terminationGracePeriodSeconds.
const defaultGrace = 30 * time.Second

// podRun is one native pod on this node.
type podRun struct {
	rt        *Runtime
	uid       types.UID
	namespace string
	name      string
	key       string // namespace/name
	stateDir  string // <native-pods>/<uid>
	logDir    string // /var/log/pods/<ns>_<name>_<uid>

	mu          sync.Mutex
	pod         *corev1.Pod // latest seen
	created     time.Time
	volumesErr  string
	volumesOK   bool
	initsDone   bool
	failed      bool // an init container failed under restartPolicy Never
	grace       time.Duration
	stopping    bool
	netnsPath   string // its network namespace while attached (network.go)
	podIP       string // its IP (the node IP for hostNetwork pods)
	sandboxErr  string // why its network could not be set up
	cancel      context.CancelFunc
	done        chan struct{}
	volumesLock sync.Mutex // serialises use of vols
	vols        *volumes
	inits, apps []*container
}

func newPodRun(rt *Runtime, pod *corev1.Pod) *podRun {
	uid := string(pod.UID)
	p := &podRun{
		rt: rt, uid: pod.UID, namespace: pod.Namespace, name: pod.Name, key: pod.Namespace + "/" + pod.Name,
		stateDir: filepath.Join(rt.cfg.StateDir, uid),
		logDir:   podLogDir(rt.cfg.LogDir, pod.Namespace, pod.Name, uid),
		pod:      pod, created: time.Now(), done: make(chan struct{}),
	}
	p.vols = newVolumes(filepath.Join(p.stateDir, "volumes"), rt.cfg.Client, rt.cfg.Allocatable)
	restarts := previousRestarts(pod)
	for _, c := range pod.Spec.InitContainers {
		exe, _ := executableFor(rt.cfg.ImagesDir, c.Image)
		p.inits = append(p.inits, &container{pod: p, spec: c, init: true, exe: exe, restarts: restarts[c.Name],
			phase: phaseWaiting, reason: reasonContainerCreating})
	}
	for _, c := range pod.Spec.Containers {
		exe, _ := executableFor(rt.cfg.ImagesDir, c.Image)
		p.apps = append(p.apps, &container{pod: p, spec: c, exe: exe, restarts: restarts[c.Name],
			phase: phaseWaiting, reason: reasonContainerCreating})
	}
	return p
}

// previousRestarts continues the restart counts a pod already shows (the
// stand-in restarted): a container that had run counts one more restart.
func previousRestarts(pod *corev1.Pod) map[string]int32 {
	m := map[string]int32{}
	for _, list := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses} {
		for _, cs := range list {
			if cs.State.Running != nil || cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil {
				m[cs.Name] = cs.RestartCount + 1
			}
		}
	}
	return m
}

func (p *podRun) changed() { p.rt.cfg.Changed(p.namespace, p.name) }

func (p *podRun) setPod(pod *corev1.Pod) {
	p.mu.Lock()
	p.pod = pod
	p.mu.Unlock()
}

func (p *podRun) latest() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod
}

// gracePeriod is how long a stopping container gets between SIGTERM and
// SIGKILL.
func (p *podRun) gracePeriod() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		return p.grace
	}
	return podGrace(p.pod)
}

func podGrace(pod *corev1.Pod) time.Duration {
	switch {
	case pod.DeletionGracePeriodSeconds != nil:
		return time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	case pod.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return defaultGrace
}

// stop ends the pod's processes (SIGTERM, SIGKILL after grace).
func (p *podRun) stop(grace time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopping {
		p.grace = min(p.grace, grace)
		return
	}
	p.stopping, p.grace = true, grace
	if p.cancel != nil {
		p.cancel()
	}
}

func (p *podRun) stopped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// start runs the pod in the background until stop.
func (p *podRun) start(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	p.mu.Lock()
	p.cancel = cancel
	stopping := p.stopping
	p.mu.Unlock()
	if stopping {
		cancel()
	}
	go func() {
		defer close(p.done)
		defer cancel()
		defer p.changed()
		p.run(ctx)
	}()
}

// run prepares the volumes, runs the init containers in order, then all
// containers, as kubelet does.
func (p *podRun) run(ctx context.Context) {
	p.rt.logf("native: pod %s (%s) starting", p.key, p.uid)
	defer p.rt.logf("native: pod %s (%s) stopped", p.key, p.uid)
	for {
		err := p.refreshVolumes(ctx)
		p.mu.Lock()
		if err != nil {
			p.volumesErr = "MountVolume.SetUp failed: " + err.Error()
		} else {
			p.volumesErr, p.volumesOK = "", true
		}
		p.mu.Unlock()
		p.changed()
		if err == nil {
			break
		}
		p.rt.logf("native: pod %s: volumes: %v", p.key, err)
		if !sleep(ctx, 2*time.Second) {
			return
		}
	}
	if !p.setupNetwork(ctx) {
		return
	}
	defer p.teardownNetwork(ctx)
	go p.keepVolumesFresh(ctx)
	var sidecars sync.WaitGroup
	defer sidecars.Wait()
	restart := restartFor(p.latest().Spec.RestartPolicy)
	for _, c := range p.inits {
		switch {
		case c.exe == "":
			c.skip()
			continue
		case c.sidecar():
			sidecars.Go(func() { c.run(ctx, func(int32) bool { return true }) })
			if !waitStarted(ctx, c) {
				return
			}
			continue
		}
		// Init containers are retried on failure unless restartPolicy is Never.
		never := p.latest().Spec.RestartPolicy == corev1.RestartPolicyNever
		ok := c.run(ctx, func(code int32) bool { return code != 0 && !never })
		if ctx.Err() != nil {
			return
		}
		if !ok {
			p.mu.Lock()
			p.failed = true
			p.mu.Unlock()
			p.changed()
			return
		}
	}
	p.mu.Lock()
	p.initsDone = true
	p.mu.Unlock()
	p.changed()
	var apps sync.WaitGroup
	for _, c := range p.apps {
		apps.Go(func() { c.run(ctx, restart) })
	}
	apps.Wait()
}

func restartFor(policy corev1.RestartPolicy) func(int32) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return func(int32) bool { return false }
	case corev1.RestartPolicyOnFailure:
		return func(code int32) bool { return code != 0 }
	}
	return func(int32) bool { return true }
}

// waitStarted waits until a sidecar init container has started.
func waitStarted(ctx context.Context, c *container) bool {
	for {
		c.mu.Lock()
		started := c.phase == phaseRunning && c.started
		c.mu.Unlock()
		if started {
			return true
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return false
		}
	}
}

func (p *podRun) refreshVolumes(ctx context.Context) error {
	p.volumesLock.Lock()
	defer p.volumesLock.Unlock()
	return p.vols.refresh(ctx, p.latest())
}

// keepVolumesFresh rewrites the volumes periodically, so ConfigMap, Secret,
// label/annotation and token changes reach the process.
func (p *podRun) keepVolumesFresh(ctx context.Context) {
	t := time.NewTicker(volumeRefresh)
	defer t.Stop()
	last := ""
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg := ""
		if err := p.refreshVolumes(ctx); err != nil && ctx.Err() == nil {
			msg = err.Error()
		}
		if msg != last && msg != "" {
			p.rt.logf("native: pod %s: refresh volumes: %s", p.key, msg)
		}
		last = msg
	}
}

// execSpec resolves what one run of container c needs: environment,
// argv and bind mounts.
func (p *podRun) execSpec(ctx context.Context, c *corev1.Container, exe string) (*execSpec, error) {
	pod := p.latest()
	env, err := newEnvBuilder(p.rt.cfg.Client, pod, p.rt.cfg.NodeIP, p.ip(), p.rt.cfg.Allocatable, p.rt.cfg.API).build(ctx, c)
	if err != nil {
		return nil, &configError{reason: reasonConfigError, err: err}
	}
	expand := expander(env)
	argv, err := containerArgv(exe, c, expand)
	if err != nil {
		return nil, &configError{reason: reasonCreateError, err: err}
	}
	spec := &execSpec{Path: exe, Args: argv, Env: envList(env), Dir: c.WorkingDir, HostMountNamespace: p.rt.mountNS, NetNS: p.netNS()}
	p.volumesLock.Lock()
	defer p.volumesLock.Unlock()
	for i := range c.VolumeMounts {
		m := &c.VolumeMounts[i]
		src, err := p.vols.mountSource(pod, m, expand)
		if err != nil {
			return nil, &configError{reason: reasonCreateError, err: fmt.Errorf("volume mount %s: %w", m.MountPath, err)}
		}
		spec.Binds = append(spec.Binds, bind{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return spec, nil
}
