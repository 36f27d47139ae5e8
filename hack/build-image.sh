#!/usr/bin/env bash
# Builds Airlock's container image and the local node's sandbox ("pause") image without Docker,
# each as an OCI archive (a tar of an OCI image layout) that `ctr -n k8s.io images import` and
# `kind load image-archive` read.
#
#   airlock  Debian bookworm + python3 from mmdebstrap (the BASE layer, cached outside the
#            repository), and /opt/airlock, a venv with Airlock and the wheels pinned in
#            hack/image/requirements.txt installed offline (the APP layer).
#            -> .local/image/airlock.oci.tar, .local/image/airlock.digest
#   pause    hack/k8s/pause built with Go into a one-file image (entrypoint /pause, user 65535).
#            -> .local/image/pause.oci.tar, .local/image/pause.digest
#
# The image must stay equivalent to the Dockerfile (entrypoint, command, user, working
# directory, environment, labels): change both together.
#
# Same inputs, same digests: a fixed SOURCE_DATE_EPOCH, sorted tar entries with numeric owners
# and clamped mtimes, bytecode compiled with --invalidation-mode unchecked-hash and
# PYTHONHASHSEED=0, gzip without timestamps (hack/image/oci.py). The base is keyed by a hash of
# its package list and of build_base below, the venv of pinned wheels by the base and the lock
# files; both are cached (with the wheels) under AIRLOCK_IMAGE_CACHE, so a change under
# operator/ rebuilds only Airlock's own package and the app layer (seconds; a cold build takes
# about a minute). The Debian mirror moves on (security updates), so two *cold* base builds
# weeks apart may differ; AIRLOCK_IMAGE_REFRESH_BASE=1 rebuilds the cached base on purpose.
#
# Each archive names its image twice: NAME:TAG and NAME@sha256:<manifest digest>, the name
# containerd's CRI looks up for a pod's `image: airlock:<version>@sha256:...`.
#
# Usage: hack/build-image.sh [airlock|pause|all]   build (default: all); airlock needs root
#        hack/build-image.sh lock                  re-pin hack/image/*requirements.txt after a
#                                                   dependency change in pyproject.toml
# Progress goes to stderr; stdout gets one line per image, its manifest digest (sha256:...),
# airlock's last.
#
# Environment: AIRLOCK_IMAGE_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/airlock/image),
#              AIRLOCK_IMAGE_OUT (default .local/image), AIRLOCK_IMAGE_NAME (default
#              docker.io/library/airlock:<version>, what a pod's `image: airlock:<version>`
#              resolves to), AIRLOCK_PAUSE_IMAGE_NAME (default localhost/airlock/pause:3.10),
#              AIRLOCK_DEBIAN_MIRROR, AIRLOCK_DEBIAN_SECURITY_MIRROR, SOURCE_DATE_EPOCH
#              (default: the last commit touching the image's inputs).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMG="$REPO/hack/image"
OUT="${AIRLOCK_IMAGE_OUT:-$REPO/.local/image}"
CACHE="${AIRLOCK_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/airlock/image}"
LOCK_RUNTIME="$IMG/requirements.txt"
LOCK_BUILD="$IMG/build-requirements.txt"

# --- base section: everything here is part of the base cache key ---------------------------
BASE_SUITE=bookworm
BASE_PACKAGES=(python3 ca-certificates)
# 2025-01-01T00:00:00Z. A constant: the base does not change with Airlock's history.
BASE_EPOCH=1735689600
# The Debian mirrors this machine's apt already uses (deb822 .sources or one-line .list files),
# so the image comes from wherever `apt-get install` works here.
host_apt_uri() { # host_apt_uri main|security
	local uris
	uris="$({
		grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
		grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}'
	} | grep -i debian || true)"
	if [[ "$1" == security ]]; then
		grep -m1 -- '-security' <<<"$uris" || true
	else
		grep -v -- '-security' <<<"$uris" | head -n1 || true
	fi
}
DEBIAN_MIRROR="${AIRLOCK_DEBIAN_MIRROR:-$(host_apt_uri main)}"
DEBIAN_SECURITY_MIRROR="${AIRLOCK_DEBIAN_SECURITY_MIRROR:-$(host_apt_uri security)}"

