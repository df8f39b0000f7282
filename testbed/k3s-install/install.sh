#!/bin/sh
# Test stand-in for the k3s install script (https://get.k3s.io), used on
# the testbed's hosts through mcplan's airgap path, and served by the test
# world's stand-in internet (testbed/internet) as get.k3s.io and the China
# mirror's k3s-install.sh. It behaves like the upstream script where mcplan
# uses it:
#
#   INSTALL_K3S_SKIP_DOWNLOAD=true  the binary is already at $BIN_DIR/k3s;
#                                   otherwise it is downloaded as upstream does
#                                   (version, or channel through update.k3s.io;
#                                   GitHub releases, or INSTALL_K3S_MIRROR=cn),
#                                   its sha256 checked
#   INSTALL_K3S_EXEC, script args   "[server|agent] [flags]" (default: agent
#                                   when K3S_URL is set, else server)
#   K3S_*, CONTAINERD_*, *_PROXY    written to the unit's environment file
#                                   (<systemd dir>/<unit>.env, mode 0600)
#   INSTALL_K3S_VERSION             recorded only (the binary decides)
#   INSTALL_K3S_SKIP_ENABLE=true    install without enabling or starting
#   INSTALL_K3S_SKIP_START=true     install without starting
#   INSTALL_K3S_FORCE_RESTART=true  restart even when nothing changed
#   INSTALL_K3S_TYPE                systemd Type= (default notify)
#   INSTALL_K3S_BIN_DIR             default /usr/local/bin
#   INSTALL_K3S_SYSTEMD_DIR         default /etc/systemd/system
#
# As upstream: it writes the systemd unit k3s.service (k3s-agent.service
# for an agent) with Type=notify (the stand-in sends READY=1), its
# environment file, the kubectl/crictl/ctr links, k3s-killall.sh (which
# also removes the pod network: cni0, its veths, CNI iptables rules, the
# stand-in's routes) and <unit>-uninstall.sh, enables the unit, and (re)starts it only when the
# sha256 of the binary, the unit or the environment file changed (not
# /etc/rancher/k3s/config.yaml: a changed config alone needs a restart by
# the caller, as with upstream). It also appends each invocation and every
# change it makes to $MCPLAN_TESTBED_COMMAND_LOG, so tests can tell a run
# that changed nothing from one that did not run.
set -eu
set -o noglob

COMMAND_LOG=${MCPLAN_TESTBED_COMMAND_LOG:-/var/log/mcplan-testbed/commands.log}
BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}

mkdir -p "$(dirname "$COMMAND_LOG")"

log() { printf '%s install.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$COMMAND_LOG"; }
info() { echo "[INFO]  $*"; }
fatal() { echo "[ERROR] $*" >&2; exit 1; }
log "invoked: $* (INSTALL_K3S_EXEC=${INSTALL_K3S_EXEC:-} INSTALL_K3S_VERSION=${INSTALL_K3S_VERSION:-})"

[ "$(id -u)" -eq 0 ] || fatal "run as root"
command -v systemctl >/dev/null || fatal "Can not find systemd or openrc to use as a process supervisor for k3s"

case "${K3S_URL:-}" in
	"" | https://*) ;;
	*) fatal "Only https:// URLs are supported for K3S_URL (have ${K3S_URL})" ;;
esac

# The command: INSTALL_K3S_EXEC's words, then the script's arguments.
# shellcheck disable=SC2086 # split INSTALL_K3S_EXEC into words (noglob)
set -- ${INSTALL_K3S_EXEC:-} "$@"
case "${1:-}" in
	-* | "")
		if [ -z "${K3S_URL:-}" ]; then
			cmd=server
		else
			[ -n "${K3S_TOKEN:-}" ] || [ -n "${K3S_TOKEN_FILE:-}" ] ||
				fatal "Defaulted k3s exec command to 'agent' because K3S_URL is defined, but K3S_TOKEN or K3S_TOKEN_FILE is not defined."
			cmd=agent
		fi
		;;
	*)
		cmd=$1
		shift
		;;
esac
if [ "$cmd" = server ]; then name=k3s; else name=k3s-$cmd; fi

# The ExecStart arguments as upstream lays them out: the command, then one
# single-quoted argument a line, each line ending in a continuation.
exec_lines="$cmd \\"
for arg in "$@"; do
	quoted=$(printf '%s' "$arg" | sed "s/'/'\\\\''/g")
	exec_lines="$exec_lines
	'$quoted' \\"
done

unit="$SYSTEMD_DIR/$name.service"
envfile="$unit.env"

# What the running service was installed from, before this run.
hashes() { sha256sum "$BIN_DIR/k3s" "$unit" "$envfile" 2>&1 || true; }
pre_hashes=$(hashes)

