#!/usr/bin/env bash
# Builds the envtest control plane (kube-apiserver, etcd) from the Go module
# proxy, because no binary can be downloaded here (setup-envtest cannot fetch
# its assets). See /work/shared/research/envtest-from-source.md.
#
#   hack/build-envtest.sh kube-apiserver K8S_VERSION OUT   # e.g. 1.37.1 bin/k8s/1.37.1-linux-amd64/kube-apiserver
#   hack/build-envtest.sh etcd ETCD_VERSION OUT            # e.g. v3.6.16 bin/k8s/1.37.1-linux-amd64/etcd
#
# Each binary is built in a throwaway main module created in a temporary
# directory (removed on exit), written next to OUT under a temporary name and
# then renamed to OUT, so an interrupted build never leaves a half-written
# binary that make would take as up to date.
#
# Why a throwaway module: `go install k8s.io/kubernetes/cmd/kube-apiserver@v`
# refuses because k8s.io/kubernetes' go.mod replaces its staging modules
# (k8s.io/api, k8s.io/apiserver, ...) with ./staging/src paths, and a
# dependency's replace directives are ignored. The throwaway module requires
# k8s.io/kubernetes and replaces every staging module with its published
# v0.<minor>.<patch> release instead. etcd's server module has replaces too
# (../api and so on) but needs none in the throwaway module.
set -euo pipefail

usage() {
	echo "usage: $0 kube-apiserver|etcd VERSION OUT" >&2
	exit 2
}

[[ $# -eq 3 ]] || usage
component=$1
version=$2
out=$3

# The toolchain the project uses, unless the caller chose one (make exports it).
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.4}
# The throwaway module is the main module: no workspace, resolve what is missing.
export GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0

tags=selinux,notest,grpcnotrace

mkdir -p "$(dirname "$out")"
# One build per binary at a time: `make test` run twice at once (two
# engineers, or CI next to a shell) would otherwise build it twice in
# parallel. The second waits, then finds the binary built.
exec {lock}>"$(dirname "$out")/.$(basename "$out").lock"
flock "$lock"
if [[ -x $out ]]; then
	echo "build-envtest: $out is already built"
	exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/pregate-envtest.XXXXXX")
tmp_out="$out.tmp.$$"
trap 'rm -rf "$work" "$tmp_out"' EXIT

# mod_json MODULE@VERSION: `go mod download -json` output for it (the module
# zip is downloaded into the module cache, so a 403 from the proxy shows here).
mod_json() {
	local j
	if ! j=$(cd "$work" && go mod download -json "$1"); then
		echo "build-envtest: downloading $1: $(jq -r '.Error // empty' <<<"$j")" >&2
		echo "build-envtest: if the proxy refuses it (403), use the previous patch release in hack/envtest.mk" >&2
		return 1
	fi
	printf '%s\n' "$j"
}

build_kube_apiserver() {
	local v=${version#v} # 1.37.1
	local kv=v$v         # v1.37.1, the k8s.io/kubernetes module version
	local sv=v0.${v#*.}  # v0.37.1, the staging modules' version

	local info gomod date
	info=$(mod_json "k8s.io/kubernetes@$kv")
	gomod=$(jq -r .GoMod <<<"$info")
	# The release's time, from the proxy's .info: a reproducible build date.
	date=$(jq -r .Time "$(jq -r .Info <<<"$info")")

	# go, godebug and every ./staging/src replace of k8s.io/kubernetes' go.mod.
	local modjson go_line godebug replaces
	modjson=$(go mod edit -json "$gomod")
	go_line=$(jq -r .Go <<<"$modjson")
	godebug=$(jq -r '(.Godebug // [])[] | "godebug \(.Key)=\(.Value)"' <<<"$modjson")
	replaces=$(jq -r --arg sv "$sv" '
		.Replace[]
		| select(.New.Path | startswith("./staging/src/"))
		| "\t\(.Old.Path) => \(.Old.Path) \($sv)"' <<<"$modjson")
	if [[ -z $replaces ]]; then
		echo "build-envtest: no ./staging/src replace directives in $gomod" >&2
		exit 1
	fi

	cat >"$work/go.mod" <<-EOF
	module pregate.invalid/envtest/kube-apiserver

	go $go_line

	$godebug

	require k8s.io/kubernetes $kv

	replace (
	$replaces
	)
	EOF

	local minor=${v#*.}
	minor=${minor%%.*}
	local pkg=k8s.io/component-base/version
	local ldflags="-s -w
		-X $pkg.gitVersion=$kv
		-X $pkg.gitMajor=${v%%.*}
		-X $pkg.gitMinor=$minor
		-X $pkg.gitTreeState=clean
		-X $pkg.buildDate=$date"

	(
		cd "$work"
		go get "k8s.io/kubernetes/cmd/kube-apiserver@$kv"
		go build -trimpath -tags="$tags" -ldflags="$ldflags" -o "$tmp_out" k8s.io/kubernetes/cmd/kube-apiserver
	)
}

build_etcd() {
	local modjson go_line godebug
	modjson=$(go mod edit -json "$(mod_json "go.etcd.io/etcd/server/v3@$version" | jq -r .GoMod)")
	go_line=$(jq -r .Go <<<"$modjson")
	godebug=$(jq -r '(.Godebug // [])[] | "godebug \(.Key)=\(.Value)"' <<<"$modjson")

	cat >"$work/go.mod" <<-EOF
	module pregate.invalid/envtest/etcd

	go $go_line

	$godebug

	require go.etcd.io/etcd/server/v3 $version
	EOF

	# A module zip carries no git commit; say where the binary came from.
	local ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-$version"

	(
		cd "$work"
		go get "go.etcd.io/etcd/server/v3@$version"
		go build -trimpath -tags="$tags" -ldflags="$ldflags" -o "$tmp_out" go.etcd.io/etcd/server/v3
	)
}

command -v jq >/dev/null || {
	echo "build-envtest: jq is required (apt-get install jq)" >&2
	exit 1
}

start=$SECONDS
case $component in
kube-apiserver) build_kube_apiserver ;;
etcd) build_etcd ;;
*) usage ;;
esac
mv -f "$tmp_out" "$out"
echo "build-envtest: built $out ($component $version) in $((SECONDS - start))s"
