#!/usr/bin/env bash
# Builds a Flux controller from its Go module, for the e2e tests that run
# the real Flux controllers as local processes. See
# /work/shared/research/flux-e2e-from-source.md.
#
#   hack/build-flux-controller.sh CONTROLLER VERSION OUT [MODULE=VERSION...]
#   # e.g. source-controller v1.9.6 bin/flux/source-controller-v1.9.6 github.com/fluxcd/pkg/artifact=v0.18.1
#
# `go install github.com/fluxcd/CONTROLLER@VERSION` refuses: the module's
# go.mod replaces its api submodule with ./api, which the module zip leaves
# out. So the module and its api submodule are copied from the module cache
# into a temporary directory (removed on exit), ./api is put back, each
# MODULE=VERSION given is pinned with a replace (a version the proxy here
# serves, when the one required is refused), and the binary is built next
# to OUT under a temporary name, then renamed: an interrupted build never
# leaves a half-written binary that make would take as up to date.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 CONTROLLER VERSION OUT [MODULE=VERSION...]" >&2; exit 2; }
controller=$1 version=$2 out=$3
shift 3

work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

module=github.com/fluxcd/$controller
dir_of() { go mod download -json "$1@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'; }
src=$(dir_of "$module")
api=$(dir_of "$module/api")
[[ -n $src && -n $api ]] || { echo "$0: could not download $module@$version and its api module" >&2; exit 1; }

cp -r "$src" "$work/src"
chmod -R u+w "$work/src"
rm -rf "$work/src/api"
cp -r "$api" "$work/src/api"
chmod -R u+w "$work/src/api"
cd "$work/src"
for pin in "$@"; do
	go mod edit -replace "${pin%%=*}=${pin%%=*}@${pin#*=}"
done
mkdir -p "$(dirname "$out")"
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$out.tmp" .
mv "$out.tmp" "$out"
