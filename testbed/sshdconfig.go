package testbed

import (
	"fmt"
	"strings"
)

// Paths of a host's sshd files inside the host's view.
const (
	hostSSHDir     = "/etc/ssh/testbed"
	hostSSHConfig  = hostSSHDir + "/sshd_config"
	hostKeyFile    = hostSSHDir + "/ssh_host_ed25519_key"
	hostAuthorized = hostSSHDir + "/authorized_keys"
)

// sshdConfig is the sshd configuration of a host listening on ip:22. A
// light host runs sshd with it as the whole configuration (full); a systemd
// host gets it as a drop-in in /etc/ssh/sshd_config.d, read before Debian's
// own sshd_config, whose first values win, so it leaves out what Debian's
// file already sets (a second Subsystem line is an error).
func sshdConfig(ip string, full bool) string {
	lines := []string{
		"# mcplan testbed host",
		fmt.Sprintf("ListenAddress %s:22", ip),
		"HostKey " + hostKeyFile,
		"PermitRootLogin prohibit-password",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"AuthorizedKeysFile .ssh/authorized_keys " + hostAuthorized,
		"UseDNS no",
		"MaxStartups 100:30:200",
		"MaxSessions 100",
	}
	if full {
		lines = append(lines,
			"UsePAM no",
			"PidFile none",
			"PrintMotd no",
			"AcceptEnv LANG LC_*",
			"Subsystem sftp /usr/lib/openssh/sftp-server",
		)
	}
	return strings.Join(lines, "\n") + "\n"
}
