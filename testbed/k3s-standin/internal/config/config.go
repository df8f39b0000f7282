// Package config reads k3s-style settings: command-line flags, K3S_*
// environment variables and /etc/rancher/k3s/config.yaml, in that order of
// precedence, like k3s.
package config

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
	"sigs.k8s.io/yaml"
)

// Role is "server" or "agent".
type Role string

// Roles.
const (
	RoleServer Role = "server"
	RoleAgent  Role = "agent"
	// RoleEtcdSnapshot is "k3s etcd-snapshot ...": it reads the server's
	// settings (config.yaml of the server) plus the snapshot flags.
	RoleEtcdSnapshot Role = "etcd-snapshot"
)

// serverLike reports whether the role reads the server's settings.
func (r Role) serverLike() bool { return r == RoleServer || r == RoleEtcdSnapshot }

// Config is the merged configuration of one k3s server or agent.
type Config struct {
	Role             Role
	ConfigFile       string
	DataDir          string
	NodeIP           string
	NodeName         string
	AdvertiseAddress string
	TLSSANs          []string
	ClusterInit      bool
	Server           string
	Token            string
	// AgentToken (servers) is the secret agents join with instead of Token.
	AgentToken          string
	ClusterCIDR         string
	ServiceCIDR         string
	ClusterDNS          string
	Disable             []string
	WriteKubeconfig     string
	WriteKubeconfigMode string
	HTTPSListenPort     int
	// EtcdPort is embedded etcd's client port (k3s: 2379), on 127.0.0.1
	// and, for a cluster member, on the node IP.
	EtcdPort int
	// EtcdPeerPort is etcd's peer port (k3s: 2380); 0 means EtcdPort+1.
	EtcdPeerPort int
	// EtcdPeerSkipClientSANVerify accepts a peer's client certificate
	// whatever address it connects from (etcd's
	// --experimental-peer-skip-client-san-verification). Only for servers
	// sharing one network namespace (the stand-in's e2e), where a
	// connection's source address is the address it dials.
	EtcdPeerSkipClientSANVerify bool
	// ClusterReset resets the etcd member to a single-member cluster
	// (restoring ClusterResetRestorePath first when set), then exits.
	ClusterReset            bool
	ClusterResetRestorePath string
	// EtcdSnapshotName and EtcdSnapshotDir are the etcd-snapshot
	// command's --name and --etcd-snapshot-dir (k3s: --dir).
	EtcdSnapshotName   string
	EtcdSnapshotDir    string
	KubeAPIServerArgs  []string
	KubeControllerArgs []string
	KubeSchedulerArgs  []string
	NodeLabels         []string
	// NativeImages is the folder of executables that stand for container
	// images (docker.io/istio/pilot:1.31.0 -> <NativeImages>/pilot): pods
	// whose containers all have one there run as real processes.
	NativeImages string
	// KubeletPort is where the node's kubelet API listens on the node IP.
	KubeletPort int
	// PodLogDir is kubelet's pod log root.
	PodLogDir string
	// CNIBinDir holds the CNI plugins; CNIBridge is the node's pod bridge.
	CNIBinDir string
	CNIBridge string
}

// DefaultNativeImages is where the test hosts see the native executables.
const DefaultNativeImages = "/opt/mcplan-testbed/images"

// envFlags maps k3s environment variables to flag names.
func envFlags(role Role) map[string]string {
	m := map[string]string{
		"K3S_TOKEN":       "token",
		"K3S_URL":         "server",
		"K3S_NODE_NAME":   "node-name",
		"K3S_DATA_DIR":    "data-dir",
		"K3S_CONFIG_FILE": "config",

		"K3S_STANDIN_NATIVE_IMAGES": "standin-native-images",
	}
	if role.serverLike() {
		m["K3S_KUBECONFIG_OUTPUT"] = "write-kubeconfig"
		m["K3S_KUBECONFIG_MODE"] = "write-kubeconfig-mode"
		m["K3S_CLUSTER_INIT"] = "cluster-init"
		m["K3S_AGENT_TOKEN"] = "agent-token"
	}
	return m
}

