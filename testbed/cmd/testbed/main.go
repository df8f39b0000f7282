// Command testbed brings test hosts up and down (mcplan.io/mcplan/testbed).
//
//	testbed up N [--kind light|systemd] [--native-images DIR]
//	                                      bring up N hosts; they keep running
//	testbed down PREFIX...                remove the given runs
//	testbed down --all                    remove every run no live process holds
//	testbed list                          list runs on this machine
//	testbed rootfs                        build the systemd hosts' cached tree
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"mcplan.io/mcplan/testbed"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func usage() error {
	return fmt.Errorf("usage: testbed up N [--kind light|systemd] [--native-images DIR] | down PREFIX... | down --all | list | rootfs")
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return usage()
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:])
	case "down":
		return down(ctx, args[1:])
	case "list":
		return list(ctx)
	case "rootfs":
		start := time.Now()
		dir, err := testbed.EnsureRootfs(ctx, "", "", os.Stderr)
		if err != nil {
			return err
		}
		fmt.Printf("%s (%s)\n", dir, time.Since(start).Round(time.Millisecond))
		return nil
	}
	return usage()
}
