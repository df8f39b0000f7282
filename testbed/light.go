package testbed

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// lightOverlays are the machine folders a light host sees through an
// overlay whose upper layer is the host's own: writes there stay in the
// host. /run and /tmp get a fresh tmpfs instead.
func lightOverlays() []string {
	return []string{"/etc", "/var", "/usr/local", "/root", "/opt", "/home", "/srv"}
}

// prepareLight lays out the host's folder: per overlaid folder an upper and
// a work dir (the upper's top has the mode and owner of the machine's
// folder, since the overlay takes its root's attributes from it), with the
// sshd files, hostname and root's authorized_keys already in the upper
// layers.
func prepareLight(hostDir, hostname string, f hostFiles) error {
	for _, d := range lightOverlays() {
		st, err := os.Stat(d)
		if err != nil {
			continue
		}
		key := strings.ReplaceAll(strings.TrimPrefix(d, "/"), "/", "-")
		upper := filepath.Join(hostDir, "upper", key)
		work := filepath.Join(hostDir, "work", key)
		for _, p := range []string{upper, work} {
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
		}
		sys := st.Sys().(*syscall.Stat_t)
		if err := os.Chown(upper, int(sys.Uid), int(sys.Gid)); err != nil {
			return err
		}
		if err := os.Chmod(upper, st.Mode().Perm()|st.Mode()&os.ModeSticky); err != nil {
			return err
		}
	}
	etc := filepath.Join(hostDir, "upper", "etc")
	if err := os.MkdirAll(filepath.Join(etc, "ssh"), 0o755); err != nil {
		return err
	}
	if err := writeSSHDir(filepath.Join(etc, "ssh", "testbed"), f); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(etc, "hostname"), []byte(hostname+"\n"), 0o644); err != nil {
		return err
	}
	hosts := fmt.Sprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n", hostname)
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		return err
	}
	sshDir := filepath.Join(hostDir, "upper", "root", ".ssh")
	if err := os.MkdirAll(sshDir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(sshDir, "authorized_keys"), f.ClientPub, 0o600)
}

// lightScript is the shell script that runs as PID 1 of the host's new
// PID namespace, in its new mount and UTS namespaces: hostname, overlays,
// tmpfs on /run and /tmp, nativeImages (when set) bound read-only at
// HostNativeImagesDir, then exec sshd.
func lightScript(hostDir, hostname, nativeImages string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	fmt.Fprintf(&b, "hostname %s\n", shellQuote(hostname))
	for _, d := range lightOverlays() {
		key := strings.ReplaceAll(strings.TrimPrefix(d, "/"), "/", "-")
		upper := filepath.Join(hostDir, "upper", key)
		work := filepath.Join(hostDir, "work", key)
		fmt.Fprintf(&b, "if [ -d %s ]; then mount -t overlay overlay -o %s %s; fi\n",
			shellQuote(upper),
			shellQuote("lowerdir="+d+",upperdir="+upper+",workdir="+work),
			shellQuote(d))
	}
	b.WriteString("mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run\n")
	b.WriteString("mkdir -p /run/sshd /run/lock && chmod 0755 /run/sshd\n")
	b.WriteString("mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp\n")
	if nativeImages != "" {
		fmt.Fprintf(&b, "mkdir -p %[2]s && mount --bind %[1]s %[2]s && mount -o remount,bind,ro %[2]s\n",
			shellQuote(nativeImages), shellQuote(HostNativeImagesDir))
	}
	fmt.Fprintf(&b, "exec /usr/sbin/sshd -D -e -f %s\n", hostSSHConfig)
	return b.String()
}

// startLight starts a light host in network namespace ns. The process runs
// in a session of its own with its output in hostDir/console.log, so it
// outlives the caller (the CLI's up exits, the hosts stay). The returned
// command has been started; the caller reaps it.
func startLight(ns, hostDir, hostname, nativeImages string) (*exec.Cmd, error) {
	logf, err := os.OpenFile(filepath.Join(hostDir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", "netns", "exec", ns,
		"unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private",
		"/bin/sh", "-c", lightScript(hostDir, hostname, nativeImages))
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	return cmd, nil
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
