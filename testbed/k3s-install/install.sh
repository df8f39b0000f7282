#!/bin/sh
# Test stand-in for the k3s install script (https://get.k3s.io), used on
# the testbed's hosts through mcplan's airgap path. It honours the
# variables mcplan sets, as the upstream script does:
#
#   INSTALL_K3S_SKIP_DOWNLOAD=true  the binary is already at $BIN_DIR/k3s
#                                   (anything else: refuse, this machine has no network)
#   INSTALL_K3S_EXEC                "server ..." or "agent ..." (default: agent
#                                   when K3S_URL is set, else server)
#   K3S_URL, K3S_TOKEN              written to the unit's environment file
#   INSTALL_K3S_VERSION             recorded only (the binary decides)
#   INSTALL_K3S_SKIP_START=true     install without starting
#   INSTALL_K3S_BIN_DIR             default /usr/local/bin
#   INSTALL_K3S_SYSTEMD_DIR         default /etc/systemd/system
#
# Like upstream it writes the systemd unit k3s.service or k3s-agent.service
# with an environment file, the kubectl/crictl/ctr links, k3s-killall.sh
# and k3s-uninstall.sh, then enables and starts the service. Unlike
# upstream, it restarts a running service only when the unit, its
# environment, the binary or /etc/rancher/k3s/config.yaml changed, and it
# appends each invocation and every change it makes to $COMMAND_LOG, so
# tests can tell a run that changed nothing from one that did not run.
set -eu

COMMAND_LOG=${MCPLAN_TESTBED_COMMAND_LOG:-/var/log/mcplan-testbed/commands.log}
BIN_DIR=${INSTALL_K3S_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${INSTALL_K3S_SYSTEMD_DIR:-/etc/systemd/system}
STATE_DIR=/var/lib/mcplan-testbed

mkdir -p "$(dirname "$COMMAND_LOG")" "$STATE_DIR"

log() { printf '%s install.sh: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >>"$COMMAND_LOG"; }
info() { echo "[INFO]  $*"; }
log "invoked: $* (INSTALL_K3S_EXEC=${INSTALL_K3S_EXEC:-} INSTALL_K3S_VERSION=${INSTALL_K3S_VERSION:-})"
fatal() { echo "[ERROR] $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fatal "run as root"
command -v systemctl >/dev/null || fatal "systemd is required (no systemctl)"

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

if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != "true" ]; then
	download_k3s
fi
[ -x "$BIN_DIR/k3s" ] || fatal "INSTALL_K3S_SKIP_DOWNLOAD=true but $BIN_DIR/k3s is missing or not executable"

exec_cmd=${INSTALL_K3S_EXEC:-}
if [ -z "$exec_cmd" ]; then
	if [ -n "${K3S_URL:-}" ]; then exec_cmd=agent; else exec_cmd=server; fi
fi
case "$exec_cmd" in
	server*) name=k3s ;;
	agent*) name=k3s-agent ;;
	*) if [ -n "${K3S_URL:-}" ]; then exec_cmd="agent $exec_cmd"; name=k3s-agent; else exec_cmd="server $exec_cmd"; name=k3s; fi ;;
esac
[ "$name" = k3s-agent ] && [ -z "${K3S_URL:-}" ] && ! grep -q '^server:' /etc/rancher/k3s/config.yaml 2>/dev/null &&
	fatal "an agent needs K3S_URL (or server: in /etc/rancher/k3s/config.yaml)"

unit="$SYSTEMD_DIR/$name.service"
envfile="$unit.env"

# replace FILE MODE: install stdin as FILE when it differs; returns 0 when changed.
replace() {
	tmp=$(mktemp "$1.XXXXXX")
	cat >"$tmp"
	if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
		rm -f "$tmp"
		return 1
	fi
	chmod "$2" "$tmp"
	mv -f "$tmp" "$1"
	log "wrote $1"
	return 0
}

changed=false

{
	echo "# written by the mcplan testbed's k3s install stand-in"
	[ -n "${K3S_URL:-}" ] && echo "K3S_URL=$K3S_URL"
	[ -n "${K3S_TOKEN:-}" ] && echo "K3S_TOKEN=$K3S_TOKEN"
	true
} | replace "$envfile" 600 && changed=true

cat <<UNIT | replace "$unit" 644 && changed=true
[Unit]
Description=Lightweight Kubernetes (mcplan testbed stand-in)
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=simple
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-$envfile
KillMode=process
Delegate=yes
LimitNOFILE=1048576
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStart=$BIN_DIR/k3s $exec_cmd
UNIT

for link in kubectl crictl ctr; do
	if [ ! -e "$BIN_DIR/$link" ]; then
		ln -s k3s "$BIN_DIR/$link"
		log "linked $BIN_DIR/$link"
	fi
done

cat <<'KILLALL' | replace "$BIN_DIR/k3s-killall.sh" 755 || true
#!/bin/sh
[ "$(id -u)" -eq 0 ] || exec sudo "$0" "$@"
for s in k3s k3s-agent; do systemctl stop "$s" 2>/dev/null || true; done
pkill -f '/k3s (server|agent)' 2>/dev/null || true
KILLALL

cat <<UNINSTALL | replace "$BIN_DIR/$name-uninstall.sh" 755 || true
#!/bin/sh
set -x
[ "\$(id -u)" -eq 0 ] || exec sudo "\$0" "\$@"
$BIN_DIR/k3s-killall.sh
systemctl disable $name || true
rm -f $unit $envfile $BIN_DIR/kubectl $BIN_DIR/crictl $BIN_DIR/ctr $BIN_DIR/k3s-killall.sh
rm -rf /etc/rancher/k3s /run/k3s /var/lib/rancher/k3s /var/lib/kubelet
systemctl daemon-reload
rm -f $BIN_DIR/k3s $BIN_DIR/$name-uninstall.sh
UNINSTALL

# What the running service was started from: binary, config, unit, env.
fingerprint=$(cat "$BIN_DIR/k3s" /etc/rancher/k3s/config.yaml "$unit" "$envfile" 2>/dev/null | sha256sum | cut -d' ' -f1)
started_from=$(cat "$STATE_DIR/$name.started-from" 2>/dev/null || true)

if [ "$changed" = true ]; then
	systemctl daemon-reload
	log "systemctl daemon-reload"
fi
if ! systemctl is-enabled --quiet "$name" 2>/dev/null; then
	systemctl enable "$name" >/dev/null 2>&1
	log "systemctl enable $name"
fi
if [ "${INSTALL_K3S_SKIP_START:-}" = "true" ]; then
	info "skipping start ($name), INSTALL_K3S_SKIP_START=true"
	exit 0
fi
if systemctl is-active --quiet "$name" && [ "$fingerprint" = "$started_from" ]; then
	info "$name is running and unchanged (version ${INSTALL_K3S_VERSION:-as uploaded})"
	exit 0
fi
info "starting $name"
systemctl restart "$name"
log "systemctl restart $name (version ${INSTALL_K3S_VERSION:-as uploaded})"
echo "$fingerprint" >"$STATE_DIR/$name.started-from"
