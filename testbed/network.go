package testbed

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
)

// subnetBase is the /16 that runs take their /24 from.
const subnetBase = "10.213.0.0/16"

// hostAddress is the address of host i (1-based) in subnet: .10+i.
func hostAddress(subnet netip.Prefix, i int) netip.Addr {
	b := subnet.Addr().As4()
	b[3] = byte(10 + i)
	return netip.AddrFrom4(b)
}

// gatewayAddress is the bridge's address in subnet: .1.
func gatewayAddress(subnet netip.Prefix) netip.Addr {
	b := subnet.Addr().As4()
	b[3] = 1
	return netip.AddrFrom4(b)
}

// usedPrefixes returns every IPv4 prefix that an interface address or a
// route of the root namespace covers (the default route excepted).
func usedPrefixes(ctx context.Context) ([]netip.Prefix, error) {
	var used []netip.Prefix
	out, err := command(ctx, "ip", "-j", "-4", "addr")
	if err != nil {
		return nil, err
	}
	var links []struct {
		AddrInfo []struct {
			Local     string `json:"local"`
			PrefixLen int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		return nil, fmt.Errorf("parse ip -j addr: %w", err)
	}
	for _, l := range links {
		for _, a := range l.AddrInfo {
			if p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", a.Local, a.PrefixLen)); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	for _, table := range []string{"main", "local"} {
		out, err := command(ctx, "ip", "-j", "-4", "route", "show", "table", table)
		if err != nil {
			return nil, err
		}
		var routes []struct {
			Dst string `json:"dst"`
		}
		if err := json.Unmarshal([]byte(out), &routes); err != nil {
			return nil, fmt.Errorf("parse ip -j route: %w", err)
		}
		for _, r := range routes {
			if r.Dst == "default" || r.Dst == "" {
				continue
			}
			dst := r.Dst
			if !strings.Contains(dst, "/") {
				dst += "/32"
			}
			if p, err := netip.ParsePrefix(dst); err == nil {
				used = append(used, p.Masked())
			}
		}
	}
	return used, nil
}

// freeSubnet picks at random a /24 of subnetBase that no address or route
// of the root namespace overlaps. The caller holds the allocation lock until
// the bridge has its address, so concurrent runs never pick the same one.
func freeSubnet(ctx context.Context) (netip.Prefix, error) {
	used, err := usedPrefixes(ctx)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("find a free subnet: %w", err)
	}
	base := netip.MustParsePrefix(subnetBase)
	var free []netip.Prefix
	for third := 1; third < 255; third++ {
		b := base.Addr().As4()
		b[2] = byte(third)
		cand := netip.PrefixFrom(netip.AddrFrom4(b), 24)
		clash := false
		for _, u := range used {
			if u.Overlaps(cand) {
				clash = true
				break
			}
		}
		if !clash {
			free = append(free, cand)
		}
	}
	if len(free) == 0 {
		return netip.Prefix{}, fmt.Errorf("find a free subnet: every /24 of %s is in use", subnetBase)
	}
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(free))))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("find a free subnet: %w", err)
	}
	return free[n.Int64()], nil
}

// makeBridge creates the run's bridge with address .1 of subnet and turns
// bridge netfilter off, so that the machine's iptables rules never drop
// traffic between the hosts.
func makeBridge(ctx context.Context, name string, subnet netip.Prefix) error {
	gw := netip.PrefixFrom(gatewayAddress(subnet), subnet.Bits())
	steps := [][]string{
		{"link", "add", name, "type", "bridge"},
		{"addr", "add", gw.String(), "dev", name},
		{"link", "set", name, "up"},
	}
	for _, s := range steps {
		if _, err := command(ctx, "ip", s...); err != nil {
			return fmt.Errorf("bridge %s: %w", name, err)
		}
	}
	return disableBridgeNetfilter()
}

// disableBridgeNetfilter sets net.bridge.bridge-nf-call-{ip,ip6,arp}tables
// to 0 where the sysctl exists (br_netfilter loaded); otherwise bridged
// traffic does not pass iptables anyway.
func disableBridgeNetfilter() error {
	for _, name := range []string{"bridge-nf-call-iptables", "bridge-nf-call-ip6tables", "bridge-nf-call-arptables"} {
		p := filepath.Join("/proc/sys/net/bridge", name)
		cur, err := os.ReadFile(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("sysctl %s: %w", name, err)
		}
		if strings.TrimSpace(string(cur)) == "0" {
			continue
		}
		if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=0: %w", name, err)
		}
	}
	return nil
}

// makeHostNetwork creates host i's network namespace and its veth pair:
// one end on the bridge, the other inside as eth0 with the host's address,
// lo up. Its default route is unreachable: a host reaches the bridge's
// subnet (the other hosts and the machine at .1) and nothing else, so no
// test traffic can leave the machine, even where the machine forwards
// packets (for example to the made-up pod IPs of the k3s stand-in).
func makeHostNetwork(ctx context.Context, prefix string, i int, subnet netip.Prefix) error {
	ns := namespaceName(prefix, i)
	veth, peer := vethName(prefix, i), peerName(prefix, i)
	addr := netip.PrefixFrom(hostAddress(subnet, i), subnet.Bits())
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", veth, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"link", "set", veth, "master", bridgeName(prefix)},
		{"link", "set", veth, "up"},
		{"-n", ns, "link", "set", peer, "name", "eth0"},
		{"-n", ns, "addr", "add", addr.String(), "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "add", "unreachable", "default"},
	}
	for _, s := range steps {
		if _, err := command(ctx, "ip", s...); err != nil {
			return fmt.Errorf("network: %w", err)
		}
	}
	return nil
}

// enableForwarding turns IPv4 forwarding on in network namespace ns, as
// k3s does on a VM: the k3s stand-in routes pod traffic between nodes (its
// pods have network namespaces of their own). systemd hosts need it done
// from here: systemd-nspawn mounts /proc/sys read-only (light hosts' k3s
// stand-in turns it on itself).
func enableForwarding(ctx context.Context, ns string) error {
	if _, err := command(ctx, "ip", "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
		return fmt.Errorf("network: ip_forward in %s: %w", ns, err)
	}
	return nil
}
