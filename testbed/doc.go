// Package testbed brings up test hosts that behave like fresh VMs: each has
// its own network namespace with an address on a bridge that the root
// namespace reaches, its own hostname, PID namespace and writable filesystem
// view, and a real OpenSSH sshd (own ed25519 host key, root login by key
// only). Tests then reach the hosts with real SSH, as mcplan does.
//
// Two kinds of host exist:
//
//   - KindLight: `ip netns exec` + unshare(mount, uts, pid) with overlay
//     mounts on /etc, /var, /usr/local, /root, /opt, /home, /srv and tmpfs
//     on /run and /tmp; sshd -D is the namespace's PID 1. Comes up in a
//     fraction of a second; for tests where only SSH matters.
//   - KindSystemd: a Debian bookworm tree made once with debootstrap (cached
//     under /var/cache/mcplan-testbed) booted per host with systemd-nspawn -b
//     --volatile=overlay in the host's network namespace: real systemd as PID
//     1, as on a VM; for hosts that mcplan installs k3s on.
//
// Every run has a unique prefix (mtb + 5 hex digits) that names all its
// namespaces, links and machines, a run directory under /run/mcplan-testbed
// holding the client key, known_hosts and a JSON manifest of everything it
// made. Bed.Down removes a run; DownAll removes the leftovers of every run
// that no live process holds, including runs whose process crashed.
//
// Everything needs root; ForTest skips a test with the reason when the
// process is not root or a tool is missing. install-deps.sh installs the
// Debian packages.
package testbed
