#!/usr/bin/env bash
# The mcplan demo: three test hosts on this machine (network namespaces,
# real sshd, real systemd; see testbed/README.md), then mcplan validate,
# plan and apply of examples/testbed/plan.yaml.tmpl: two k3s clusters like
# the walkthrough's (cluster1 on h1; cluster2 on h2 with h3 as agent),
# their merged kubeconfig, the walkthrough's Istio mesh over them (CA,
# control planes, east-west gateways, remote secrets), a second apply that
# changes nothing, and the walkthrough example's CA made locally.
#
# "k3s" on the test hosts is the project's stand-in (a real kube-apiserver,
# controller-manager and scheduler; kubelet and servicelb simulated), and
# istiod is Istio's real pilot-discovery, run natively by the stand-in in
# place of the pilot image; both are built once per machine: the first run
# compiles Kubernetes and Istio (about 25 minutes on 2 cores), later runs
# take about a minute.
#
# Needs root (namespaces, mounts, systemd-nspawn). The hosts stay up after
# the demo; remove them with:  go run ./testbed/cmd/testbed down --all
#
# Usage: scripts/demo.sh [work-dir]      (default /tmp/mcplan-demo)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/mcplan-demo}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "scripts/demo.sh: run as root (test hosts need network namespaces and systemd-nspawn)" >&2
	exit 1
fi
"$repo/scripts/install-deps.sh"

step "build mcplan, the k3s stand-in, istiod and the test hosts' Debian tree (cached after the first run)"
mkdir -p "$work"
(cd "$repo" && go build -o "$work/mcplan" ./cmd/mcplan && go build -o "$work/testbed" ./testbed/cmd/testbed)
k3s=$("$repo/testbed/k3s-standin/build.sh")
native=$("$repo/testbed/native-images/build.sh")
"$work/testbed" rootfs
mcplan() { "$work/mcplan" "$@"; }

step "bring up 3 test hosts (systemd under systemd-nspawn, real sshd each)"
up=$("$work/testbed" up 3 --kind systemd --native-images "$native")
echo "$up"
host() { echo "$up" | awk -v h="$1" '$1 == h { print $2 }'; }
key=$(echo "$up" | awk '/^client key:/ { print $3 }')
known=$(echo "$up" | awk '/^known_hosts:/ { print $2 }')

cd "$work"
rm -rf .mcplan kubeconfig walkthrough

sed -e "s#@H1@#$(host h1)#; s#@H2@#$(host h2)#; s#@H3@#$(host h3)#" \
	-e "s#@CLIENT_KEY@#$key#; s#@KNOWN_HOSTS@#$known#" \
	-e "s#@K3S@#$k3s#g; s#@INSTALL_SCRIPT@#$repo/testbed/k3s-install/install.sh#g" \
	"$repo/examples/testbed/plan.yaml.tmpl" >plan.yaml

step "mcplan validate plan.yaml"
mcplan validate plan.yaml

step "mcplan plan plan.yaml"
mcplan plan plan.yaml

step "mcplan apply plan.yaml"
mcplan apply plan.yaml

step "mcplan verify plan.yaml (the mesh's control plane, checked for real)"
mcplan verify plan.yaml

step "mcplan verify --xds plan.yaml (what each istiod tells the sidecars of every network about helloworld)"
mcplan verify --xds plan.yaml

step "the merged kubeconfig"
mcplan kubeconfig plan.yaml | grep -E '^(current-context|- context:|  name:)|    server:' || true

step "mcplan apply plan.yaml again: nothing changes"
mcplan apply plan.yaml

step "mcplan plan --detailed-exitcode plan.yaml (0: no changes)"
mcplan plan --detailed-exitcode plan.yaml >/dev/null && echo "exit 0: the hosts and clusters match the plan"

step "the walkthrough's CA, made locally (no host contacted)"
mkdir -p walkthrough && cp "$repo/examples/walkthrough.yaml" walkthrough/plan.yaml
mcplan apply --target 'mesh/*/ca/*' --target 'cluster/*/ca/*' walkthrough/plan.yaml
for c in cluster1 cluster2; do
	openssl verify -CAfile "walkthrough/.mcplan/ca/mesh1/$c/root-cert.pem" "walkthrough/.mcplan/ca/mesh1/$c/ca-cert.pem"
done

printf '\nDemo done in %s. The test hosts keep running: %s/testbed down --all removes them.\n' "$work" "$work"
