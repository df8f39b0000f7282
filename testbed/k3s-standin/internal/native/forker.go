package native

import (
	"os/exec"
	"runtime"
)

// forker starts processes from one OS thread that lives as long as the
// stand-in: a process's parent-death signal (Pdeathsig) fires when the
// *thread* that forked it ends, and Go may end threads (golang/go#27505).
type forker struct {
	reqs chan forkRequest
}

type forkRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func newForker() *forker {
	f := &forker{reqs: make(chan forkRequest)}
	go func() {
		// Never unlocked: the thread must not be reused or ended.
		runtime.LockOSThread()
		for r := range f.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return f
}

// start runs cmd.Start on the forker's thread.
func (f *forker) start(cmd *exec.Cmd) error {
	done := make(chan error, 1)
	f.reqs <- forkRequest{cmd: cmd, done: done}
	return <-done
}
