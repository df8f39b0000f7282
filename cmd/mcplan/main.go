// Command mcplan builds Istio multicluster meshes on k3s from one plan file.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/term"

	"mcplan.io/mcplan/internal/printable"
)

// Exit codes.
const (
	exitOK          = 0   // success; for plan --detailed-exitcode: no changes
	exitError       = 1   // any error: invalid plan, failed step, locked state...
	exitChanges     = 2   // plan --detailed-exitcode: changes pending
	exitInterrupted = 130 // stopped by a signal; state saved, apply again resumes
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the CLI and returns the exit code. The first SIGINT or
// SIGTERM drains (no new steps start, running ones finish); the second
// cancels the context, aborting running steps.
func run(args []string) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drain := make(chan struct{})
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(signals)
	go func() {
		select {
		case <-signals:
		case <-ctx.Done():
			return
		}
		fmt.Fprintln(os.Stderr, "\nStopping: no new steps start; running steps finish. Press Ctrl-C again to abort them.")
		close(drain)
		select {
		case <-signals:
			fmt.Fprintln(os.Stderr, "\nAborting running steps.")
			cancel()
		case <-ctx.Done():
		}
	}()

	c := &cli{stdout: printable.Writer(os.Stdout), stderr: printable.Writer(os.Stderr), drain: drain, build: readBuild()}
	if term.IsTerminal(int(os.Stdout.Fd())) {
		c.terminal = os.Stdout
	}
	c.stdin, c.stdinTerminal = os.Stdin, term.IsTerminal(int(os.Stdin.Fd()))
	return c.execute(ctx, args)
}

// execute runs one command line and returns its exit code.
func (c *cli) execute(ctx context.Context, args []string) int {
	root := c.rootCommand()
	root.SetArgs(longOut(args))
	err := root.ExecuteContext(ctx)
	var ex *exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ex):
		if ex.msg != "" {
			fmt.Fprintln(c.stderr, ex.msg)
		}
		return ex.code
	default:
		fmt.Fprintln(c.stderr, "Error:", err)
		return exitError
	}
}

// longOut reads Terraform's single-dash -out FILE (and -out=FILE) as
// --out: flag parsing would take it for -o ut, an output format that does
// not exist. Arguments after "--" are left alone.
func longOut(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if a == "-out" || strings.HasPrefix(a, "-out=") {
			out[i] = "-" + a
		}
	}
	return out
}

// exitCodeError carries an exit code other than 1, or an error already shown.
type exitCodeError struct {
	code int
	msg  string
}

func (e *exitCodeError) Error() string { return fmt.Sprintf("exit %d: %s", e.code, e.msg) }
