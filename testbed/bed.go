package testbed

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"mcplan.io/mcplan/testbed/internet"
)

// Host is one test host.
type Host struct {
	// Name is the host's hostname: h1, h2, ...
	Name string `json:"name"`
	// Address is the host's IPv4 address on the run's bridge; sshd listens
	// on Address:22.
	Address string `json:"address"`
	// Namespace is the host's network namespace (/run/netns/<Namespace>),
	// also the nspawn machine name of a systemd host.
	Namespace string `json:"namespace"`
	// Kind is how the host was made.
	Kind Kind `json:"kind"`
	// Dir is the host's folder in the run directory (overlay layers, sshd
	// files, console.log).
	Dir string `json:"dir"`
	// PID is the host's outermost process (ip netns exec/unshare, or
	// systemd-nspawn).
	PID int `json:"pid"`
	// HostKey is the host's public key line ("ssh-ed25519 AAAA...").
	HostKey string `json:"host_key"`
}

// SSHAddr is the host's SSH address, "ip:22".
func (h Host) SSHAddr() string { return h.Address + ":22" }

// Bed is a running set of test hosts.
type Bed struct {
	// Prefix names everything of the run.
	Prefix string
	// Kind is the kind of every host.
	Kind Kind
	// Hosts are the hosts, in order h1, h2, ...
	Hosts []Host
	// Subnet is the bridge's /24; the bridge has .1, host i has .10+i.
	Subnet string
	// Dir is the run directory.
	Dir string
	// ClientKeyPath is the client's private key (mode 0600), accepted as
	// root on every host.
	ClientKeyPath string
	// KnownHostsPath lists every host's key as "<ip> ssh-ed25519 AAAA...".
	KnownHostsPath string
	// Internet is the hosts' stand-in internet when Options.Internet asked
	// for one; its access log is in the run directory until Down.
	Internet *internet.Server

	runRoot  string
	lock     *os.File
	cmds     []*exec.Cmd
	reaped   sync.WaitGroup
	downOnce sync.Once
	downErr  error
}

const lockFileName = "lock"

// SSHCommand is the ssh command line that reaches host h as root with the
// run's key, checking the host key against the run's known_hosts.
func (b *Bed) SSHCommand(h Host) string {
	return fmt.Sprintf("ssh -i %s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes root@%s",
		b.ClientKeyPath, b.KnownHostsPath, h.Address)
}

// Up brings up opts.Hosts hosts of opts.Kind and returns when every one
// answers SSH. On failure it removes whatever it made. The hosts keep
// running after the calling process exits; Bed.Down (or DownAll from any
// process) removes them.
func Up(ctx context.Context, opts Options) (*Bed, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("testbed: must run as root")
	}
	if missing := MissingTools(opts.Kind); len(missing) > 0 {
		return nil, fmt.Errorf("testbed: missing tools %s (run testbed/install-deps.sh)", strings.Join(missing, ", "))
	}
	rootfs := ""
	if opts.Kind == KindSystemd {
		rootfs, err = EnsureRootfs(ctx, opts.CacheDir, opts.Mirror, opts.Log)
		if err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(opts.RunRoot, 0o755); err != nil {
		return nil, fmt.Errorf("testbed: %w", err)
	}
	b, err := newBed(opts)
	if err != nil {
		return nil, err
	}
	m := &Manifest{
		Prefix: b.Prefix, Kind: opts.Kind, Created: time.Now().UTC(), OwnerPID: os.Getpid(),
		Dir: b.Dir, Rootfs: rootfs,
		Links: []string{}, Netns: []string{}, Mounts: []string{}, PIDs: []int{}, Machines: []string{},
	}
	if err := b.build(ctx, opts, m); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		if derr := b.Down(cctx); derr != nil {
			return nil, errors.Join(err, derr)
		}
		return nil, err
	}
	return b, nil
}

// newBed makes the run directory with a fresh prefix and takes the run's
// lock, which the Bed holds until Down.
func newBed(opts Options) (*Bed, error) {
	for try := 0; ; try++ {
		prefix, err := newPrefix()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(opts.RunRoot, prefix)
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, os.ErrExist) && try < 10 {
				continue
			}
			return nil, fmt.Errorf("testbed: run directory: %w", err)
		}
		lock, err := os.OpenFile(filepath.Join(dir, lockFileName), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("testbed %s: %w", prefix, err)
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			lock.Close()
			return nil, fmt.Errorf("testbed %s: lock: %w", prefix, err)
		}
		return &Bed{
			Prefix:         prefix,
			Kind:           opts.Kind,
			Dir:            dir,
			ClientKeyPath:  filepath.Join(dir, "client_key"),
			KnownHostsPath: filepath.Join(dir, "known_hosts"),
			runRoot:        opts.RunRoot,
			lock:           lock,
		}, nil
	}
}

