package testbed

import (
	"fmt"
	"io"

	"mcplan.io/mcplan/testbed/internet"
)

// Kind selects how a test host is made.
type Kind string

const (
	// KindLight is a host made of namespaces and overlay mounts over the
	// machine's own tree, with sshd as PID 1.
	KindLight Kind = "light"
	// KindSystemd is a host booted with systemd-nspawn from a cached Debian
	// bookworm tree, with systemd as PID 1.
	KindSystemd Kind = "systemd"
)

// ParseKind returns the Kind named s.
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case KindLight, KindSystemd:
		return Kind(s), nil
	}
	return "", fmt.Errorf("testbed: unknown host kind %q (want %q or %q)", s, KindLight, KindSystemd)
}

// Options configures Up.
type Options struct {
	// Hosts is the number of hosts, 1 to MaxHosts.
	Hosts int
	// Kind is the kind of every host; empty means KindLight.
	Kind Kind
	// RunRoot is the folder that holds run directories; empty means
	// DefaultRunRoot. It must not be under /etc, /var, /usr/local, /root,
	// /opt, /home or /srv, which light hosts overlay.
	RunRoot string
	// CacheDir holds the debootstrap tree of systemd hosts; empty means
	// DefaultCacheDir.
	CacheDir string
	// Mirror is the Debian mirror for debootstrap; empty means DefaultMirror.
	Mirror string
	// NativeImages, when set, is a folder on this machine bound read-only
	// into every host at HostNativeImagesDir: the programs the k3s
	// stand-in runs natively in place of container images (see
	// testbed/native-images/build.sh).
	NativeImages string
	// Internet, when set, gives the hosts a stand-in internet (package
	// internet): an HTTPS server in this process on the bridge's address
	// (.1) port InternetPort, answering as get.k3s.io, update.k3s.io,
	// github.com, objects.githubusercontent.com and
	// rancher-mirror.rancher.cn with what it holds. Each host gets those
	// names in its /etc/hosts and the server's test CA (made per run, in
	// the run directory's internet/) among its trusted certificates;
	// nothing else reaches beyond the bridge. It lives as long as the Bed
	// in this process (Bed.Down stops it): the CLI's up, which exits, has
	// none.
	Internet *internet.Config
	// Log, when set, receives progress lines (one per step).
	Log io.Writer
}

const (
	// DefaultRunRoot holds one directory per run, named by its prefix.
	DefaultRunRoot = "/run/mcplan-testbed"
	// DefaultCacheDir holds the cached root trees of systemd hosts.
	DefaultCacheDir = "/var/cache/mcplan-testbed"
	// DefaultMirror is the Debian mirror debootstrap fetches from.
	DefaultMirror = "http://deb.debian.org/debian"
	// HostNativeImagesDir is where hosts see Options.NativeImages; it is
	// the k3s stand-in's default --standin-native-images.
	HostNativeImagesDir = "/opt/mcplan-testbed/images"
	// MaxHosts is the most hosts one run can have (addresses .11 to .110).
	MaxHosts = 100
)

func (o Options) withDefaults() (Options, error) {
	if o.Kind == "" {
		o.Kind = KindLight
	}
	if _, err := ParseKind(string(o.Kind)); err != nil {
		return o, err
	}
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return o, fmt.Errorf("testbed: %d hosts asked, want 1 to %d", o.Hosts, MaxHosts)
	}
	if o.RunRoot == "" {
		o.RunRoot = DefaultRunRoot
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if o.Mirror == "" {
		o.Mirror = DefaultMirror
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	if o.Internet != nil {
		if err := o.Internet.Validate(); err != nil {
			return o, fmt.Errorf("testbed: %w", err)
		}
	}
	return o, nil
}
