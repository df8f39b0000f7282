package testbed

import (
	"fmt"
	"os"
	"path/filepath"
)

// hostFiles is what a host needs from its run: its sshd config, host key and
// the client's public key.
type hostFiles struct {
	SSHDConfig string
	HostKey    keyPair
	ClientPub  []byte
}

// writeSSHDir writes the host's sshd folder (mounted or copied to
// /etc/ssh/testbed inside the host): sshd_config, the host key pair,
// authorized_keys and the command logger of ForceCommand, owned by root and not writable by others, as sshd's
// StrictModes wants.
func writeSSHDir(dir string, f hostFiles) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	files := []struct {
		name string
		data []byte
		mode os.FileMode
	}{
		{"sshd_config", []byte(f.SSHDConfig), 0o644},
		{"ssh_host_ed25519_key", f.HostKey.Private, 0o600},
		{"ssh_host_ed25519_key.pub", f.HostKey.Public, 0o644},
		{"authorized_keys", f.ClientPub, 0o644},
		{"log-command", []byte(logCommandScript), 0o755},
	}
	for _, file := range files {
		p := filepath.Join(dir, file.name)
		if err := os.WriteFile(p, file.data, file.mode); err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
		if err := os.Chmod(p, file.mode); err != nil {
			return err
		}
	}
	return nil
}
