#!/usr/bin/env bash
# Builds the local control plane's binaries (etcd, kube-apiserver, kube-controller-manager,
# kubectl, helm), the node's (kubelet, kube-scheduler, kube-proxy) and the sandbox program
# (pause) from the Go module proxy into a cache outside the repository, keyed by the
# pinned versions. CI runs in a fresh clone on the same machine, so a checkout-local cache
# would make every run cold; a version-keyed folder also means a version bump never reuses
# a stale binary. A second run finds everything and returns at once.
#
# Usage: hack/build-bins.sh            build what is missing, print the folder on the last line
#        hack/build-bins.sh --print-dir  only print the folder (builds nothing)
#
# Environment: AIRLOCK_BIN_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/airlock/bin),
#              AIRLOCK_MIN_FREE_GB (default 8), AIRLOCK_BUILD_JOBS (go build -p, default 2).
set -euo pipefail

HACK="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$HACK/versions.env"

CACHE_ROOT="${AIRLOCK_BIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock/bin}"
DIR="$CACHE_ROOT/k8s-${K8S_VERSION}-etcd-${ETCD_VERSION}-helm-${HELM_VERSION}"
if [[ "${1:-}" == "--print-dir" ]]; then
	echo "$DIR"
	exit 0
fi

K8S_BINS=(kube-apiserver kube-controller-manager kubectl kubelet kube-scheduler kube-proxy)
ALL_BINS=(etcd "${K8S_BINS[@]}" helm pause)
JOBS="${AIRLOCK_BUILD_JOBS:-2}"
MIN_FREE_GB="${AIRLOCK_MIN_FREE_GB:-8}"

say() { printf '[cluster-bins] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

missing() {
	local b
	for b in "$@"; do [[ -x "$DIR/$b" ]] || echo "$b"; done
}

if [[ -z "$(missing "${ALL_BINS[@]}")" ]]; then
	say "all binaries present in $DIR"
	echo "$DIR"
	exit 0
fi

command -v go >/dev/null || die "Go is not installed; Go >= 1.26 is needed to build the control plane"

# The wrapper modules must pin the same versions as versions.env, or the cache key would lie.
grep -qE "^require k8s.io/kubernetes ${K8S_VERSION}\$" "$HACK/k8s/kubernetes/go.mod" ||
	die "hack/k8s/kubernetes/go.mod does not require k8s.io/kubernetes ${K8S_VERSION}"
grep -qE "go.etcd.io/etcd/server/v3 ${ETCD_VERSION}\$" "$HACK/k8s/etcd/go.mod" ||
	die "hack/k8s/etcd/go.mod does not require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}"

mkdir -p "$CACHE_ROOT"
# One builder at a time: `make cluster-up` and the e2e fixture may both ask for the binaries.
exec 9>"$CACHE_ROOT/.build.lock"
if ! flock -n 9; then
	say "another build holds $CACHE_ROOT/.build.lock; waiting for it"
	flock 9
fi

GOCACHE_DIR="$(go env GOCACHE)"
GOMODCACHE_DIR="$(go env GOMODCACHE)"
mkdir -p "$GOCACHE_DIR" "$GOMODCACHE_DIR"
for d in "$CACHE_ROOT" "$GOCACHE_DIR" "$GOMODCACHE_DIR"; do
	free_kb="$(df -Pk "$d" | awk 'NR==2 {print $4}')"
	if ((free_kb < MIN_FREE_GB * 1024 * 1024)); then
		die "only $((free_kb / 1024 / 1024)) GiB free under $d; a cold build needs about ${MIN_FREE_GB} GiB (Go build cache + module cache + binaries). Free some space or set AIRLOCK_MIN_FREE_GB."
	fi
done

gocache_kb() { du -sk "$GOCACHE_DIR" 2>/dev/null | awk '{print $1}'; }
cache_before="$(gocache_kb)"
t0=$SECONDS
say "building into $DIR"
say "missing: $(missing "${ALL_BINS[@]}" | tr '\n' ' ')"
say "a cold build takes about 10 minutes on 2 cores and ~5 GiB of Go caches (see hack/README.md); later runs are instant"
say "Go build cache: $GOCACHE_DIR, module cache: $GOMODCACHE_DIR"

PARTIAL="$DIR/.partial"
rm -rf "$PARTIAL"
mkdir -p "$PARTIAL"
export GOFLAGS="-trimpath"

install_bins() {
	local b
	for b in "$@"; do mv -f "$PARTIAL/$b" "$DIR/$b"; done
}

mapfile -t need_k8s < <(missing "${K8S_BINS[@]}")
if ((${#need_k8s[@]})); then
	minor="${K8S_VERSION#v1.}"
	minor="${minor%%.*}"
	ld="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld+=" -X $p.gitVersion=${K8S_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
		ld+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	pkgs=()
	for b in "${need_k8s[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
	t=$SECONDS
	say "go build ${need_k8s[*]} (k8s.io/kubernetes ${K8S_VERSION}, -p $JOBS): the long step"
	(cd "$HACK/k8s/kubernetes" && go build -p "$JOBS" -ldflags "$ld" -o "$PARTIAL/" "${pkgs[@]}")
	install_bins "${need_k8s[@]}"
	say "kubernetes binaries built in $((SECONDS - t)) s"
fi

if [[ ! -x "$DIR/etcd" ]]; then
	t=$SECONDS
	say "go build etcd (go.etcd.io/etcd/server/v3 ${ETCD_VERSION})"
	(cd "$HACK/k8s/etcd" && go build -p "$JOBS" -ldflags "-s -w" -o "$PARTIAL/etcd" go.etcd.io/etcd/server/v3)
	install_bins etcd
	say "etcd built in $((SECONDS - t)) s"
fi

if [[ ! -x "$DIR/helm" ]]; then
	t=$SECONDS
	# Helm reports the Kubernetes version it was built against as its default kubeVersion
	# (helm template); take it from helm's own go.mod, as helm's Makefile does.
	helm_gomod="$(go mod download -json "helm.sh/helm/v3@${HELM_VERSION}" |
		sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
	helm_k8s_minor="$(sed -n 's/^[[:space:]]*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$helm_gomod" | head -n1)"
	[[ -n "$helm_k8s_minor" ]] || die "cannot read the k8s.io/client-go version from $helm_gomod"
	ld="-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}"
	ld+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
	for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
		ld+=" -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=${helm_k8s_minor}"
	done
	say "go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
	GOBIN="$PARTIAL" go install -p "$JOBS" -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
	install_bins helm
	say "helm built in $((SECONDS - t)) s"
fi

if [[ ! -x "$DIR/pause" ]]; then
	say "go build pause (the node's sandbox program, static)"
	(cd "$HACK/k8s/pause" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$PARTIAL/pause" .)
	install_bins pause
fi

rm -rf "$PARTIAL"
cache_after="$(gocache_kb)"
total=$((SECONDS - t0))
{
	echo "built_at=$(date -u +%FT%TZ)"
	echo "build_seconds=$total"
	echo "go_version=$(go env GOVERSION)"
	echo "gocache_growth_mb=$(((cache_after - cache_before) / 1024))"
	echo "bin_dir_mb=$(($(du -sk "$DIR" | awk '{print $1}') / 1024))"
} >"$DIR/BUILD-INFO"
say "done in $((total / 60)) min $((total % 60)) s; Go build cache grew by $(((cache_after - cache_before) / 1024)) MiB;" \
	"binaries take $(($(du -sk "$DIR" | awk '{print $1}') / 1024)) MiB"
echo "$DIR"
