#!/bin/sh
# Captures the *.out files of TestPodRoutesDecision: the output of the
# podroutes check's command (command.golden, routeCommand's for the test's
# addresses) in scratch network namespaces set up with each case's routes.
# Run as root; it deletes what it makes.
set -eu
cd "$(dirname "$0")"
lookup=$(cat command.golden)
capture() { # name, then ip route arguments, one route per argument
	name=$1
	shift
	ns=mcplan-podroutes-capture-$$
	ip netns add "$ns"
	trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
	ip -n "$ns" link set lo up
	ip -n "$ns" link add eth0 type veth peer name eth1
	ip -n "$ns" link set eth0 up
	ip -n "$ns" link set eth1 up
	ip -n "$ns" addr add 10.0.0.2/24 dev eth0
	for r in "$@"; do
		# shellcheck disable=SC2086 # each route is split into its words
		ip -n "$ns" route add $r
	done
	ip netns exec "$ns" sh -c "$lookup" >"$name.out"
	if [ "$name" = ip-missing ]; then
		ip netns exec "$ns" env PATH=/nonexistent /bin/sh -c "$lookup" >"$name.out" 2>&1 || true
	fi
	ip netns del "$ns"
	trap - EXIT
}
capture routed "default via 10.0.0.1" "10.52.0.0/16 via 10.0.0.3"
capture host-routes "default via 10.0.0.1" "10.52.0.1/32 via 10.0.0.3" "10.52.1.1/32 via 10.0.0.4"
capture default-only "default via 10.0.0.1"
capture no-route
capture half-routed "default via 10.0.0.1" "10.52.0.0/24 via 10.0.0.3"
capture unreachable "default via 10.0.0.1" "unreachable 10.52.0.0/16"
capture blackhole "default via 10.0.0.1" "blackhole 10.52.0.0/16"
capture prohibit "default via 10.0.0.1" "prohibit 10.52.0.0/16"
capture ip-missing "default via 10.0.0.1"
