#!/bin/sh
# install-deps.sh installs the Debian packages that the testbed needs
# (mcplan.io/mcplan/testbed). It is idempotent and quiet: a second run that
# finds everything installed does nothing but check.
#
# openssh-server's maintainer scripts start a machine-wide sshd when they can.
# The testbed runs its own sshd per test host and must never leave one
# listening on the machine itself, so the install runs under a policy-rc.d that
# forbids service starts, the ssh service is disabled (sysv and systemd links),
# /etc/ssh/sshd_not_to_be_run is created (honoured by both the init script and
# the systemd unit), and any machine-wide sshd the package did start is
# stopped.
set -eu

if [ "$(id -u)" != 0 ]; then
	echo "install-deps.sh: must run as root" >&2
	exit 1
fi

pkgs="openssh-server openssh-client iproute2 iptables systemd-container debootstrap util-linux procps containernetworking-plugins"

missing=""
for p in $pkgs; do
	if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	policy=/usr/sbin/policy-rc.d
	made_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 0755 "$policy"
		made_policy=1
	fi
	log=$(mktemp)
	cleanup() {
		if [ -n "$made_policy" ]; then rm -f "$policy"; fi
		rm -f "$log"
	}
	trap cleanup EXIT
	export DEBIAN_FRONTEND=noninteractive
	if [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -n1)" ]; then
		if ! apt-get update -qq >"$log" 2>&1; then
			cat "$log" >&2
			exit 1
		fi
	fi
	# shellcheck disable=SC2086
	if ! apt-get install -y -qq --no-install-recommends $missing >"$log" 2>&1; then
		cat "$log" >&2
		exit 1
	fi
fi

# Never a machine-wide sshd.
mkdir -p /etc/ssh
[ -e /etc/ssh/sshd_not_to_be_run ] || : >/etc/ssh/sshd_not_to_be_run
if command -v update-rc.d >/dev/null 2>&1 && [ -e /etc/init.d/ssh ]; then
	update-rc.d ssh disable >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1; then
	systemctl disable ssh.service ssh.socket >/dev/null 2>&1 || true
fi
# A sshd started by the package (its pid file is the machine-wide one; the
# testbed's sshds write no pid file there).
if [ -s /run/sshd.pid ]; then
	pid=$(cat /run/sshd.pid)
	if [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = sshd ]; then
		kill "$pid" 2>/dev/null || true
	fi
	rm -f /run/sshd.pid
fi
exit 0
