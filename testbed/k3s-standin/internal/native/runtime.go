package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// shutdownGrace bounds the grace period when the stand-in itself stops.
const shutdownGrace = 10 * time.Second

// Config configures the native runtime of one node.
type Config struct {
	// Client acts as the node (Node authorizer): it may read the Secrets
	// and ConfigMaps of pods bound to the node and request their tokens.
	Client   kubernetes.Interface
	NodeName string
	NodeIP   string
	// ImagesDir holds one executable per image, named after the image.
	ImagesDir string
	// StateDir holds <pod uid>/volumes/<name> and the exec specs
	// (<data-dir>/agent/native-pods), and the pid file.
	StateDir string
	// LogDir is kubelet's pod log root (/var/log/pods).
	LogDir string
	// API is what KUBERNETES_SERVICE_HOST/PORT point at.
	API APIEndpoint
	// Allocatable is the node's allocatable, the default of unset limits
	// in the downward API.
	Allocatable corev1.ResourceList
	// CNI, when set, gives pods outside the host network a network
	// namespace of their own (cni.go); otherwise every pod shares the
	// node's.
	CNI  *CNI
	Logf func(format string, args ...any)
	// Changed is called when the status of a pod may have changed.
	Changed func(namespace, name string)
}

// Runtime runs the native pods of one node.
type Runtime struct {
	cfg     Config
	forker  *forker
	pids    *pidFile
	mountNS string
	base    context.Context
	net     *network // nil: every pod in the node's network namespace

	mu      sync.Mutex
	pods    map[types.UID]*podRun
	decided map[types.UID]decision
}

// decision is whether a pod runs natively, decided when it is first seen.
type decision struct {
	key    string // namespace/name
	native bool
}

// New makes the runtime and kills the processes a previous run of the
// stand-in left (pid file). Processes started later live until Shutdown
// or pod deletion; ctx is the parent of their pods' work.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("native: state dir: %w", err)
	}
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return nil, fmt.Errorf("native: own mount namespace: %w", err)
	}
	r := &Runtime{
		cfg: cfg, forker: newForker(), pids: newPIDFile(filepath.Join(cfg.StateDir, "pids")), mountNS: ns,
		base: context.WithoutCancel(ctx), pods: map[types.UID]*podRun{}, decided: map[types.UID]decision{},
	}
	if err := r.pids.killLeftovers(cfg.Logf); err != nil {
		return nil, fmt.Errorf("native: %w", err)
	}
	if cfg.CNI != nil {
		if r.net, err = newNetwork(*cfg.CNI); err != nil {
			return nil, fmt.Errorf("native: %w", err)
		}
		r.cleanupNetworks(ctx)
	}
	return r, nil
}

func (r *Runtime) logf(format string, args ...any) { r.cfg.Logf(format, args...) }

// Handles reports whether pod runs natively: every (non-init) container's
// image has an executable in the images folder. It is decided once per pod
// UID. Init containers without executable are skipped (reported Completed
// with reason NotRunNatively in their message).
func (r *Runtime) Handles(pod *corev1.Pod) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.decided[pod.UID]; ok {
		return d.native
	}
	d := decision{key: pod.Namespace + "/" + pod.Name, native: len(pod.Spec.Containers) > 0}
	for _, c := range pod.Spec.Containers {
		if _, ok := executableFor(r.cfg.ImagesDir, c.Image); !ok {
			d.native = false
		}
	}
	r.decided[pod.UID] = d
	return d.native
}

// Sync starts a native pod's processes, or stops them once the pod is
// being deleted.
func (r *Runtime) Sync(pod *corev1.Pod) {
	r.mu.Lock()
	p := r.pods[pod.UID]
	if p == nil {
		if pod.DeletionTimestamp != nil || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			r.mu.Unlock()
			return
		}
		p = newPodRun(r, pod)
		r.pods[pod.UID] = p
		r.mu.Unlock()
		p.start(r.base)
	} else {
		r.mu.Unlock()
		p.setPod(pod)
	}
	if pod.DeletionTimestamp != nil {
		p.stop(podGrace(pod))
	}
}

