package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"mcplan.io/mcplan/testbed"
)

// up brings hosts up, prints how to reach them and exits; the hosts keep
// running.
func up(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	kind := fs.String("kind", string(testbed.KindLight), "host kind: light or systemd")
	native := fs.String("native-images", "", "folder bound read-only into every host at "+testbed.HostNativeImagesDir+" (testbed/native-images/build.sh prints it)")
	// Accept "up 3 --kind x" as well as "up --kind x 3".
	var n string
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		n, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if n == "" && fs.NArg() > 0 {
		n = fs.Arg(0)
	}
	hosts, err := strconv.Atoi(n)
	if err != nil {
		return fmt.Errorf("testbed up: want a number of hosts, got %q", n)
	}
	k, err := testbed.ParseKind(*kind)
	if err != nil {
		return err
	}
	start := time.Now()
	bed, err := testbed.Up(ctx, testbed.Options{Hosts: hosts, Kind: k, NativeImages: *native, Log: os.Stderr})
	if err != nil {
		return err
	}
	fmt.Printf("run %s: %d %s hosts on %s, up in %s\n", bed.Prefix, len(bed.Hosts), bed.Kind, bed.Subnet, time.Since(start).Round(time.Millisecond))
	for _, h := range bed.Hosts {
		fmt.Printf("  %-4s %-15s netns %-12s  %s\n", h.Name, h.Address, h.Namespace, bed.SSHCommand(h))
	}
	fmt.Printf("client key:  %s\n", bed.ClientKeyPath)
	fmt.Printf("known_hosts: %s\n", bed.KnownHostsPath)
	fmt.Printf("manifest:    %s/manifest.json\n", bed.Dir)
	fmt.Printf("remove with: testbed down %s\n", bed.Prefix)
	return nil
}

// down removes the given runs, or with --all every run no live process
// holds (with --force those too).
func down(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("down", flag.ContinueOnError)
	all := fs.Bool("all", false, "remove every run on this machine that no live process holds")
	force := fs.Bool("force", false, "with --all, also remove runs that a live process holds")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *all {
		removed, skipped, err := testbed.DownAll(ctx, "")
		for _, p := range removed {
			fmt.Printf("removed %s\n", p)
		}
		for _, p := range skipped {
			if *force {
				if ferr := testbed.DownRun(ctx, p, ""); ferr != nil {
					fmt.Fprintln(os.Stderr, ferr)
					continue
				}
				fmt.Printf("removed %s (was held by a live process)\n", p)
				continue
			}
			fmt.Printf("skipped %s: held by a live process (use --force)\n", p)
		}
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("testbed down: name a run prefix or use --all")
	}
	var failed bool
	for _, p := range fs.Args() {
		if err := testbed.DownRun(ctx, p, ""); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
			continue
		}
		fmt.Printf("removed %s\n", p)
	}
	if failed {
		return fmt.Errorf("testbed down: some runs were not removed completely")
	}
	return nil
}

// list prints every run that has anything left on the machine.
func list(ctx context.Context) error {
	runs, err := testbed.FindRuns(ctx, "")
	for _, p := range runs {
		fmt.Println(p)
	}
	return err
}
