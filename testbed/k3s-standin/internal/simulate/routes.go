package simulate

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// routeProto marks the routes the stand-in adds (`ip route ... proto
// 187`), so that a later start finds and replaces those of an earlier one.
const routeProto = "187"

// routeResync is how often the routes are compared with the Nodes even
// without a change (a route removed by hand comes back).
const routeResync = 30 * time.Second

const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// Routes is the pod network between the nodes of one cluster, as flannel's
// host-gw backend makes it: a route to every other node's spec.podCIDR via
// that node's InternalIP, kept in step with the Nodes (added, changed,
// removed). Nodes whose InternalIP is an address of this network namespace
// share it (the stand-in's e2e runs several nodes in one): their pod
// bridge is local and needs no route. It also turns IPv4 forwarding on,
// as k3s does. The routes stay when the stand-in stops, as flannel's do.
type Routes struct {
	Client kubernetes.Interface
	Name   string // this node
	Logf   func(format string, args ...any)
}

// Run keeps the routes until ctx ends.
func (r *Routes) Run(ctx context.Context) error {
	r.enableForwarding()
	factory := informers.NewSharedInformerFactory(r.Client, 10*time.Minute)
	nodes := factory.Core().V1().Nodes()
	changed := make(chan struct{}, 1)
	poke := func(any) {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	if _, err := nodes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: poke, UpdateFunc: func(_, o any) { poke(o) }, DeleteFunc: poke,
	}); err != nil {
		return fmt.Errorf("simulate: routes node handler: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), nodes.Informer().HasSynced) {
		return fmt.Errorf("simulate: routes cache sync: %w", ctx.Err())
	}
	t := time.NewTicker(routeResync)
	defer t.Stop()
	last := ""
	for {
		list, err := nodes.Lister().List(everything())
		if err == nil {
			err = r.sync(ctx, list)
		}
		if msg := fmt.Sprint(err); err != nil && msg != last {
			r.Logf("routes: %v", err)
			last = msg
		} else if err == nil {
			last = ""
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		case <-t.C:
		}
	}
}

// enableForwarding turns net.ipv4.ip_forward on when it is off; where it
// cannot (a read-only /proc/sys), it says so: pods are then reached from
// their own node only.
func (r *Routes) enableForwarding() {
	b, err := os.ReadFile(ipForwardPath)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return
	}
	if err := os.WriteFile(ipForwardPath, []byte("1\n"), 0o644); err != nil {
		r.Logf("routes: net.ipv4.ip_forward is off and cannot be turned on (%v): pods of this node are not reachable from other nodes", err)
		return
	}
	r.Logf("routes: net.ipv4.ip_forward turned on")
}

// wantedRoutes is podCIDR -> gateway for the nodes other than self.
func wantedRoutes(self string, nodes []*corev1.Node, local func(string) bool) map[string]string {
	want := map[string]string{}
	for _, n := range nodes {
		if n.Name == self || n.Spec.PodCIDR == "" || n.DeletionTimestamp != nil {
			continue
		}
		ip := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && net.ParseIP(a.Address).To4() != nil {
				ip = a.Address
				break
			}
		}
		if ip == "" || local(ip) {
			continue
		}
		if _, cidr, err := net.ParseCIDR(n.Spec.PodCIDR); err == nil && cidr.IP.To4() != nil {
			want[cidr.String()] = ip
		}
	}
	return want
}

func (r *Routes) sync(ctx context.Context, nodes []*corev1.Node) error {
	locals, err := localAddresses()
	if err != nil {
		return err
	}
	want := wantedRoutes(r.Name, nodes, func(ip string) bool { return slices.Contains(locals, ip) })
	have, err := r.current(ctx)
	if err != nil {
		return err
	}
	var errs []string
	for dst, via := range want {
		if have[dst] == via {
			continue
		}
		if out, err := exec.CommandContext(ctx, "ip", "-4", "route", "replace", dst, "via", via, "proto", routeProto).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip route replace %s via %s: %v: %s", dst, via, err, strings.TrimSpace(string(out))))
			continue
		}
		r.Logf("routes: %s via %s", dst, via)
	}
	for dst := range have {
		if _, ok := want[dst]; ok {
			continue
		}
		if out, err := exec.CommandContext(ctx, "ip", "-4", "route", "del", dst, "proto", routeProto).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Sprintf("ip route del %s: %v: %s", dst, err, strings.TrimSpace(string(out))))
			continue
		}
		r.Logf("routes: %s removed (its node is gone)", dst)
	}
	if len(errs) > 0 {
		return fmt.Errorf("simulate: %s", strings.Join(errs, "; "))
	}
	return nil
}

// current lists the routes of routeProto: destination -> gateway.
func (r *Routes) current(ctx context.Context) (map[string]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "-4", "route", "show", "proto", routeProto).Output()
	if err != nil {
		return nil, fmt.Errorf("simulate: ip route show proto %s: %w", routeProto, err)
	}
	have := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == "via" {
			have[f[0]] = f[2]
		}
	}
	return have, nil
}

func localAddresses() ([]string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("simulate: local addresses: %w", err)
	}
	var out []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			out = append(out, ipn.IP.String())
		}
	}
	return out, nil
}
