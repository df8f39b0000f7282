#!/usr/bin/env bash
# Builds the k3s stand-in once per machine into a cache keyed by the sha256
# of go.mod, go.sum, every non-test Go source file of the module, this script,
# the Go version and the version to report. Prints the binary's path; a no-op
# when it is already built.
#   build.sh [VERSION]  Kubernetes version the binary reports as VERSION+k3s1
#                       (k3s --version, /version, the Node's kubeletVersion);
#                       default v1.37.2. The code is k8s.io/kubernetes of go.mod
#                       whatever the version says.
#   K3S_STANDIN_CACHE  cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/mcplan/k3s-standin)
set -euo pipefail
cd "$(dirname "$0")"
version=${1:-v1.37.2}
if ! [[ $version =~ ^v1\.([0-9]+)\.[0-9]+$ ]]; then
	echo "build.sh: version $version is not v1.MINOR.PATCH" >&2
	exit 2
fi
minor=${BASH_REMATCH[1]}
key=$(
	{
		go version
		echo "version $version"
		sha256sum build.sh go.mod go.sum
		find . -name '*.go' -not -name '*_test.go' -not -path './e2e/*' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	} | sha256sum | cut -c1-32
)
root=${K3S_STANDIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcplan/k3s-standin}
out=$root/$key/k3s
if [[ -x $out ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$root/$key"
tmp=$(mktemp "$root/$key/.k3s.XXXXXX")
trap 'rm -f "$tmp"' EXIT
pkg=k8s.io/component-base/version
ldflags="-s -w -X $pkg.gitVersion=$version+k3s1 -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
start=$(date +%s)
GOFLAGS=-trimpath go build -ldflags "$ldflags" -o "$tmp" ./cmd/k3s >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
echo "k3s-standin: built in $(($(date +%s) - start))s: $(du -h "$out" | cut -f1)" >&2
echo "$out"
