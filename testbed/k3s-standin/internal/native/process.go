package native

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// selfExe is the running stand-in binary, which is re-executed as the exec
// helper (a link that works even when the file was replaced).
const selfExe = "/proc/self/exe"

// process is one started container process: the exec helper after it
// exec'd the container's program.
type process struct {
	cmd     *exec.Cmd
	pid     int
	started time.Time
	exited  chan struct{}
	// Set before exited is closed.
	exitCode int32
	signaled bool
}

// setupError is a failure of the exec helper before the program ran
// (mounts, working directory, exec).
type setupError struct{ msg string }

func (e *setupError) Error() string { return e.msg }

// startProcess starts the exec helper for spec in a new mount namespace and
// process group, with SIGKILL as parent-death signal, and waits until it
// exec'd the program (or failed to). stdout and stderr go to log.
func startProcess(f *forker, specPath string, log *logFile) (*process, error) {
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("status pipe: %w", err)
	}
	defer statusR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		statusW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	cmd := exec.Command(selfExe, ExecSubcommand, specPath)
	cmd.Env = []string{} // the helper takes the container's env from the spec
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.ExtraFiles = []*os.File{statusW} // fd 3
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
		Unshareflags: syscall.CLONE_NEWNS, // Go also makes / rprivate in the child
	}
	err = f.start(cmd)
	statusW.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, &setupError{msg: fmt.Sprintf("start exec helper (unshare of the mount namespace needs CAP_SYS_ADMIN): %v", err)}
	}
	pumped := make(chan struct{}, 2)
	for _, pipe := range []struct {
		r      *os.File
		stream string
	}{{outR, streamStdout}, {errR, streamStderr}} {
		go func() {
			log.pump(pipe.r, pipe.stream)
			pumped <- struct{}{}
		}()
	}
	status, _ := io.ReadAll(io.LimitReader(statusR, 64<<10))
	p := &process{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), exited: make(chan struct{})}
	go p.wait(pumped, outR, errR)
	if len(status) > 0 {
		<-p.exited
		return nil, &setupError{msg: strings.TrimSpace(string(status))}
	}
	return p, nil
}

// wait reaps the process and records how it ended; exited is closed once
// its output is in the log.
func (p *process) wait(pumped <-chan struct{}, pipes ...*os.File) {
	err := p.cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		p.exitCode = 0
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.exitCode, p.signaled = 128+int32(ws.Signal()), true
		} else {
			p.exitCode = int32(exitErr.ExitCode())
		}
	default:
		p.exitCode = 128
	}
	// Children of the program may hold the pipes open: stop reading a
	// moment after the process is gone.
	timeout := time.After(2 * time.Second)
	for range pipes {
		select {
		case <-pumped:
		case <-timeout:
		}
	}
	for _, f := range pipes {
		f.Close()
	}
	close(p.exited)
}

// signal sends sig to the process's whole group.
func (p *process) signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.pid, sig)
}

// stop sends SIGTERM to the group, then SIGKILL after grace, and waits
// until the process is gone.
func (p *process) stop(grace time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	p.signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.signal(syscall.SIGKILL)
		<-p.exited
	}
	// Leftover children of the group.
	p.signal(syscall.SIGKILL)
}

// procStartTime is field 22 of /proc/<pid>/stat (start time in clock ticks
// since boot): with the pid it names one process, not a reused pid.
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; it ends at the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(s[i+1:])
	const startTimeField = 22 - 3 // fields after ')' start at field 3
	if len(fields) <= startTimeField {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	return strconv.ParseUint(fields[startTimeField], 10, 64)
}
