#!/usr/bin/env bash
# Runs the fault-injection suite alone (README, "Faults"): the walkthrough
# world with k3s restarts, packet loss, links down, killed SSH sessions,
# SIGKILLs of mcplan and a full state directory injected while mcplan
# apply runs. It is also part of scripts/test.sh. Needs root.
# Usage: scripts/test-faults.sh [go test flags, e.g. -run 'TestFaultsOnTheWalkthroughWorld/loss']
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
testbed/k3s-standin/build.sh >/dev/null
testbed/native-images/build.sh >/dev/null
go run ./testbed/cmd/testbed rootfs

run='^TestFaultsOnTheWalkthroughWorld$'
if [ $# -gt 0 ] && [ "$1" = -run ]; then
	run=$2
	shift 2
fi
exec go test -count=1 -timeout 60m -v -run "$run" "$@" ./testbed/e2e
