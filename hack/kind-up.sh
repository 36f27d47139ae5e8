#!/usr/bin/env bash
# For developers with Docker and kind: a kind cluster named "airlock" as an alternative to the
# binaries-only control plane (make cluster-up). Writes the same .local/cluster/kubeconfig.
#
# Usage: hack/kind-up.sh         create (or reuse) the cluster
#        hack/kind-up.sh --down  delete it and its kubeconfig
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
NAME=airlock
RUN_DIR=.local/cluster
# Built for kind v0.33.0 (its release notes list this digest); a node image only works with
# the kind release that built it, so the digest pins both. No v1.37.2 image exists for it.
KIND_RELEASE=v0.33.0
NODE_IMAGE="kindest/node:v1.37.0@sha256:a1ed56cfb0e7b93589bdf97c8cd566405a265939e3620fc4f5de89adff580ae5"

die() { echo "kind-up: $*" >&2; exit 1; }
command -v kind >/dev/null || die "kind is not installed (needs kind ${KIND_RELEASE} and Docker)"
command -v docker >/dev/null || die "docker is not installed"

if [[ "${1:-}" == "--down" ]]; then
	kind delete cluster --name "$NAME"
	if [[ -f "$RUN_DIR/kind" ]]; then
		rm -f "$RUN_DIR/kubeconfig" "$RUN_DIR/env" "$RUN_DIR/kind"
	fi
	exit 0
fi

[[ -f "$RUN_DIR/state.json" ]] &&
	die "the local control plane runs in $RUN_DIR (make cluster-down first): both use its kubeconfig"
kind version | grep -q "kind ${KIND_RELEASE} " ||
	echo "kind-up: warning: $(kind version) is not ${KIND_RELEASE}; the node image may not work" >&2

if ! kind get clusters 2>/dev/null | grep -qx "$NAME"; then
	kind create cluster --name "$NAME" --image "$NODE_IMAGE" --wait 120s
fi
mkdir -p "$RUN_DIR"
kind get kubeconfig --name "$NAME" >"$RUN_DIR/kubeconfig"
chmod 600 "$RUN_DIR/kubeconfig"
touch "$RUN_DIR/kind"
{
	echo "# Written by hack/kind-up.sh; \`source\` it to use the kind cluster."
	echo "export KUBECONFIG='$PWD/$RUN_DIR/kubeconfig'"
} >"$RUN_DIR/env"
echo "kind cluster '$NAME' ready; kubeconfig: $RUN_DIR/kubeconfig"
