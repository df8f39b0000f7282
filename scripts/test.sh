#!/usr/bin/env bash
# Runs every check of mcplan: formatting, vet, all tests (the concurrent
# packages also with the race detector) including the end-to-end tests on the testbed, the k3s
# stand-in's tests, a 30 s fuzz of the plan loader, and each benchmark once.
# Usage: scripts/test.sh            (from anywhere in the repository)
#        FUZZTIME=2m scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

echo "== build the k3s stand-in (cached per machine; a cold build takes several minutes)"
testbed/k3s-standin/build.sh

echo "== build istiod (pilot-discovery) for the stand-in to run natively (cached per machine; about 5 minutes once)"
testbed/native-images/build.sh

echo "== the test hosts' Debian tree (cached per machine; debootstrap takes about 2 minutes once)"
go run ./testbed/cmd/testbed rootfs

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "not gofmt-formatted:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

# Every go test below goes through scripts/testreport: it prints go test's
# usual lines and fails on a failed test or build, and on any skipped test
# that is not in this allow-list (README, "Skipped tests"): here, as root
# with every tool installed, a skip is a test that did not run.
report="$(mktemp -d)/testreport"
go build -o "$report" ./scripts/testreport
allowed_skips=(
	-allow '^mcplan\.io/mcplan/testbed\.TestCrashChild$' # the child process of TestDownAllAfterCrash, run only by it
)
gotest() { go test -json "$@" 2>&1 | "$report" "${allowed_skips[@]}"; }

echo "== go test"
gotest -count=1 -timeout 60m ./...

echo "== go test -race (engine, plans, CLI: the concurrent code without heavy dependencies)"
gotest -race -count=1 ./engine/... ./plans/... ./steps/remote/...

echo "== go test (k3s stand-in module; -trimpath shares build.sh's compile cache)"
(cd testbed/k3s-standin && export GOFLAGS=-trimpath && go vet ./... && gotest -count=1 ./...)

echo "== fuzz the plan loader (${FUZZTIME:-30s})"
go test ./plans -run '^$' -fuzz '^FuzzParse$' -fuzztime "${FUZZTIME:-30s}"

echo "== benchmarks (one round each, to prove they run; see README for figures)"
go test -run '^$' -bench . -benchtime 1x ./... >/dev/null

echo "== the apply benchmark, once with one cluster, to keep it working (bench/apply.sh; README has its figures)"
BENCH_OUT="$(mktemp -d)/bench" bench/apply.sh --sizes 1

echo "== all checks passed"