# --- The download path (INSTALL_K3S_SKIP_DOWNLOAD not true), as upstream's
# download_and_verify does it; in the test world the names resolve to the
# testbed's stand-in internet (testbed/internet), which serves this script
# and the stand-in's releases:
#   INSTALL_K3S_VERSION     the release; else the channel's:
#   INSTALL_K3S_CHANNEL     default stable, looked up at
#   INSTALL_K3S_CHANNEL_URL default https://update.k3s.io/v1-release/channels,
#                           whose redirect ends in .../<version>
#   GITHUB_URL              default https://github.com/k3s-io/k3s/releases:
#                           download/<version>/sha256sum-<arch>.txt and k3s
#   INSTALL_K3S_MIRROR=cn   from INSTALL_K3S_MIRROR_URL instead (default
#                           rancher-mirror.rancher.cn): k3s/channels/<channel>
#                           answers the version; k3s/<version, + as ->/...
#                           holds the files. Upstream's China script leaves
#                           the mirror URL without a scheme (curl then uses
#                           http); this one uses https.
# The binary is fetched only when the installed one's sha256 differs from
# the release's, checked against the release's sha256 file, and moved to
# $BIN_DIR/k3s. Each URL fetched and the outcome go to $COMMAND_LOG.
download_k3s() {
	command -v curl >/dev/null 2>&1 || fatal "Can not find curl or wget for downloading files"
	case $(uname -m) in
		amd64 | x86_64) arch=amd64 suffix= ;;
		arm64 | aarch64) arch=arm64 suffix=-arm64 ;;
		s390x) arch=s390x suffix=-s390x ;;
		arm*) arch=arm suffix=-armhf ;;
		*) fatal "Unsupported architecture $(uname -m)" ;;
	esac
	mirror=
	if [ "${INSTALL_K3S_MIRROR:-}" = cn ]; then
		mirror=${INSTALL_K3S_MIRROR_URL:-rancher-mirror.rancher.cn}
		case "$mirror" in *://*) ;; *) mirror=https://$mirror ;; esac
	fi
	download_version=$(k3s_release_version) || exit 1
	info "Using $download_version as release"
	if [ -n "$mirror" ]; then
		release_url="$mirror/k3s/$(printf '%s' "$download_version" | sed 's/+/-/g')"
	else
		release_url="${GITHUB_URL:-https://github.com/k3s-io/k3s/releases}/download/$download_version"
	fi
	download_dir=$(mktemp -d -t k3s-install.XXXXXXXXXX)
	trap 'rm -rf "$download_dir"' EXIT
	info "Downloading hash $release_url/sha256sum-$arch.txt"
	k3s_fetch "$download_dir/k3s.hash" "$release_url/sha256sum-$arch.txt"
	want=$(grep " k3s$suffix\$" "$download_dir/k3s.hash" | cut -d' ' -f1)
	[ -n "$want" ] || fatal "$release_url/sha256sum-$arch.txt has no sum for k3s$suffix"
	if [ -x "$BIN_DIR/k3s" ] && [ "$(sha256sum "$BIN_DIR/k3s" | cut -d' ' -f1)" = "$want" ]; then
		info "Skipping binary downloaded, installed k3s matches hash"
		log "k3s $download_version: $BIN_DIR/k3s matches $release_url/sha256sum-$arch.txt, not downloaded"
		return 0
	fi
	info "Downloading binary $release_url/k3s$suffix"
	k3s_fetch "$download_dir/k3s.bin" "$release_url/k3s$suffix"
	info "Verifying binary download"
	got=$(sha256sum "$download_dir/k3s.bin" | cut -d' ' -f1)
	[ "$got" = "$want" ] || fatal "Download sha256 does not match $want, got $got"
	chmod 755 "$download_dir/k3s.bin"
	info "Installing k3s to $BIN_DIR/k3s"
	mkdir -p "$BIN_DIR"
	mv -f "$download_dir/k3s.bin" "$BIN_DIR/k3s"
	log "k3s $download_version: installed $BIN_DIR/k3s from $release_url/k3s$suffix (sha256 $got)"
}

# k3s_release_version prints INSTALL_K3S_VERSION, else the version the
# channel names.
k3s_release_version() {
	if [ -n "${INSTALL_K3S_VERSION:-}" ]; then
		printf '%s\n' "$INSTALL_K3S_VERSION"
		return 0
	fi
	channel=${INSTALL_K3S_CHANNEL:-stable}
	info "Finding release for channel $channel" >&2
	if [ -n "$mirror" ]; then
		url="$mirror/k3s/channels/$channel"
		found=$(curl -fsS "$url") || fatal "could not find the release of channel $channel at $url"
	else
		url="${INSTALL_K3S_CHANNEL_URL:-https://update.k3s.io/v1-release/channels}/$channel"
		found=$(curl -fsSL -o /dev/null -w '%{url_effective}' "$url") || fatal "could not find the release of channel $channel at $url"
		found=${found##*/}
	fi
	case "$found" in
		v[0-9]*) ;;
		*) fatal "channel $channel at $url named no release (got '$found')" ;;
	esac
	log "channel $channel at $url: $found"
	printf '%s\n' "$found"
}

