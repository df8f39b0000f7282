#!/usr/bin/env bash
# Installs the Debian packages mcplan's tests and demo use, when missing.
# Needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(openssl ca-certificates git)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The test hosts' packages (openssh-server without a machine-wide sshd,
# systemd-container, debootstrap, iproute2, ...).
$sudo "$(dirname "$0")/../testbed/install-deps.sh"