# build_base DIR: DIR/rootfs (kept for the app build's chroot), DIR/blobs, DIR/layer.json
build_base() {
	local dir="$1" rootfs="$1/rootfs"
	[[ -n "$DEBIAN_MIRROR" && -n "$DEBIAN_SECURITY_MIRROR" ]] ||
		die "no Debian mirror found in /etc/apt/sources.list*; set AIRLOCK_DEBIAN_MIRROR and AIRLOCK_DEBIAN_SECURITY_MIRROR"
	local include
	include="$(IFS=,; echo "${BASE_PACKAGES[*]}")"
	# essential + python3: no apt, no pip, no compiler in the image. The merged-usr hook installs
	# usr-is-merged, not usrmerge (which would pull in perl). No docs but copyrights, no man
	# pages, no locales.
	if ! SOURCE_DATE_EPOCH="$BASE_EPOCH" mmdebstrap --mode=root --variant=essential --format=directory \
		--include="$include" \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-include=/usr/share/locale/locale.alias' \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		"$BASE_SUITE" "$rootfs" \
		"deb $DEBIAN_MIRROR $BASE_SUITE main" \
		"deb $DEBIAN_MIRROR $BASE_SUITE-updates main" \
		"deb $DEBIAN_SECURITY_MIRROR $BASE_SUITE-security main" >"$dir/mmdebstrap.log" 2>&1; then
		tail -n 25 "$dir/mmdebstrap.log" >&2
		die "mmdebstrap failed (is $DEBIAN_MIRROR reachable? AIRLOCK_DEBIAN_MIRROR picks another mirror)"
	fi
	# What the runtime provides or what differs between hosts and runs.
	rm -f "$rootfs"/etc/resolv.conf "$rootfs"/etc/hostname "$rootfs"/etc/apt/sources.list \
		"$rootfs"/var/cache/debconf/*-old "$rootfs"/var/lib/dpkg/*-old
	rm -rf "$rootfs"/var/log/apt "$rootfs"/var/cache/apt "$rootfs"/var/lib/apt/lists
	# Airlock's user, with a name getpass.getuser() and `id` can find; no home, no login.
	echo 'airlock:x:65532:65532:Airlock:/nonexistent:/usr/sbin/nologin' >>"$rootfs/etc/passwd"
	echo 'airlock:x:65532:' >>"$rootfs/etc/group"
	# Debian compiled the standard library with PYTHONHASHSEED random (set constants are
	# ordered by it) and checked hashes; recompile it deterministically. Nothing in the image
	# can change the sources (no apt), so the bytecode is trusted as is.
	find "$rootfs/usr" -type d -name __pycache__ -prune -exec rm -rf {} +
	chroot "$rootfs" /usr/bin/env -i PATH=/usr/bin:/bin PYTHONHASHSEED=0 \
		python3 -m compileall -q --invalidation-mode unchecked-hash \
		/usr/lib/python3.11 /usr/lib/python3/dist-packages /usr/share/python3 >&2
	# shellcheck disable=SC2016 # dpkg-query's format, not the shell's
	chroot "$rootfs" dpkg-query -W -f '${Package} ${Version}\n' >"$dir/packages.txt"
	"$HOST_PY" "$IMG/oci.py" layer --root "$rootfs" --blobs "$dir/blobs" --epoch "$BASE_EPOCH" \
		--mtime clamp --skip-contents dev >"$dir/layer.json"
}
# --- end of base section ---------------------------------------------------------------------

# CPython 3.11 on bookworm's glibc (2.36), x86_64: the wheels pip may pick, best first.
PIP_TARGET_FLAGS=(
	--only-binary=:all: --implementation cp --python-version 3.11
	--abi cp311 --abi abi3 --abi none
	--platform manylinux_2_36_x86_64 --platform manylinux_2_34_x86_64
	--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64
	--platform manylinux2014_x86_64
)
PAUSE_VERSION=3.10

say() { printf '[image] %s\n' "$*" >&2; }
die() {
	say "ERROR: $*"
	exit 1
}

usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
	exit "${1:-0}"
}

TARGET="${1:-all}"
case "$TARGET" in
airlock | pause | all | lock) ;;
-h | --help) usage 0 ;;
*)
	say "unknown target '$TARGET'"
	usage 2
	;;
esac
(($# <= 1)) || die "one target at a time (airlock, pause, all or lock)"

# The Python that downloads wheels: the repository's venv if there is one (it has pip).
if [[ -x "$REPO/.venv/bin/python" ]]; then
	HOST_PY="$REPO/.venv/bin/python"
else
	HOST_PY="$(command -v python3 || true)"
	[[ -n "$HOST_PY" ]] || die "python3 is not installed (apt-get install -y python3 python3-pip)"
fi
"$HOST_PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
	die "$HOST_PY is older than Python 3.11 (hack/image/oci.py and the lock need 3.11)"

# The host's network settings for pip (index, proxy, CA) stay; everything else from PIP_*
# (find-links, constraints, no-binary, ...) would change what gets pinned or installed.
host_pip() {
	local keep=(PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST PIP_CERT PIP_CLIENT_CERT
		PIP_PROXY PIP_DEFAULT_TIMEOUT PIP_RETRIES)
	local unset=() v
	for v in $(compgen -e | grep '^PIP_' || true); do
		[[ " ${keep[*]} " == *" $v "* ]] || unset+=(-u "$v")
	done
	env "${unset[@]}" PIP_DISABLE_PIP_VERSION_CHECK=1 "$HOST_PY" -m pip "$@"
}

need_pip() {
	host_pip --version >/dev/null 2>&1 ||
		die "$HOST_PY has no pip (apt-get install -y python3-pip, or make venv)"
}

WORK=""
cleanup() {
	if [[ -n "$WORK" && -d "$WORK" ]]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# --- lock: pin the wheels -------------------------------------------------------------------

write_lock() { # write_lock WHEEL_DIR OUT_FILE WHAT
	"$HOST_PY" - "$@" <<'EOF'
import hashlib, pathlib, re, sys
wheels, out, what = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3]
lines = [
    f"# {what}.",
    "# Pinned by `hack/build-image.sh lock`: `pip download --only-binary=:all: --implementation cp",
    "# --python-version 3.11 --platform manylinux_2_36..2_17_x86_64` of pyproject.toml's",
    "# requirements, then the sha256 of each wheel it got. Do not edit; rerun after changing them.",
]
for whl in sorted(wheels.glob("*.whl"), key=lambda p: p.name.lower()):
    name, version = whl.name.split("-")[:2]
    name = re.sub(r"[-_.]+", "-", name).lower()
    digest = hashlib.sha256(whl.read_bytes()).hexdigest()
    lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}")
out.write_text("\n".join(lines) + "\n")
EOF
}

lock() {
	local tmp runtime build
	need_pip
	tmp="$(mktemp -d)"
	WORK="$tmp"
	mapfile -t runtime < <("$HOST_PY" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' "$REPO/pyproject.toml")
	mapfile -t build < <("$HOST_PY" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$REPO/pyproject.toml")
	say "resolving Airlock's dependencies: ${runtime[*]}"
	host_pip download --quiet --no-cache-dir "${PIP_TARGET_FLAGS[@]}" -d "$tmp/runtime" "${runtime[@]}"
	say "resolving the build tools: pip ${build[*]}"
	host_pip download --quiet --no-cache-dir "${PIP_TARGET_FLAGS[@]}" -d "$tmp/build" pip "${build[@]}"
	write_lock "$tmp/runtime" "$LOCK_RUNTIME" "Airlock's runtime dependencies, installed into the image's /opt/airlock"
	write_lock "$tmp/build" "$LOCK_BUILD" "Tools that build and install Airlock's wheel during the image build (not in the image)"
	say "wrote ${LOCK_RUNTIME#"$REPO"/} ($(grep -c '^[a-z0-9]' "$LOCK_RUNTIME") wheels) and ${LOCK_BUILD#"$REPO"/} ($(grep -c '^[a-z0-9]' "$LOCK_BUILD") wheels)"
}

if [[ "$TARGET" == lock ]]; then
	lock
	exit 0
fi

# --- shared ---------------------------------------------------------------------------------

# mmdebstrap builds the base as root, and the app layer is installed and checked in a chroot.
if [[ "$TARGET" != pause ]] && ((EUID != 0)); then
	die "building the airlock image must run as root (mmdebstrap and chroot need it): sudo $0 $TARGET"
fi

ensure_apt() { # ensure_apt COMMAND PACKAGE...
	local cmd="$1"
	shift
	command -v "$cmd" >/dev/null && return 0
	((EUID == 0)) || die "$cmd is missing: apt-get install -y $*"
	say "installing $* (for $cmd)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed; install $* yourself"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 || die "apt-get install -y $* failed"
	command -v "$cmd" >/dev/null || die "$cmd still missing after installing $*"
}

# The last commit that touched these paths, or the base epoch outside git.
epoch_of() {
	if [[ -n "${SOURCE_DATE_EPOCH:-}" ]]; then
		echo "$SOURCE_DATE_EPOCH"
		return
	fi
	local t=""
	t="$(git -C "$REPO" log -1 --format=%ct -- "$@" 2>/dev/null || true)"
	echo "${t:-$BASE_EPOCH}"
}

# write_image NAME EPOCH CONFIG_JSON OUT_TAR LAYER_JSON:BLOBS:LAYER_EPOCH:CREATED_BY...
write_image() {
	local name="$1" epoch="$2" config="$3" out="$4"
	shift 4
	local spec="$WORK/image-spec.json"
	"$HOST_PY" - "$name" "$epoch" "$config" "$@" >"$spec" <<'EOF'
import json, sys
name, epoch, config, *layers = sys.argv[1:]
out = {"name": name, "epoch": int(epoch), "config": json.loads(config), "layers": []}
for layer in layers:
    path, blobs, created, created_by = layer.split(":", 3)
    out["layers"].append(
        {**json.load(open(path)), "blobs": blobs, "epoch": int(created), "created_by": created_by}
    )
json.dump(out, sys.stdout)
EOF
	"$HOST_PY" "$IMG/oci.py" image --spec "$spec" --out "$out"
}

mkdir -p "$CACHE" "$OUT"
exec 9>"$CACHE/.lock"
if ! flock -n 9; then
	say "another build holds $CACHE/.lock; waiting"
	flock 9
fi

# --- pause ----------------------------------------------------------------------------------

build_pause() {
	local t0=$SECONDS go name epoch digest
	go="$(command -v go || true)"
	if [[ -z "$go" && -x /usr/local/go/bin/go ]]; then go=/usr/local/go/bin/go; fi
	[[ -n "$go" ]] || die "Go is not installed; Go >= 1.26 builds hack/k8s/pause (see hack/README.md)"
	name="${AIRLOCK_PAUSE_IMAGE_NAME:-localhost/airlock/pause:$PAUSE_VERSION}"
	epoch="$(epoch_of hack/k8s/pause)"
	WORK="$(mktemp -d "$CACHE/work.pause.XXXXXX")"
	mkdir -p "$WORK/rootfs" "$WORK/blobs"
	say "pause: go build hack/k8s/pause"
	# Same toolchain, same bytes: -trimpath, and -buildvcs=false so that the binary records
	# neither the commit nor a dirty tree; nothing from the caller's GOFLAGS, GOAMD64, ...
	(cd "$REPO/hack/k8s/pause" && env CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 \
		GOTOOLCHAIN=local GOWORK=off GOFLAGS= GOEXPERIMENT= \
		"$go" build -trimpath -buildvcs=false -ldflags '-s -w' -o "$WORK/rootfs/pause" .) ||
		die "go build of hack/k8s/pause failed"
	chmod 0755 "$WORK/rootfs/pause"
	"$HOST_PY" "$IMG/oci.py" layer --root "$WORK/rootfs" --blobs "$WORK/blobs" --epoch "$epoch" \
		--mtime set --root-owned >"$WORK/layer.json"
	digest="$(write_image "$name" "$epoch" \
		'{"User":"65535:65535","Entrypoint":["/pause"],"WorkingDir":"/","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}' \
		"$OUT/pause.oci.tar" "$WORK/layer.json:$WORK/blobs:$epoch:go build hack/k8s/pause (hack/build-image.sh)")"
	echo "$digest" >"$OUT/pause.digest"
	rm -rf "$WORK"
	WORK=""
	say "pause: ${OUT#"$REPO"/}/pause.oci.tar, $name@$digest ($((SECONDS - t0)) s)"
	echo "$digest"
}

# --- airlock --------------------------------------------------------------------------------

# ensure_wheels: every wheel the two lock files pin, in $CACHE/wheels (downloaded once)
ensure_wheels() {
	local missing
	mkdir -p "$CACHE/wheels"
	missing="$("$HOST_PY" - "$CACHE/wheels" "$LOCK_RUNTIME" "$LOCK_BUILD" <<'EOF'
import hashlib, pathlib, re, sys
have = {hashlib.sha256(p.read_bytes()).hexdigest() for p in pathlib.Path(sys.argv[1]).glob("*.whl")}
want = set()
for lock in sys.argv[2:]:
    want |= set(re.findall(r"--hash=sha256:([0-9a-f]{64})", pathlib.Path(lock).read_text()))
print(len(want - have))
EOF
)"
	if [[ "$missing" != 0 ]]; then
		say "airlock: downloading $missing pinned wheels into $CACHE/wheels"
		local lockfile
		for lockfile in "$LOCK_RUNTIME" "$LOCK_BUILD"; do
			host_pip download --quiet --no-deps --require-hashes "${PIP_TARGET_FLAGS[@]}" \
				-d "$CACHE/wheels" -r "$lockfile" ||
				die "pip download -r ${lockfile#"$REPO"/} failed (if pyproject.toml changed: hack/build-image.sh lock)"
		done
	fi
}

# stage_wheels DEST: hard-link the pinned wheels (and only those) into DEST
stage_wheels() {
	"$HOST_PY" - "$CACHE/wheels" "$1" "$LOCK_RUNTIME" "$LOCK_BUILD" <<'EOF'
import hashlib, os, pathlib, re, shutil, sys
src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
want = set()
for lock in sys.argv[3:]:
    want |= set(re.findall(r"--hash=sha256:([0-9a-f]{64})", pathlib.Path(lock).read_text()))
dst.mkdir(parents=True, exist_ok=True)
for p in src.glob("*.whl"):
    if hashlib.sha256(p.read_bytes()).hexdigest() in want:
        try:
            os.link(p, dst / p.name)
        except OSError:
            shutil.copyfile(p, dst / p.name)
EOF
}

# in_chroot ROOTFS USERSPEC COMMAND...: a clean environment, nothing from the host's PIP_*.
in_chroot() {
	local rootfs="$1" userspec="$2"
	shift 2
	chroot --userspec="$userspec" "$rootfs" /usr/bin/env -i \
		PATH=/opt/airlock/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/nonexistent LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 "$@"
}

build_airlock() {
	local t0=$SECONDS key base version name epoch created digest
	ensure_apt mmdebstrap mmdebstrap debian-archive-keyring
	command -v chroot >/dev/null || die "chroot is missing (apt-get install -y coreutils)"
	[[ -s "$LOCK_RUNTIME" && -s "$LOCK_BUILD" ]] ||
		die "${LOCK_RUNTIME#"$REPO"/} or ${LOCK_BUILD#"$REPO"/} is missing: hack/build-image.sh lock"

	# The base.
	key="$({
		declare -f build_base
		printf '%s\n' "$BASE_SUITE" "${BASE_PACKAGES[@]}" "$BASE_EPOCH"
		cat "$IMG/oci.py"
	} | sha256sum | cut -c1-16)"
	base="$CACHE/base-$key"
	if [[ "${AIRLOCK_IMAGE_REFRESH_BASE:-0}" == 1 && -d "$base" ]]; then
		say "airlock: AIRLOCK_IMAGE_REFRESH_BASE=1: rebuilding the base"
		rm -rf "$base"
	fi
	if [[ -f "$base/layer.json" ]]; then
		say "airlock: base $key cached ($(wc -l <"$base/packages.txt") Debian packages)"
	else
		say "airlock: building base $key (mmdebstrap $BASE_SUITE: ${BASE_PACKAGES[*]}; about a minute)"
		rm -rf "$base.partial"
		mkdir -p "$base.partial"
		WORK="$base.partial"
		build_base "$base.partial"
		mv "$base.partial" "$base"
		WORK=""
		# Older bases (other keys) are dead weight.
		find "$CACHE" -maxdepth 1 -name 'base-*' ! -name "base-$key" -exec rm -rf {} +
		say "airlock: base $key built in $((SECONDS - t0)) s ($(wc -l <"$base/packages.txt") Debian packages)"
	fi

	# The app layer, built in a copy of the base.
	version="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/operator/airlock/__init__.py")"
	[[ -n "$version" ]] || die "no __version__ in operator/airlock/__init__.py"
	name="${AIRLOCK_IMAGE_NAME:-docker.io/library/airlock:$version}"
	epoch="$(epoch_of pyproject.toml README.md operator hack/image hack/build-image.sh)"
	created=$((epoch > BASE_EPOCH ? epoch : BASE_EPOCH))
	need_pip
	ensure_wheels
	WORK="$(mktemp -d "$CACHE/work.airlock.XXXXXX")"
	local rootfs="$WORK/rootfs" b="$WORK/rootfs/tmp/build"
	cp -a --reflink=auto "$base/rootfs" "$rootfs"
	mkdir -p "$b/src"
	stage_wheels "$b/wheels"
	cp "$LOCK_RUNTIME" "$b/requirements.txt"
	cp "$LOCK_BUILD" "$b/build-requirements.txt"
	# What the Dockerfile copies: pyproject.toml, README.md, operator/ (no bytecode, no egg-info).
	tar -C "$REPO" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
		-cf - pyproject.toml README.md operator | tar -C "$b/src" -xf -
	# pip runs from its wheel's contents, never touches the network (--no-index) and ignores
	# any configuration (PIP_CONFIG_FILE=/dev/null; the environment is empty).
	local pip=(/usr/bin/env PYTHONPATH=/tmp/build/pip PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1
		PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INDEX=1 PIP_NO_INPUT=1)
	# Bytecode at build time, so nothing is written at run time (read-only root filesystem).
	# Hash-based, unchecked: valid whatever the mtimes; PYTHONHASHSEED=0: set constants in a
	# fixed order.
	local compile=(/usr/bin/env PYTHONHASHSEED=0 /opt/airlock/bin/python -m compileall -q -j 2
		--invalidation-mode unchecked-hash)
	in_chroot "$rootfs" 0:0 sh -c 'python3 -m zipfile -e /tmp/build/wheels/pip-*.whl /tmp/build/pip'

	# The venv with the pinned wheels only depends on the base and the lock files: cached.
	local deps
	deps="$CACHE/deps-$({
		echo "$key"
		cat "$LOCK_RUNTIME" "$LOCK_BUILD"
		declare -f build_airlock
	} | sha256sum | cut -c1-16)"
	if [[ -d "$deps/airlock" ]]; then
		say "airlock: venv with $(grep -c '^[a-z0-9]' "$LOCK_RUNTIME") pinned wheels cached"
		cp -a --reflink=auto "$deps/airlock" "$rootfs/opt/airlock"
	else
		say "airlock: installing $(grep -c '^[a-z0-9]' "$LOCK_RUNTIME") pinned wheels into /opt/airlock (offline)"
		in_chroot "$rootfs" 0:0 "${pip[@]}" sh -euc '
			python3 -m venv --without-pip /opt/airlock
			/opt/airlock/bin/python -m pip install --quiet --no-compile --no-deps --require-hashes \
				--find-links /tmp/build/wheels -r /tmp/build/requirements.txt
			' >&2 || die "installing the pinned wheels into /opt/airlock failed"
		in_chroot "$rootfs" 0:0 "${compile[@]}" /opt/airlock/lib >&2
		# Older venvs (other keys) are dead weight.
		find "$CACHE" -maxdepth 1 -name 'deps-*' -exec rm -rf {} +
		mkdir -p "$deps.partial"
		cp -a --reflink=auto "$rootfs/opt/airlock" "$deps.partial/airlock"
		mv "$deps.partial" "$deps"
	fi

	say "airlock: building and installing Airlock $version"
	# shellcheck disable=SC2016 # expanded by the chroot's sh
	in_chroot "$rootfs" 0:0 "${pip[@]}" SOURCE_DATE_EPOCH="$epoch" sh -euc '
		cd /tmp/build
		python3 -m pip install --quiet --no-compile --no-deps --require-hashes \
			--find-links wheels --target tools -r build-requirements.txt
		PYTHONPATH=/tmp/build/pip:/tmp/build/tools python3 -m pip wheel --quiet --no-deps \
			--no-build-isolation --wheel-dir dist ./src >/dev/null
		/opt/airlock/bin/python -m pip install --quiet --no-compile --no-deps \
			--find-links dist "kube-airlock==$1"
		' sh "$version" >&2 || die "building or installing Airlock's wheel failed"
	in_chroot "$rootfs" 0:0 "${pip[@]}" /opt/airlock/bin/python -m pip check >/dev/null ||
		die "the pinned wheels do not satisfy Airlock's requirements ($(in_chroot "$rootfs" 0:0 "${pip[@]}" /opt/airlock/bin/python -m pip check | head -3 | tr '\n' ' ')): hack/build-image.sh lock"
	in_chroot "$rootfs" 0:0 "${compile[@]}" /opt/airlock/lib/python3.11/site-packages/airlock >&2
	verify_airlock "$rootfs" "$version"
	rm -rf "$b"

	say "airlock: packing the app layer"
	"$HOST_PY" "$IMG/oci.py" layer --root "$rootfs" --blobs "$WORK/blobs" --epoch "$epoch" \
		--mtime set --path opt/airlock >"$WORK/layer.json"
	local config
	config="$("$HOST_PY" - "$version" <<'EOF'
import json, sys
# Keep in step with the Dockerfile.
print(json.dumps({
    "User": "65532:65532",
    "WorkingDir": "/tmp",
    "Entrypoint": ["airlock"],
    "Cmd": ["--help"],
    "Env": [
        "PATH=/opt/airlock/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG=C.UTF-8",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
    ],
    "Labels": {
        "org.opencontainers.image.title": "airlock",
        "org.opencontainers.image.description": "Security baseline for AI workloads on Kubernetes",
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.version": sys.argv[1],
    },
}))
EOF
)"
	digest="$(write_image "$name" "$created" "$config" "$OUT/airlock.oci.tar" \
		"$base/layer.json:$base/blobs:$BASE_EPOCH:mmdebstrap --variant=essential $BASE_SUITE: ${BASE_PACKAGES[*]} (hack/build-image.sh)" \
		"$WORK/layer.json:$WORK/blobs:$epoch:/opt/airlock: Airlock $version and its pinned wheels (hack/build-image.sh)")"
	echo "$digest" >"$OUT/airlock.digest"
	cp "$base/packages.txt" "$OUT/airlock.debian-packages.txt"
	report_sizes "$base/layer.json" "$WORK/layer.json" "$rootfs"
	rm -rf "$WORK"
	WORK=""
	say "airlock: ${OUT#"$REPO"/}/airlock.oci.tar, $name@$digest ($((SECONDS - t0)) s)"
	echo "$digest"
}

# verify_airlock ROOTFS VERSION: the CLI runs as the image's user, from bytecode only.
verify_airlock() {
	local rootfs="$1" version="$2" out rc
	out="$(in_chroot "$rootfs" 65532:65532 airlock version)" || die "airlock version failed in the image"
	[[ "$out" == *"$version"* ]] || die "airlock version printed '$out', expected $version"
	cat >"$rootfs/tmp/build/privileged-pod.yaml" <<'EOF'
apiVersion: v1
kind: Pod
metadata:
  name: check
  namespace: default
spec:
  containers:
    - name: c
      image: busybox:latest
      securityContext:
        privileged: true
EOF
	rc=0
	out="$(in_chroot "$rootfs" 65532:65532 airlock scan --no-color --fail-on audit /tmp/build/privileged-pod.yaml)" || rc=$?
	if ((rc != 1)) || [[ -z "$out" ]]; then
		die "airlock scan of a privileged Pod exited $rc (expected 1 with findings): $out"
	fi
	out="$(in_chroot "$rootfs" 65532:65532 python -c 'import getpass; print(getpass.getuser())')" ||
		die "getpass.getuser() fails as 65532 (no /etc/passwd entry?)"
	[[ "$out" == airlock ]] || die "getpass.getuser() is '$out', expected airlock"
	# -v logs "code object from /x.py" (unquoted) for each module compiled from source at import,
	# "code object from '/x.pyc'" for each loaded from bytecode.
	out="$(in_chroot "$rootfs" 65532:65532 python -v -c \
		'import airlock.cli, airlock.controller, kopf, kubernetes.client, aiohttp, cryptography.x509, pydantic, orjson, yaml, prometheus_client' 2>&1)" ||
		die "importing Airlock's modules failed in the image: $(tail -5 <<<"$out")"
	if grep -q '^# code object from /' <<<"$out"; then
		die "modules compiled at import (bytecode missing or stale): $(grep '^# code object from /' <<<"$out" | head -5)"
	fi
	say "airlock: checks passed as 65532 (version, scan, getpass, imports from bytecode)"
}

report_sizes() { # report_sizes BASE_LAYER_JSON APP_LAYER_JSON ROOTFS
	"$HOST_PY" - "$@" <<'EOF' >&2
import json, subprocess, sys
base, app = (json.load(open(p)) for p in sys.argv[1:3])
du = subprocess.run(["du", "-sb", f"--exclude={sys.argv[3]}/dev", sys.argv[3]], capture_output=True, text=True)
mb = lambda n: f"{n / 1e6:.1f} MB"
print(f"[image] airlock: layers (gzip) base {mb(base['size'])} + app {mb(app['size'])} = "
      f"{mb(base['size'] + app['size'])} compressed; unpacked "
      f"{mb(int(du.stdout.split()[0]))} (base {mb(base['unpacked_size'])}, app {mb(app['unpacked_size'])})")
EOF
}

case "$TARGET" in
pause) build_pause ;;
airlock) build_airlock ;;
all)
	build_pause
	build_airlock
	;;
esac