# k3s_fetch FILE URL downloads URL to FILE.
k3s_fetch() {
	curl -o "$1" -sfL "$2" || fatal "Download failed: $2"
	log "downloaded $2"
}

if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != "true" ] && [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != "binary" ]; then
	download_k3s
else
	info "Skipping k3s download and verify"
fi
[ -x "$BIN_DIR/k3s" ] || fatal "Executable k3s binary not found at $BIN_DIR/k3s"

# replace FILE MODE: install stdin as FILE (mode MODE) when it differs.
replace() {
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	chmod "$2" "$tmp"
	if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		chmod "$2" "$1"
		return 0
	fi
	mv -f "$tmp" "$1"
	log "wrote $1"
}

for link in kubectl crictl ctr; do
	if [ ! -e "$BIN_DIR/$link" ]; then
		ln -sf k3s "$BIN_DIR/$link"
		info "Creating $BIN_DIR/$link symlink to k3s"
		log "linked $BIN_DIR/$link"
	fi
done

info "Creating killall script $BIN_DIR/k3s-killall.sh"
replace "$BIN_DIR/k3s-killall.sh" 755 <<KILLALL
#!/bin/sh
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
for service in $SYSTEMD_DIR/k3s*.service; do
	[ -s "\$service" ] && systemctl stop "\$(basename "\$service")"
done
pkill -f '/k3s (server|agent)' 2>/dev/null || true
# As upstream's killall: the pod network's links, CNI state and rules (the
# stand-in's native pods are attached by the CNI bridge plugin), and the
# stand-in's routes to the other nodes' pod CIDRs (proto 187).
ip link show 2>/dev/null | grep 'master cni0' | while read ignore iface ignore; do
	iface=\${iface%%@*}
	[ -z "\$iface" ] || ip link delete \$iface
done
ip link delete cni0 2>/dev/null || true
rm -rf /var/lib/cni/
ip -4 route flush proto 187 2>/dev/null || true
if command -v iptables-save >/dev/null 2>&1; then
	iptables-save | grep -v KUBE- | grep -v CNI- | grep -iv flannel | iptables-restore
fi
KILLALL

info "Creating uninstall script $BIN_DIR/$name-uninstall.sh"
replace "$BIN_DIR/$name-uninstall.sh" 755 <<UNINSTALL
#!/bin/sh
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
$BIN_DIR/k3s-killall.sh
systemctl disable $name || true
systemctl reset-failed $name || true
systemctl daemon-reload
rm -f $unit $envfile
if ls $SYSTEMD_DIR/k3s*.service >/dev/null 2>&1; then
	set +x; echo 'Additional k3s services installed, skipping uninstall of k3s'; set -x
	rm -f $BIN_DIR/$name-uninstall.sh
	exit
fi
for cmd in kubectl crictl ctr; do
	[ -L $BIN_DIR/\$cmd ] && rm -f $BIN_DIR/\$cmd
done
rm -rf /etc/rancher/k3s /run/k3s /var/lib/rancher/k3s /var/lib/kubelet
rm -f $BIN_DIR/k3s $BIN_DIR/k3s-killall.sh $BIN_DIR/$name-uninstall.sh
UNINSTALL

# The environment file: the K3S_ and CONTAINERD_ variables, then the proxy
# ones, as "export -p" prints them (NAME='value'), mode 0600.
info "env: Creating environment file $envfile"
mkdir -p "$SYSTEMD_DIR"
{
	export -p | sed -n 's/^export //p' | grep -E '^(K3S|CONTAINERD)_' || true
	export -p | sed -n 's/^export //p' | grep -Ei '^(NO|HTTP|HTTPS)_PROXY' || true
} | replace "$envfile" 600

info "systemd: Creating service file $unit"
replace "$unit" 644 <<UNIT
[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=${INSTALL_K3S_TYPE:-notify}
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$envfile
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStart=$BIN_DIR/k3s \\
    $exec_lines

UNIT

[ "${INSTALL_K3S_SKIP_ENABLE:-}" = "true" ] && exit 0

info "systemd: Enabling $name unit"
systemctl enable "$unit" >/dev/null 2>&1
systemctl daemon-reload >/dev/null
log "systemctl enable $name; systemctl daemon-reload"

if [ "${INSTALL_K3S_SKIP_START:-}" = "true" ]; then
	info "skipping start ($name), INSTALL_K3S_SKIP_START=true"
	exit 0
fi
post_hashes=$(hashes)
if [ "$pre_hashes" = "$post_hashes" ] && [ "${INSTALL_K3S_FORCE_RESTART:-}" != "true" ]; then
	info "No change detected so skipping service start"
	exit 0
fi
info "systemd: Starting $name"
systemctl restart "$name"
log "systemctl restart $name (version ${INSTALL_K3S_VERSION:-as uploaded})"