// Parse reads flags (args without the subcommand), then the environment
// (getenv), then the config file, and returns the merged Config. Unknown
// config-file keys are logged to logw and ignored.
func Parse(role Role, args []string, getenv func(string) string, logw io.Writer) (*Config, error) {
	c := &Config{Role: role}
	fs := pflag.NewFlagSet("k3s "+string(role), pflag.ContinueOnError)
	fs.SetOutput(logw)
	fs.StringVarP(&c.ConfigFile, "config", "c", "/etc/rancher/k3s/config.yaml", "(config) Load configuration from FILE")
	fs.StringVarP(&c.DataDir, "data-dir", "d", "/var/lib/rancher/k3s", "(data) Folder to hold state")
	fs.StringVarP(&c.NodeIP, "node-ip", "i", "", "(agent/networking) IPv4 address to advertise for node")
	fs.StringVar(&c.NodeName, "node-name", "", "(agent/node) Node name")
	fs.StringVarP(&c.Server, "server", "s", "", "Server to connect to")
	fs.StringVarP(&c.Token, "token", "t", "", "Shared secret used to join a server or agent to a cluster")
	fs.StringSliceVar(&c.NodeLabels, "node-label", nil, "(agent/node) Registering and starting kubelet with set of labels")
	fs.StringVar(&c.NativeImages, "standin-native-images", DefaultNativeImages, "(stand-in) Folder of executables run natively in place of container images, named after the image's last path element")
	fs.IntVar(&c.KubeletPort, "standin-kubelet-port", 10250, "(stand-in) Port of the kubelet API on the node IP")
	fs.StringVar(&c.PodLogDir, "standin-pod-log-dir", "/var/log/pods", "(stand-in) Where native pods' container logs are kept, as kubelet keeps them")
	fs.StringVar(&c.CNIBinDir, "standin-cni-bin-dir", "/usr/lib/cni", "(stand-in) Where the CNI plugins (bridge, host-local, loopback) are, for native pods' network namespaces")
	fs.StringVar(&c.CNIBridge, "standin-cni-bridge", "cni0", "(stand-in) The node's pod bridge (nodes sharing one network namespace need different ones)")
	var ignored []string
	ignore := func(names ...string) {
		for _, n := range names {
			fs.StringSlice(n, nil, "(ignored by the stand-in)")
			ignored = append(ignored, n)
		}
	}
	ignore("kubelet-arg", "kube-proxy-arg", "node-taint", "flannel-iface", "node-external-ip", "with-node-id", "selinux", "protect-kernel-defaults", "resolv-conf", "private-registry", "system-default-registry", "pause-image", "snapshotter", "container-runtime-endpoint", "lb-server-port", "prefer-bundled-bin", "debug", "v")
	if role.serverLike() {
		fs.StringVar(&c.AdvertiseAddress, "advertise-address", "", "(listener) IPv4 address that apiserver uses to advertise to members of the cluster")
		fs.StringSliceVar(&c.TLSSANs, "tls-san", nil, "(listener) Add additional hostnames or IPv4/IPv6 addresses as Subject Alternative Names on the server TLS cert")
		fs.BoolVar(&c.ClusterInit, "cluster-init", false, "(experimental/cluster) Initialize a new cluster using embedded Etcd")
		fs.StringVar(&c.ClusterCIDR, "cluster-cidr", "10.42.0.0/16", "(networking) IPv4 network CIDRs to use for pod IPs")
		fs.StringVar(&c.ServiceCIDR, "service-cidr", "10.43.0.0/16", "(networking) IPv4 network CIDRs to use for service IPs")
		fs.StringVar(&c.ClusterDNS, "cluster-dns", "", "(networking) IPv4 Cluster IP for coredns service")
		fs.StringSliceVar(&c.Disable, "disable", nil, "(components) Do not deploy packaged components")
		fs.StringVarP(&c.WriteKubeconfig, "write-kubeconfig", "o", "/etc/rancher/k3s/k3s.yaml", "(client) Write kubeconfig for admin client to this file")
		fs.StringVar(&c.WriteKubeconfigMode, "write-kubeconfig-mode", "", "(client) Write kubeconfig with this mode")
		fs.IntVar(&c.HTTPSListenPort, "https-listen-port", 6443, "(listener) HTTPS listen port; the apiserver listens on 127.0.0.1 at this port + 1")
		fs.IntVar(&c.EtcdPort, "standin-etcd-port", 2379, "(stand-in) etcd client port (127.0.0.1, and the node IP for a cluster member)")
		fs.IntVar(&c.EtcdPeerPort, "standin-etcd-peer-port", 0, "(stand-in) etcd peer port (default: standin-etcd-port + 1)")
		fs.BoolVar(&c.EtcdPeerSkipClientSANVerify, "standin-etcd-peer-skip-client-san-verify", false, "(stand-in) Do not match etcd peers' client certificates against their source address (servers sharing one network namespace)")
		fs.BoolVar(&c.ClusterReset, "cluster-reset", false, "(cluster) Forget all peers and become sole member of a new cluster")
		fs.StringVar(&c.ClusterResetRestorePath, "cluster-reset-restore-path", "", "(db) Path to snapshot file to be restored")
		fs.StringArrayVar(&c.KubeAPIServerArgs, "kube-apiserver-arg", nil, "(flags) Customized flag for kube-apiserver process")
		fs.StringArrayVar(&c.KubeControllerArgs, "kube-controller-manager-arg", nil, "(flags) Customized flag for kube-controller-manager process")
		fs.StringArrayVar(&c.KubeSchedulerArgs, "kube-scheduler-arg", nil, "(flags) Customized flag for kube-scheduler process")
		ignore("flannel-backend", "egress-selector-mode", "secrets-encryption", "etcd-expose-metrics", "disable-network-policy", "disable-cloud-controller", "disable-kube-proxy", "disable-helm-controller", "embedded-registry", "bind-address", "kube-cloud-controller-manager-arg", "etcd-arg", "datastore-endpoint")
		fs.StringVar(&c.AgentToken, "agent-token", "", "(cluster) Shared secret used to join agents to the cluster, but not servers")
	}
	if role == RoleEtcdSnapshot {
		fs.StringVar(&c.EtcdSnapshotName, "name", "on-demand", "(db) Set the base name of the etcd on-demand snapshot (appended with UNIX timestamp)")
		fs.StringVar(&c.EtcdSnapshotDir, "etcd-snapshot-dir", "", "(db) Directory to save etcd on-demand snapshot (default: ${data-dir}/server/db/snapshots)")
		fs.StringVar(&c.EtcdSnapshotDir, "dir", "", "(db) Directory to save etcd on-demand snapshot (default: ${data-dir}/server/db/snapshots)")
	}
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("config: parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected arguments %q", fs.Args())
	}
	logger := log.New(logw, "k3s-standin: ", log.LstdFlags)
	for env, name := range envFlags(role) {
		v := getenv(env)
		if v == "" || fs.Changed(name) {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, fmt.Errorf("config: %s=%q: %w", env, v, err)
		}
	}
	if err := applyFile(fs, c.ConfigFile, logger); err != nil {
		return nil, err
	}
	for _, n := range ignored {
		if fs.Changed(n) {
			logger.Printf("ignoring %s: not simulated by the stand-in", n)
		}
	}
	return c, c.complete()
}

