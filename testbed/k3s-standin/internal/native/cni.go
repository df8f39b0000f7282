package native

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/containernetworking/cni/libcni"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// podIfName is the pod's interface, as kubelet asks the CNI for it.
const podIfName = "eth0"

// CNI configures how pods outside the host network get their network
// namespace: the real CNI plugins (bridge, host-local, loopback), called
// through libcni as a CNI-using kubelet calls them.
type CNI struct {
	// BinDir holds the plugins (Debian's containernetworking-plugins:
	// /usr/lib/cni).
	BinDir string
	// Bridge is the node's pod bridge (k3s: cni0).
	Bridge string
	// PodCIDR is the node's spec.podCIDR.
	PodCIDR string
	// DataDir holds host-local's allocations (ipam/) and libcni's result
	// cache (cache/).
	DataDir string
}

// network calls the CNI plugins for the pods of one node.
type network struct {
	cni  *libcni.CNIConfig
	list *libcni.NetworkConfigList
}

func newNetwork(c CNI) (*network, error) {
	_, cidr, err := net.ParseCIDR(c.PodCIDR)
	if err != nil {
		return nil, fmt.Errorf("cni: podCIDR %q: %w", c.PodCIDR, err)
	}
	start, end, err := NativeRange(cidr)
	if err != nil {
		return nil, fmt.Errorf("cni: %w", err)
	}
	gw := make(net.IP, 4)
	binary.BigEndian.PutUint32(gw, binary.BigEndian.Uint32(cidr.IP.To4())+1)
	conf := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "standin-pods",
		"plugins": []any{
			map[string]any{
				"type":         "bridge",
				"bridge":       c.Bridge,
				"isGateway":    true,
				"ipMasq":       true,
				"hairpinMode":  true,
				"capabilities": map[string]any{"ips": true},
				"ipam": map[string]any{
					"type":    "host-local",
					"dataDir": filepath.Join(c.DataDir, "ipam"),
					"ranges": []any{[]any{map[string]any{
						"subnet": cidr.String(), "rangeStart": start.String(), "rangeEnd": end.String(), "gateway": gw.String(),
					}}},
					"routes": []any{map[string]any{"dst": "0.0.0.0/0"}},
				},
			},
			map[string]any{"type": "loopback"},
		},
	}
	b, err := json.Marshal(conf)
	if err != nil {
		return nil, fmt.Errorf("cni: encode config: %w", err)
	}
	list, err := libcni.ConfListFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("cni: config: %w", err)
	}
	return &network{cni: libcni.NewCNIConfigWithCacheDir([]string{c.BinDir}, filepath.Join(c.DataDir, "cache"), nil), list: list}, nil
}

// NativeRange is the part of a podCIDR whose addresses go to native pods
// (host-local's range): the upper half, without the broadcast address.
// The simulated pods take theirs from the lower half (from .2 on).
func NativeRange(cidr *net.IPNet) (net.IP, net.IP, error) {
	base := cidr.IP.To4()
	ones, bits := cidr.Mask.Size()
	if base == nil || bits != 32 || bits-ones < 3 {
		return nil, nil, fmt.Errorf("podCIDR %s: want IPv4 with at least 8 addresses", cidr)
	}
	size := uint32(1) << uint(bits-ones)
	first, last := make(net.IP, 4), make(net.IP, 4)
	binary.BigEndian.PutUint32(first, binary.BigEndian.Uint32(base)+size/2)
	binary.BigEndian.PutUint32(last, binary.BigEndian.Uint32(base)+size-2)
	return first, last, nil
}

func runtimeConf(containerID, nsPath string, ip string) *libcni.RuntimeConf {
	rc := &libcni.RuntimeConf{ContainerID: containerID, NetNS: nsPath, IfName: podIfName}
	if ip != "" {
		rc.CapabilityArgs = map[string]any{"ips": []string{ip}}
	}
	return rc
}

// add attaches the namespace at nsPath to the pod network and returns the
// pod's IP. want, when set, is asked for (the IP the pod had before a
// restart of the stand-in); when host-local refuses it, any free address
// is taken.
func (n *network) add(ctx context.Context, containerID, nsPath, want string) (string, error) {
	res, err := n.cni.AddNetworkList(ctx, n.list, runtimeConf(containerID, nsPath, want))
	if err != nil && want != "" {
		// Undo what the failed ADD left, then without the wish.
		_ = n.del(ctx, containerID, nsPath)
		res, err = n.cni.AddNetworkList(ctx, n.list, runtimeConf(containerID, nsPath, ""))
	}
	if err != nil {
		return "", fmt.Errorf("cni add: %w", err)
	}
	r, err := types100.NewResultFromResult(res)
	if err != nil {
		return "", fmt.Errorf("cni add: result: %w", err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			return ip.Address.IP.String(), nil
		}
	}
	return "", errors.New("cni add: no IPv4 address in the result")
}

// del detaches a pod (releases its IP, removes its veth and masquerade
// rules); nsPath may be gone already.
func (n *network) del(ctx context.Context, containerID, nsPath string) error {
	if !isNetNS(nsPath) {
		nsPath = ""
	}
	if err := n.cni.DelNetworkList(ctx, n.list, runtimeConf(containerID, nsPath, "")); err != nil {
		return fmt.Errorf("cni del: %w", err)
	}
	return nil
}
