package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"

	"mcplan.io/mcplan/testbed/fakeistiod"
)

// fakeIstiod serves allow-all Istio webhooks on an address of the test
// world (a bridge's .1) until interrupted, after printing the plan's
// istio.values that point Istio's webhooks at it, as one JSON line. Test
// harness: it stands in for istiod's webhooks while no istiod runs.
func fakeIstiod(ctx context.Context, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: testbed fake-istiod ADDR")
	}
	addr, err := netip.ParseAddr(args[0])
	if err != nil {
		return fmt.Errorf("testbed fake-istiod: %w", err)
	}
	f, err := fakeistiod.Serve(addr)
	if err != nil {
		return fmt.Errorf("testbed fake-istiod: %w", err)
	}
	defer f.Close()
	if err := json.NewEncoder(os.Stdout).Encode(f.Values()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
