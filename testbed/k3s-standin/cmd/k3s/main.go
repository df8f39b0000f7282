// Command k3s is the testbed's k3s stand-in: it answers like k3s where mcplan
// uses it and serves a real Kubernetes API (upstream etcd, kube-apiserver,
// kube-controller-manager and kube-scheduler in one process). Only what
// needs containers is simulated; see internal/simulate.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"k8s.io/component-base/version"

	"mcplan.io/mcplan/testbed/k3s-standin/internal/agent"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/config"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/native"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/sdnotify"
	"mcplan.io/mcplan/testbed/k3s-standin/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: k3s --version | server [flags] | agent [flags]")
		return 2
	}
	switch args[0] {
	case "--version", "-v", "version":
		fmt.Fprintf(stdout, "k3s version %s (standin)\ngo version %s\n", version.Get().GitVersion, runtime.Version())
		return 0
	case native.ExecSubcommand:
		// Hidden: the stand-in re-executes itself as a native pod's process.
		return native.ExecMain(args[1:], stderr)
	case "etcd-snapshot":
		return etcdSnapshot(args[1:], stdout, stderr)
	case "server", "agent":
	default:
		fmt.Fprintf(stderr, "k3s: unknown command %q (the stand-in knows --version, server, agent, etcd-snapshot)\n", args[0])
		return 2
	}
	// The notify socket is for this process only, not for what it starts.
	sdnotify.Take()
	role := config.Role(args[0])
	cfg, err := config.Parse(role, args[1:], os.Getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "k3s:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if role == config.RoleServer {
		err = server.Run(ctx, cfg, stderr)
	} else {
		err = agent.Run(ctx, cfg, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "k3s:", err)
		return 1
	}
	return 0
}

// etcdSnapshot runs "k3s etcd-snapshot save|ls|list [flags]" against the
// local server's etcd member (its settings from config.yaml and flags).
func etcdSnapshot(args []string, stdout, stderr io.Writer) int {
	sub := "save"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		sub, args = args[0], args[1:]
	}
	cfg, err := config.Parse(config.RoleEtcdSnapshot, args, os.Getenv, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "k3s:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := server.EtcdSnapshot(ctx, cfg, sub, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "k3s:", err)
		return 1
	}
	return 0
}