// Status is the status to write for pod, or nil when the runtime has no
// state of it.
func (r *Runtime) Status(pod *corev1.Pod) *corev1.PodStatus {
	p := r.pod(pod.UID)
	if p == nil {
		return nil
	}
	return p.status(&pod.Status, r.cfg.NodeIP)
}

// FinalStatus is the terminal status of a stopped pod: containers that
// never ran are reported as kubelet reports them.
func (r *Runtime) FinalStatus(pod *corev1.Pod) *corev1.PodStatus {
	st := r.Status(pod)
	if st == nil {
		return nil
	}
	if st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed {
		return st
	}
	st.Phase = corev1.PodSucceeded
	for i := range st.ContainerStatuses {
		cs := &st.ContainerStatuses[i]
		cs.Ready = false
		if cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "ContainerStatusUnknown",
				Message: "The container could not be located when the pod was terminated"}}
		}
		if cs.State.Terminated.ExitCode != 0 {
			st.Phase = corev1.PodFailed
		}
	}
	for i := range st.Conditions {
		switch st.Conditions[i].Type {
		case corev1.PodReady, corev1.ContainersReady:
			st.Conditions[i].Status, st.Conditions[i].Reason = corev1.ConditionFalse, "PodCompleted"
		}
	}
	return st
}

// NetNS is the network namespace (path) of a native pod with a network
// of its own, "" for hostNetwork pods and pods not (yet) attached.
func (r *Runtime) NetNS(uid types.UID) string {
	p := r.pod(uid)
	if p == nil {
		return ""
	}
	return p.netNS()
}

// Stopped reports whether no process of the pod runs (any more).
func (r *Runtime) Stopped(uid types.UID) bool {
	p := r.pod(uid)
	return p == nil || p.stopped()
}

// Gone is called when a pod left the API: a native pod that did so without
// graceful termination (force deletion) is stopped and forgotten.
func (r *Runtime) Gone(namespace, name string) {
	key := namespace + "/" + name
	r.mu.Lock()
	var gone []*podRun
	for uid, d := range r.decided {
		if d.key != key {
			continue
		}
		if p := r.pods[uid]; p != nil {
			gone = append(gone, p)
		} else {
			delete(r.decided, uid)
		}
	}
	r.mu.Unlock()
	for _, p := range gone {
		p.stop(min(podGrace(p.latest()), shutdownGrace))
		go func() {
			<-p.done
			r.Forget(p.uid)
		}()
	}
}

// Forget drops a finished pod: its state, volumes and logs, as kubelet
// removes a deleted pod's directories.
func (r *Runtime) Forget(uid types.UID) {
	r.mu.Lock()
	p := r.pods[uid]
	delete(r.pods, uid)
	delete(r.decided, uid)
	r.mu.Unlock()
	if p == nil {
		return
	}
	if !p.stopped() {
		p.stop(0)
		<-p.done
	}
	for _, dir := range []string{p.stateDir, p.logDir} {
		if err := os.RemoveAll(dir); err != nil {
			r.logf("native: remove %s: %v", dir, err)
		}
	}
}

// RemoveStale deletes the state and log directories of native pods that
// are no longer bound to this node (after a restart of the stand-in). Log
// directories are matched by the state directories' pod UIDs, as the log
// root may be shared with other nodes.
func (r *Runtime) RemoveStale(current []*corev1.Pod) {
	keep := map[string]bool{}
	for _, p := range current {
		keep[string(p.UID)] = true
	}
	entries, err := os.ReadDir(r.cfg.StateDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || keep[e.Name()] || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		stale := []string{filepath.Join(r.cfg.StateDir, e.Name())}
		logs, _ := filepath.Glob(filepath.Join(r.cfg.LogDir, "*_"+e.Name()))
		for _, dir := range append(stale, logs...) {
			if err := os.RemoveAll(dir); err != nil {
				r.logf("native: remove %s: %v", dir, err)
			}
		}
	}
}

