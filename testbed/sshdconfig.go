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
	hostLogCommand = hostSSHDir + "/log-command"
)

// SSHCommandLog is the file inside a host where every command that
// reached it over SSH is appended before it runs (sshd's ForceCommand is
// hostLogCommand): one line per command, a UTC time and the command in
// base64 (commands have newlines). ParseSSHCommandLog reads it.
const SSHCommandLog = "/var/log/mcplan-testbed/ssh-commands.log"

// logCommandScript is hostLogCommand: it appends the client's command to
// SSHCommandLog, then runs it as sshd would have, with the user's shell.
const logCommandScript = `#!/bin/sh
# mcplan testbed: every command that reaches this host over SSH is logged
# before it runs, so tests can tell what a run of mcplan did here.
mkdir -p "$(dirname ` + SSHCommandLog + `)"
printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "$(printf '%s' "$SSH_ORIGINAL_COMMAND" | base64 -w0)" >>` + SSHCommandLog + `
if [ -z "$SSH_ORIGINAL_COMMAND" ]; then
	exec "${SHELL:-/bin/sh}" -l
fi
exec "${SHELL:-/bin/sh}" -c "$SSH_ORIGINAL_COMMAND"
`

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
		"ForceCommand " + hostLogCommand,
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
