#!/usr/bin/env bash
# The apply benchmark (issue 19): for N = 1, 2, 3 clusters (and 5 with
# --large), a fresh test world of N systemd test hosts, one k3s server
# each, one network per cluster, all in one multi-primary mesh; then
#   first apply, no-op re-apply, a second no-op re-apply (steady state:
#   the first one also checks again, rendering, the objects istiod took
#   fields of since the apply), online plan, and an apply of a changed
#   meshConfig,
# each measured (wall time, mcplan's CPU seconds and peak RSS, via
# bench/applyreport), and the first apply's critical path from its
# timeline (mcplan graph --timeline --format json), each step split into
# what it waited for and mcplan's own work. Prints one table.
#
# Run by hand (root, like the demo); CI runs it once with --sizes 1 to keep
# it working. Results go to $BENCH_OUT (default /tmp/mcplan-bench).
#
# Usage: bench/apply.sh [--large] [--sizes "1 2 3"] [--keep]
#   --keep leaves the last world up (testbed down <run> removes it).
# It removes only the worlds it made.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
sizes="1 2 3"
keep=false
while [ $# -gt 0 ]; do
	case "$1" in
	--large) sizes="1 2 3 5" ;;
	--sizes) sizes="$2"; shift ;;
	--keep) keep=true ;;
	*) echo "usage: bench/apply.sh [--large] [--sizes \"1 2 3\"] [--keep]" >&2; exit 2 ;;
	esac
	shift
done
if [ "$(id -u)" -ne 0 ]; then
	echo "bench/apply.sh: run as root (test hosts need network namespaces and systemd-nspawn)" >&2
	exit 1
fi
out="${BENCH_OUT:-/tmp/mcplan-bench}"
rm -rf "$out" && mkdir -p "$out/bin"

"$repo/scripts/install-deps.sh" >/dev/null
(cd "$repo" && go build -o "$out/bin/mcplan" ./cmd/mcplan && go build -o "$out/bin/testbed" ./testbed/cmd/testbed &&
	go build -o "$out/bin/applyreport" ./bench/applyreport)
k3s=$("$repo/testbed/k3s-standin/build.sh")
native=$("$repo/testbed/native-images/build.sh")
"$out/bin/testbed" rootfs >/dev/null
measure() { "$out/bin/applyreport" measure "$@"; }
run=""
trap '$keep || [ -z "$run" ] || "$out/bin/testbed" down "$run" >/dev/null' EXIT

# plan N: N hosts, N clusters of one server each, one network each, one
# multi-primary mesh over all of them.
plan() {
	local n=$1 up=$2 meshconfig=$3 key known
	key=$(echo "$up" | awk '/^client key:/ { print $3 }')
	known=$(echo "$up" | awk '/^known_hosts:/ { print $2 }')
	cat <<YAML
apiVersion: mcplan.io/v1alpha1
kind: Plan
metadata: {name: bench$n}
ssh: {user: root, identityFile: $key, knownHosts: $known}
hosts:
YAML
	for i in $(seq 1 "$n"); do
		echo "  - {name: h$i, address: $(echo "$up" | awk -v h="h$i" '$1 == h { print $2 }')}"
	done
	echo "networks:"
	for i in $(seq 1 "$n"); do echo "  - name: network$i"; done
	echo "clusters:"
	for i in $(seq 1 "$n"); do
		cat <<YAML
  - name: cluster$i
    network: network$i
    servers: [h$i]
    k3s:
      args: [--cluster-cidr=10.$((40 + i)).0.0/16, --service-cidr=10.$((140 + i)).0.0/16]
      airgap: {binary: $k3s, installScript: $repo/testbed/k3s-install/install.sh}
YAML
	done
	echo "meshes:"
	echo "  - name: mesh1"
	echo "    model: multi-primary"
	printf "    clusters: [%s]\n" "$(seq -s ', ' -f 'cluster%g' 1 "$n")"
	echo "    istio:"
	echo "      meshConfig: $meshconfig"
	echo "kubeconfig: {path: ./kubeconfig}"
}

for n in $sizes; do
	dir="$out/$n"
	mkdir -p "$dir"
	[ -z "$run" ] || "$out/bin/testbed" down "$run" >/dev/null
	up=$("$out/bin/testbed" up "$n" --kind systemd --native-images "$native")
	run=$(echo "$up" | awk '/^run / { sub(":", "", $2); print $2 }')
	plan "$n" "$up" "{accessLogFile: /dev/stdout}" >"$dir/plan.yaml"
	cd "$dir"
	echo "== $n cluster(s): first apply" >&2
	measure first.json -- "$out/bin/mcplan" apply -o json plan.yaml >first.events
	"$out/bin/mcplan" graph --timeline --format json plan.yaml >timeline.json
	"$out/bin/mcplan" graph --timeline plan.yaml >timeline.mermaid
	echo "== $n cluster(s): no-op re-apply" >&2
	measure noop.json -- "$out/bin/mcplan" apply -o json plan.yaml >noop.events
	echo "== $n cluster(s): no-op re-apply again (steady state)" >&2
	measure steady.json -- "$out/bin/mcplan" apply -o json plan.yaml >steady.events
	echo "== $n cluster(s): online plan" >&2
	measure plan.json -- "$out/bin/mcplan" plan --detailed-exitcode plan.yaml >plan.out
	plan "$n" "$up" "{accessLogFile: /dev/stdout, accessLogEncoding: JSON}" >plan.yaml
	echo "== $n cluster(s): apply of a changed meshConfig" >&2
	measure change.json -- "$out/bin/mcplan" apply -o json plan.yaml >change.events
	cd "$repo"
done
"$out/bin/applyreport" table "$out"
echo
echo "(measured on $(nproc) cores; results and events in $out)"