// Shutdown stops every process (grace at most shutdownGrace) and waits.
func (r *Runtime) Shutdown() {
	r.mu.Lock()
	pods := make([]*podRun, 0, len(r.pods))
	for _, p := range r.pods {
		pods = append(pods, p)
	}
	r.mu.Unlock()
	for _, p := range pods {
		p.stop(min(podGrace(p.latest()), shutdownGrace))
	}
	for _, p := range pods {
		<-p.done
	}
	_ = r.pids.save()
}

func (r *Runtime) pod(uid types.UID) *podRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pods[uid]
}

// IsNative reports whether the pod with uid runs natively here.
func (r *Runtime) IsNative(uid types.UID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.decided[uid].native
}

// ErrNoLog is returned for a container run without log file.
var ErrNoLog = errors.New("no log")

// LogFile returns the log of a container's current run (or, with
// previous, the run before) and whether that run still writes to it.
func (r *Runtime) LogFile(uid types.UID, containerName string, previous bool) (string, func() bool, error) {
	p := r.pod(uid)
	if p == nil {
		return "", nil, fmt.Errorf("pod %s has no native state on this node: %w", uid, ErrNoLog)
	}
	var c *container
	for _, cc := range append(append([]*container(nil), p.inits...), p.apps...) {
		if cc.spec.Name == containerName {
			c = cc
		}
	}
	if c == nil {
		return "", nil, fmt.Errorf("container %q is not in pod %s: %w", containerName, p.key, ErrNoLog)
	}
	c.mu.Lock()
	restarts, phase, id := c.restarts, c.phase, c.id
	c.mu.Unlock()
	n := restarts
	if previous {
		n--
		if n < 0 {
			return "", nil, fmt.Errorf("previous terminated container %q in pod %q not found: %w", containerName, p.name, ErrNoLog)
		}
	}
	path := containerLogPath(p.logDir, containerName, n)
	if _, err := os.Stat(path); err != nil {
		return "", nil, fmt.Errorf("container %q in pod %q has no log (run %d): %w", containerName, p.name, n, ErrNoLog)
	}
	live := func() bool {
		if previous {
			return false
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.restarts == restarts && c.id == id && c.phase == phaseRunning
	}
	if phase != phaseRunning {
		live = func() bool { return false }
	}
	return path, live, nil
}

// ReadLogs writes a container's log to w as kubelet's containerLogs does.
func (r *Runtime) ReadLogs(ctx context.Context, uid types.UID, container string, previous bool, opts LogOptions, w io.Writer) error {
	path, live, err := r.LogFile(uid, container, previous)
	if err != nil {
		return err
	}
	return readLogs(ctx, path, opts, live, w)
}

// execProbe runs an exec probe's command with the container's mounts and
// environment, in a fresh mount namespace (not the container process's
// own: joining a mount namespace is not possible from a multi-threaded Go
// program, but the same bind mounts give the same view).
func (r *Runtime) execProbe(ctx context.Context, spec *execSpec, command []string) error {
	if len(command) == 0 {
		return errors.New("exec probe without command")
	}
	probe := *spec
	probe.Path, probe.Args = command[0], command
	dir, err := os.MkdirTemp(r.cfg.StateDir, ".probe-")
	if err != nil {
		return fmt.Errorf("exec probe: %w", err)
	}
	defer os.RemoveAll(dir)
	specPath := filepath.Join(dir, "spec.json")
	if err := writeSpec(specPath, &probe); err != nil {
		return err
	}
	log, err := openLog(filepath.Join(dir, "out.log"))
	if err != nil {
		return err
	}
	defer log.close()
	proc, err := startProcess(r.forker, specPath, log)
	if err != nil {
		return fmt.Errorf("exec probe: %w", err)
	}
	select {
	case <-proc.exited:
	case <-ctx.Done():
		proc.stop(0)
		return fmt.Errorf("exec probe %q timed out", command)
	}
	if proc.exitCode != 0 {
		return fmt.Errorf("exec probe %q exited %d", command, proc.exitCode)
	}
	return nil
}
