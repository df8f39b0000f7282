#!/usr/bin/env bash
# Builds the programs that the k3s stand-in runs natively in place of
# container images, once per machine, into a cache keyed by the sha256 of
# mcplan's go.mod and go.sum, this script and the Go version. Prints the
# folder that holds them, one executable per image, named after the image's
# last path element (docker.io/istio/pilot:1.31.0 -> pilot); a no-op when
# it is already built.
#
#   pilot  istio.io/istio/pilot/cmd/pilot-discovery, from the same Istio
#          module (and so the same version) that mcplan renders charts with
#
#   MCPLAN_NATIVE_IMAGES_CACHE  cache root
#                               (default ${XDG_CACHE_HOME:-$HOME/.cache}/mcplan/native-images)
set -euo pipefail
cd "$(dirname "$0")/../.."
key=$(
	{
		go version
		sha256sum testbed/native-images/build.sh go.mod go.sum steps/istiorender/render.go
	} | sha256sum | cut -c1-32
)
root=${MCPLAN_NATIVE_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mcplan/native-images}
out=$root/$key
if [[ -x $out/pilot ]]; then
	echo "$out"
	exit 0
fi
mkdir -p "$out"
tmp=$(mktemp "$out/.pilot.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# Report the release mcplan renders (istiorender.DefaultTag), as a release
# build of that tag would; proxies and istioctl compare versions.
tag=$(sed -n 's/^\s*DefaultTag *= *"\(.*\)"$/\1/p' steps/istiorender/render.go)
[[ -n $tag ]] || { echo "native-images: no DefaultTag in steps/istiorender/render.go" >&2; exit 1; }
v=istio.io/istio/pkg/version
ldflags="-s -w -X $v.buildVersion=$tag -X $v.buildTag=$tag -X $v.buildHub=docker.io/istio -X $v.buildStatus=Clean"
start=$(date +%s)
GOFLAGS=-trimpath go build -ldflags "$ldflags" -o "$tmp" istio.io/istio/pilot/cmd/pilot-discovery >&2
chmod 0755 "$tmp"
mv -f "$tmp" "$out/pilot"
echo "native-images: pilot (pilot-discovery) built in $(($(date +%s) - start))s: $(du -h "$out/pilot" | cut -f1)" >&2
echo "$out"