// applyFile sets every flag not already set from the YAML config file.
func applyFile(fs *pflag.FlagSet, path string, logger *log.Logger) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("config: parse %s: %w", path, err)
	}
	for key, val := range m {
		name := strings.TrimSuffix(key, "+")
		f := fs.Lookup(name)
		if f == nil {
			logger.Printf("ignoring unknown key %q in %s", key, path)
			continue
		}
		if f.Changed || name == "config" {
			continue
		}
		var vals []string
		switch v := val.(type) {
		case []any:
			for _, e := range v {
				vals = append(vals, scalar(e))
			}
		default:
			vals = []string{scalar(v)}
		}
		for _, s := range vals {
			if err := fs.Set(name, s); err != nil {
				return fmt.Errorf("config: %s: key %q: %w", path, key, err)
			}
		}
	}
	return nil
}

func scalar(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	default:
		return fmt.Sprint(x)
	}
}

func (c *Config) complete() error {
	if c.NodeName == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("config: hostname: %w", err)
		}
		c.NodeName = strings.ToLower(h)
	}
	if c.NodeIP == "" {
		ip, err := defaultIP()
		if err != nil {
			return err
		}
		c.NodeIP = ip
	}
	if ip := net.ParseIP(c.NodeIP); ip == nil {
		return fmt.Errorf("config: node-ip %q is not an IP address", c.NodeIP)
	}
	if c.Role.serverLike() && c.AdvertiseAddress == "" {
		c.AdvertiseAddress = c.NodeIP
	}
	if c.Role == RoleAgent {
		if c.Server == "" {
			return errors.New("config: agent needs a server URL (--server, K3S_URL or server: in config.yaml)")
		}
		if c.Token == "" {
			return errors.New("config: agent needs a token (--token, K3S_TOKEN or token: in config.yaml)")
		}
	}
	if c.Server != "" && c.Token == "" {
		return errors.New("config: joining " + c.Server + " needs a token")
	}
	if c.Role.serverLike() && c.EtcdPeerPort == 0 {
		c.EtcdPeerPort = c.EtcdPort + 1
	}
	if c.ClusterResetRestorePath != "" && !c.ClusterReset {
		return errors.New("config: cluster-reset-restore-path needs cluster-reset")
	}
	if c.KubeletPort < 1 || c.KubeletPort > 65535 {
		return fmt.Errorf("config: standin-kubelet-port %d is not a port", c.KubeletPort)
	}
	for _, cidr := range []string{c.ClusterCIDR, c.ServiceCIDR} {
		if cidr == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(cidr); err != nil {
			return fmt.Errorf("config: CIDR %q: %w", cidr, err)
		}
	}
	return nil
}

// defaultIP picks the source address of the default route, like k3s.
func defaultIP() (string, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return "", fmt.Errorf("config: list addresses: %w", err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() {
			return n.IP.String(), nil
		}
	}
	return "127.0.0.1", nil
}
