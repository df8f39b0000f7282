package testbed

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

// cniPluginsDir is where Debian's containernetworking-plugins are (the k3s
// stand-in's default --standin-cni-bin-dir).
const cniPluginsDir = "/usr/lib/cni"

// startNspawn boots a systemd host from rootfs in network namespace ns with
// systemd-nspawn: the tree read-only under a tmpfs overlay (writes stay in
// the host, in memory), its own machine id, hostname, and the sshd folder
// bound read-only at /etc/ssh/testbed with the config also as a drop-in of
// Debian's sshd_config, and nativeImages (when set) read-only at
// HostNativeImagesDir, and the machine's CNI plugins (cniPluginsDir, when
// installed: install-deps.sh) read-only at the same path. The host keeps
// CAP_NET_ADMIN in its network namespace (nspawn drops it without a
// private network of its own), as root on a VM has it: the k3s stand-in
// makes its pod bridge, veths and routes. Console output goes to hostDir/console.log. The
// process runs in a session of its own so that it outlives the caller, and
// in cgroups of its own (see cgroupRoots).
func startNspawn(ns, machine, hostDir, hostname, rootfs, nativeImages string) (*exec.Cmd, error) {
	uuid, err := randomUUID()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(hostDir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	sshDir := filepath.Join(hostDir, "ssh")
	args := []string{
		"-b",
		"--register=no",
		"--keep-unit",
		"--network-namespace-path=/run/netns/" + ns,
		"--capability=CAP_NET_ADMIN",
		"--volatile=overlay",
		"--uuid=" + uuid,
		"--machine=" + machine,
		"--hostname=" + hostname,
		"--resolv-conf=off",
		"--timezone=off",
		"--link-journal=no",
		"--console=read-only",
		"--bind-ro=" + sshDir + ":" + hostSSHDir,
		"--bind-ro=" + filepath.Join(sshDir, "sshd_config") + ":/etc/ssh/sshd_config.d/testbed.conf",
		"-D", rootfs,
	}
	if nativeImages != "" {
		args = append(args, "--bind-ro="+nativeImages+":"+HostNativeImagesDir)
	}
	if _, err := os.Stat(cniPluginsDir); err == nil {
		args = append(args, "--bind-ro="+cniPluginsDir)
	}
	script := cgroupEnterScript(machine) + "exec systemd-nspawn"
	for _, a := range args {
		script += " " + shellQuote(a)
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), "SYSTEMD_NSPAWN_LOCK=0")
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start systemd-nspawn: %w", err)
	}
	return cmd, nil
}

// randomUUID returns a random (version 4) UUID, as nspawn's --uuid wants.
func randomUUID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random uuid: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