// build makes the network, keys and hosts of b, recording each thing in m.
func (b *Bed) build(ctx context.Context, opts Options, m *Manifest) error {
	if err := m.save(); err != nil {
		return fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	client, err := newKeyPair("mcplan-testbed-client@" + b.Prefix)
	if err != nil {
		return fmt.Errorf("testbed %s: client key: %w", b.Prefix, err)
	}
	if err := os.WriteFile(b.ClientKeyPath, client.Private, 0o600); err != nil {
		return fmt.Errorf("testbed %s: client key: %w", b.Prefix, err)
	}
	if err := os.WriteFile(b.ClientKeyPath+".pub", client.Public, 0o644); err != nil {
		return fmt.Errorf("testbed %s: client key: %w", b.Prefix, err)
	}
	m.ClientKey, m.KnownHost = b.ClientKeyPath, b.KnownHostsPath

	subnet, err := b.makeNetwork(ctx, opts, m)
	if err != nil {
		return err
	}
	b.Subnet = subnet.String()
	if opts.Internet != nil {
		if err := b.startInternet(opts, subnet); err != nil {
			return err
		}
	}

	var known strings.Builder
	for i := 1; i <= opts.Hosts; i++ {
		h, err := b.prepareHost(ctx, opts, m, subnet, i, client)
		if err != nil {
			return fmt.Errorf("testbed %s host h%d: %w", b.Prefix, i, err)
		}
		b.Hosts = append(b.Hosts, h)
		m.Hosts = append(m.Hosts, h)
		known.WriteString(h.Address + " " + h.HostKey + "\n")
	}
	if err := os.WriteFile(b.KnownHostsPath, []byte(known.String()), 0o644); err != nil {
		return fmt.Errorf("testbed %s: known_hosts: %w", b.Prefix, err)
	}
	for i := range b.Hosts {
		h := &b.Hosts[i]
		cmd, err := b.startHost(opts, m, *h)
		if err != nil {
			return fmt.Errorf("testbed %s host %s: %w", b.Prefix, h.Name, err)
		}
		h.PID = cmd.Process.Pid
		m.Hosts[i].PID = h.PID
		m.PIDs = append(m.PIDs, h.PID)
		if err := m.save(); err != nil {
			return fmt.Errorf("testbed %s: %w", b.Prefix, err)
		}
	}
	timeout := 15 * time.Second
	if opts.Kind == KindSystemd {
		timeout = 90 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(b.Hosts))
	var wg sync.WaitGroup
	for i, h := range b.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = waitSSH(wctx, h.SSHAddr(), func() error { return hostAlive(h) })
			if errs[i] != nil {
				errs[i] = fmt.Errorf("testbed %s host %s: %w%s", b.Prefix, h.Name, errs[i], consoleTail(h.Dir))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if b.Internet != nil {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		start := time.Now()
		if err := b.connectToInternet(cctx); err != nil {
			return err
		}
		fmt.Fprintf(opts.Log, "testbed %s: hosts use the stand-in internet (/etc/hosts, CA trusted) after %s\n", b.Prefix, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// makeNetwork picks a free /24 and makes the bridge, under a machine-wide
// lock so that concurrent runs do not pick the same subnet.
func (b *Bed) makeNetwork(ctx context.Context, opts Options, m *Manifest) (netip.Prefix, error) {
	unlock, err := lockFile(ctx, filepath.Join(opts.RunRoot, ".subnet.lock"))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	defer unlock()
	subnet, err := freeSubnet(ctx)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	br := bridgeName(b.Prefix)
	m.Subnet, m.Bridge = subnet.String(), br
	m.Links = append(m.Links, br)
	if err := m.save(); err != nil {
		return netip.Prefix{}, fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	if err := makeBridge(ctx, br, subnet); err != nil {
		return netip.Prefix{}, fmt.Errorf("testbed %s: %w", b.Prefix, err)
	}
	return subnet, nil
}

// prepareHost makes host i's network and files.
func (b *Bed) prepareHost(ctx context.Context, opts Options, m *Manifest, subnet netip.Prefix, i int, client keyPair) (Host, error) {
	h := Host{
		Name:      fmt.Sprintf("h%d", i),
		Address:   hostAddress(subnet, i).String(),
		Namespace: namespaceName(b.Prefix, i),
		Kind:      opts.Kind,
		Dir:       filepath.Join(b.Dir, fmt.Sprintf("h%d", i)),
	}
	m.Netns = append(m.Netns, h.Namespace)
	m.Links = append(m.Links, vethName(b.Prefix, i))
	m.Mounts = append(m.Mounts, "/run/netns/"+h.Namespace)
	if err := m.save(); err != nil {
		return h, err
	}
	if err := makeHostNetwork(ctx, b.Prefix, i, subnet); err != nil {
		return h, err
	}
	hostKey, err := newKeyPair("root@" + h.Name)
	if err != nil {
		return h, fmt.Errorf("host key: %w", err)
	}
	h.HostKey = strings.TrimSpace(knownHostsLine("", hostKey.Key))
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		return h, err
	}
	files := hostFiles{SSHDConfig: sshdConfig(h.Address, opts.Kind == KindLight), HostKey: hostKey, ClientPub: client.Public}
	switch opts.Kind {
	case KindLight:
		err = prepareLight(h.Dir, h.Name, files)
	case KindSystemd:
		if err = enableForwarding(ctx, h.Namespace); err == nil {
			err = writeSSHDir(filepath.Join(h.Dir, "ssh"), files)
		}
	}
	if err != nil {
		return h, fmt.Errorf("host files: %w", err)
	}
	return h, nil
}

// startHost starts h's process and records it; a goroutine reaps it.
func (b *Bed) startHost(opts Options, m *Manifest, h Host) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	var err error
	switch opts.Kind {
	case KindLight:
		cmd, err = startLight(h.Namespace, h.Dir, h.Name, opts.NativeImages)
		if err != nil {
			return nil, fmt.Errorf("start sshd: %w", err)
		}
	case KindSystemd:
		m.Machines = append(m.Machines, h.Namespace)
		cmd, err = startNspawn(h.Namespace, h.Namespace, h.Dir, h.Name, m.Rootfs, opts.NativeImages)
		if err != nil {
			return nil, err
		}
	}
	b.cmds = append(b.cmds, cmd)
	b.reaped.Add(1)
	go func() {
		defer b.reaped.Done()
		cmd.Wait()
	}()
	return cmd, nil
}

// hostAlive reports an error when h's outermost process has exited.
func hostAlive(h Host) error {
	if h.PID > 0 && !processAlive(h.PID) {
		return errors.New("host process exited")
	}
	return nil
}

// consoleTail returns the end of the host's console log, for errors.
func consoleTail(dir string) string {
	data, err := os.ReadFile(filepath.Join(dir, "console.log"))
	if err != nil || len(data) == 0 {
		return ""
	}
	if len(data) > 1500 {
		data = data[len(data)-1500:]
	}
	return "\nconsole.log:\n" + string(data)
}

// Down removes every host, namespace, link, mount and process of the run
// and its run directory. It is safe to call more than once.
func (b *Bed) Down(ctx context.Context) error {
	b.downOnce.Do(func() {
		if b.Internet != nil {
			if err := b.Internet.Close(); err != nil {
				b.downErr = fmt.Errorf("testbed down %s: stand-in internet: %w", b.Prefix, err)
			}
		}
		b.downErr = errors.Join(b.downErr, removeRun(ctx, b.Prefix, b.runRoot))
		reaped := make(chan struct{})
		go func() {
			b.reaped.Wait()
			close(reaped)
		}()
		select {
		case <-reaped:
		case <-ctx.Done():
			b.downErr = errors.Join(b.downErr, fmt.Errorf("testbed down %s: wait for host processes: %w", b.Prefix, ctx.Err()))
		}
		if b.lock != nil {
			b.lock.Close()
		}
	})
	return b.downErr
}

// MissingTools lists the commands that hosts of kind k need and that are
// not installed.
func MissingTools(k Kind) []string {
	tools := []string{"ip", "unshare", "/usr/sbin/sshd", "mount"}
	if k == KindSystemd {
		tools = append(tools, "systemd-nspawn", "debootstrap")
	}
	var missing []string
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			missing = append(missing, t)
		}
	}
	return missing
}
