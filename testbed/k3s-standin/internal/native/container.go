package native

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Waiting and terminated reasons, as kubelet and containerd report them.
const (
	reasonContainerCreating = "ContainerCreating"
	reasonConfigError       = "CreateContainerConfigError"
	reasonCreateError       = "CreateContainerError"
	reasonCrashLoop         = "CrashLoopBackOff"
	reasonCompleted         = "Completed"
	reasonError             = "Error"
	reasonStartError        = "StartError"
	reasonNotRun            = "NotRunNatively"
)

type containerPhase int

const (
	phaseWaiting containerPhase = iota
	phaseRunning
	phaseTerminated
)

// container is one container of a native pod and its current and last run.
type container struct {
	pod  *podRun
	spec corev1.Container
	init bool
	exe  string // "" for an init container that is skipped

	mu        sync.Mutex
	phase     containerPhase
	reason    string // waiting or terminated reason
	message   string
	startedAt time.Time
	endedAt   time.Time
	exitCode  int32
	lastTerm  *corev1.ContainerStateTerminated // the most recent run's end
	prevTerm  *corev1.ContainerStateTerminated // the one before
	restarts  int32
	ready     bool
	started   bool
	id        string
	proc      *process
}

func (c *container) name() string { return c.pod.key + "/" + c.spec.Name }

