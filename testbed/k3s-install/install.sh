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

if [ "${INSTALL_K3S_SKIP_DOWNLOAD:-}" != "true" ]; then
	fatal "this test stand-in cannot download k3s: set INSTALL_K3S_SKIP_DOWNLOAD=true and upload the binary to $BIN_DIR/k3s"
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