// sidecar reports whether c is an init container that keeps running.
func (c *container) sidecar() bool {
	return c.init && c.spec.RestartPolicy != nil && *c.spec.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

func (c *container) update(f func()) {
	c.mu.Lock()
	f()
	c.mu.Unlock()
	c.pod.changed()
}

func (c *container) setWaiting(reason, message string) {
	c.update(func() {
		c.phase, c.reason, c.message, c.ready, c.started = phaseWaiting, reason, message, false, false
	})
}

// skip marks an init container without executable as completed without
// running it.
func (c *container) skip() {
	c.update(func() {
		now := time.Now()
		c.phase, c.reason, c.startedAt, c.endedAt = phaseTerminated, reasonCompleted, now, now
		c.message = fmt.Sprintf("%s: no executable for image %s in the stand-in's native images; not run", reasonNotRun, c.spec.Image)
	})
}

// run keeps the container running as restart decides, until ctx ends; then
// it stops the process with the pod's grace period. It returns whether the
// last run exited 0 (init containers go on only then).
func (c *container) run(ctx context.Context, restart func(exitCode int32) bool) bool {
	var backoff crashBackoff
	first := true
	for {
		if !first {
			c.update(func() { c.restarts++ })
		}
		first = false
		ran, exitCode, err := c.runOnce(ctx)
		if ctx.Err() != nil {
			return false
		}
		var cfgErr *configError
		if errors.As(err, &cfgErr) {
			// Nothing ran: retry as kubelet's pod sync would, no restart counted.
			first = true
			c.setWaiting(cfgErr.reason, cfgErr.Error())
			if !sleep(ctx, max(backoff.delay(0), 2*time.Second)) {
				return false
			}
			continue
		}
		if !restart(exitCode) {
			return exitCode == 0
		}
		delay := backoff.delay(ran)
		if delay > 0 {
			c.update(func() {
				c.phase, c.reason, c.ready, c.started = phaseWaiting, reasonCrashLoop, false, false
				c.message = fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)", delay, c.spec.Name, c.pod.name, c.pod.namespace, c.pod.uid)
			})
			c.pod.rt.logf("native: %s exited %d; restarting in %s", c.name(), exitCode, delay)
			if !sleep(ctx, delay) {
				return false
			}
		} else {
			c.pod.rt.logf("native: %s exited %d; restarting", c.name(), exitCode)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// configError is a failure before any process started (environment,
// command, mounts), reported as the waiting reason.
type configError struct {
	reason string
	err    error
}

func (e *configError) Error() string { return e.err.Error() }

// runOnce starts one run of the container, probes it and waits until it
// exits or ctx ends.
func (c *container) runOnce(ctx context.Context) (time.Duration, int32, error) {
	c.mu.Lock()
	restarts := c.restarts
	c.mu.Unlock()
	spec, err := c.pod.execSpec(ctx, &c.spec, c.exe)
	if err != nil {
		return 0, 0, err
	}
	specPath := filepath.Join(c.pod.stateDir, "containers", c.spec.Name, "spec.json")
	if err := writeSpec(specPath, spec); err != nil {
		return 0, 0, &configError{reason: reasonCreateError, err: err}
	}
	logPath := containerLogPath(c.pod.logDir, c.spec.Name, restarts)
	log, err := openLog(logPath)
	if err != nil {
		return 0, 0, &configError{reason: reasonCreateError, err: err}
	}
	defer log.close()
	// kubelet keeps the log of the previous run only.
	if restarts >= 2 {
		_ = os.Remove(containerLogPath(c.pod.logDir, c.spec.Name, restarts-2))
		_ = os.Remove(containerLogPath(c.pod.logDir, c.spec.Name, restarts-2) + ".1")
	}
	id := fakeContainerID(string(c.pod.uid), c.spec.Name, restarts)
	proc, err := startProcess(c.pod.rt.forker, specPath, log)
	if err != nil {
		var se *setupError
		msg := err.Error()
		if errors.As(err, &se) {
			msg = se.msg
		}
		c.pod.rt.logf("native: %s could not start: %s", c.name(), msg)
		now := time.Now()
		c.update(func() {
			c.phase, c.id = phaseTerminated, id
			c.startedAt, c.endedAt, c.exitCode, c.reason, c.message = now, now, 128, reasonStartError, msg
			c.recordTermination()
		})
		return 0, 128, nil
	}
	c.pod.rt.pids.add(proc.pid, c.name()+" "+string(c.pod.uid))
	defer c.pod.rt.pids.remove(proc.pid)
	c.pod.rt.logf("native: %s started (pid %d, %s)", c.name(), proc.pid, filepath.Base(c.exe))
	c.update(func() {
		c.phase, c.reason, c.message, c.id, c.proc = phaseRunning, "", "", id, proc
		c.startedAt = proc.started
		c.started = c.spec.StartupProbe == nil
		c.ready = c.started && c.spec.ReadinessProbe == nil
	})
	probeCtx, stopProbes := context.WithCancel(ctx)
	go c.probe(probeCtx, proc, spec)
	select {
	case <-proc.exited:
	case <-ctx.Done():
		proc.stop(c.pod.gracePeriod())
	}
	stopProbes()
	reason, message := reasonCompleted, ""
	if proc.exitCode != 0 {
		reason = reasonError
	}
	c.pod.rt.logf("native: %s (pid %d) exited with %d", c.name(), proc.pid, proc.exitCode)
	c.update(func() {
		c.phase, c.reason, c.message, c.exitCode, c.endedAt = phaseTerminated, reason, message, proc.exitCode, time.Now()
		c.ready, c.started, c.proc = false, false, nil
		c.recordTermination()
	})
	return time.Since(proc.started), proc.exitCode, nil
}

// recordTermination keeps the end of the run that just ended; c.mu held.
func (c *container) recordTermination() {
	c.prevTerm = c.lastTerm
	c.lastTerm = &corev1.ContainerStateTerminated{
		ExitCode:    c.exitCode,
		Reason:      c.reason,
		Message:     c.message,
		StartedAt:   wholeSecond(c.startedAt),
		FinishedAt:  wholeSecond(c.endedAt),
		ContainerID: c.id,
	}
}

// probe runs the startup probe, then readiness and liveness, as kubelet.
func (c *container) probe(ctx context.Context, proc *process, spec *execSpec) {
	p := &prober{host: c.pod.ip(), container: &c.spec, runExec: func(ctx context.Context, command []string) error {
		return c.pod.rt.execProbe(ctx, spec, command)
	}}
	kill := func(why string) {
		c.pod.rt.logf("native: %s: %s; killing it", c.name(), why)
		go proc.stop(c.pod.gracePeriod())
	}
	if sp := c.spec.StartupProbe; sp != nil {
		startedc := make(chan bool, 1)
		sctx, stop := context.WithCancel(ctx)
		go probeWorker(sctx, p, sp, false, func(ok bool, detail string) {
			if ok {
				startedc <- true
				return
			}
			kill("startup probe failed: " + detail)
		})
		select {
		case <-ctx.Done():
			stop()
			return
		case <-startedc:
			stop()
		}
		c.update(func() {
			c.started = true
			c.ready = c.spec.ReadinessProbe == nil
		})
	}
	if rp := c.spec.ReadinessProbe; rp != nil {
		go probeWorker(ctx, p, rp, false, func(ok bool, _ string) {
			c.update(func() { c.ready = ok && c.phase == phaseRunning })
		})
	}
	if lp := c.spec.LivenessProbe; lp != nil {
		go probeWorker(ctx, p, lp, true, func(ok bool, detail string) {
			if !ok {
				kill("liveness probe failed: " + detail)
			}
		})
	}
}

// fakeContainerID names one run of a container in containerd's form.
func fakeContainerID(uid, name string, restarts int32) string {
	sum := sha256.Sum256([]byte(uid + "/" + name + "/" + strconv.Itoa(int(restarts))))
	return "containerd://" + hex.EncodeToString(sum[:])
}
