#!/usr/bin/env python3
"""Reproducible OCI layers and image archives for hack/build-image.sh (standard library only).

    oci.py layer --root DIR --blobs DIR --epoch N [--mtime clamp|set] [--path P]...
                 [--skip-contents P]...
        Pack DIR (or only the given paths under it, with their parent directories) into a gzip
        layer blob under --blobs/sha256/ and print {"digest", "diff_id", "size"} as JSON.

    oci.py image --spec FILE --out ARCHIVE
        Write config, manifest and index for the layers named in the JSON spec and tar the
        layout into ARCHIVE (an OCI archive, as `ctr images import` and `kind load
        image-archive` read it). Prints the manifest digest.

Same input tree and epoch, same bytes: entries in sorted order, numeric owners only (no user
names looked up on the host), mtimes clamped to (or set to) the epoch, gzip without a
timestamp or file name, JSON with sorted keys.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

GZIP_LEVEL = 6  # 9 is ~2x slower here for ~3% smaller layers

MT_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_INDEX = "application/vnd.oci.image.index.v1+json"


class _HashingWriter(io.RawIOBase):
    """Counts and hashes what goes through, then passes it on (or drops it)."""

    def __init__(self, sink: BinaryIO | None) -> None:
        self.sink = sink
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        b = bytes(b)
        self.sha.update(b)
        self.size += len(b)
        if self.sink is not None:
            self.sink.write(b)
        return len(b)


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _put_blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blobs / "sha256" / digest.split(":", 1)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": digest, "size": len(data)}


# --- layers ---------------------------------------------------------------------------------


def _walk(root: Path, rel: str, skip_contents: set[str]) -> list[str]:
    """Pre-order, names sorted bytewise; directories are entered unless their contents are
    skipped (e.g. dev/, whose device nodes the runtime provides)."""
    out: list[str] = []
    full = root / rel if rel else root
    for name in sorted(os.listdir(full), key=os.fsencode):
        child = f"{rel}/{name}" if rel else name
        out.append(child)
        st = os.lstat(root / child)
        if stat.S_ISDIR(st.st_mode) and child not in skip_contents:
            out.extend(_walk(root, child, skip_contents))
    return out


def _members(root: Path, paths: list[str], skip_contents: set[str]) -> list[str]:
    if not paths:
        return _walk(root, "", skip_contents)
    names: list[str] = []
    seen: set[str] = set()
    for p in sorted(p.strip("/") for p in paths):
        parts = p.split("/")
        for i in range(1, len(parts)):  # parent directories first, once
            parent = "/".join(parts[:i])
            if parent not in seen:
                seen.add(parent)
                names.append(parent)
        if p not in seen:
            seen.add(p)
            names.append(p)
            if os.path.isdir(root / p) and not os.path.islink(root / p):
                names.extend(n for n in _walk(root, p, skip_contents) if n not in seen)
    return names


def _tarinfo(
    tar: tarfile.TarFile, root: Path, name: str, *, epoch: int, mtime: str, root_owned: bool
) -> tarfile.TarInfo:
    path = root / name
    try:
        xattrs = os.listxattr(path, follow_symlinks=False)
    except OSError:
        xattrs = []
    if any(x.startswith("security.capability") for x in xattrs):
        raise SystemExit(f"oci.py: {name} has file capabilities; this packer does not carry xattrs")
    info = tar.gettarinfo(str(path), arcname=name)
    if info.type not in (tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
        raise SystemExit(f"oci.py: {name}: unsupported file type {info.type!r} in a layer")
    info.uname = ""
    info.gname = ""
    if root_owned:
        info.uid = info.gid = 0
    info.mtime = min(int(info.mtime), epoch) if mtime == "clamp" else epoch
    return info


def _unpacked_size(root: Path, names: list[str]) -> int:
    """Bytes of regular files, each hard-linked file once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for name in names:
        st = os.lstat(root / name)
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def cmd_layer(args: argparse.Namespace) -> None:
    root = Path(args.root)
    blobs = Path(args.blobs)
    (blobs / "sha256").mkdir(parents=True, exist_ok=True)
    names = _members(root, args.path, {s.strip("/") for s in args.skip_contents})
    fd, tmp = tempfile.mkstemp(dir=blobs / "sha256", prefix=".layer.")
    with os.fdopen(fd, "wb") as raw:
        compressed = _HashingWriter(raw)
        gz = gzip.GzipFile(
            filename="", mode="wb", fileobj=compressed, compresslevel=GZIP_LEVEL, mtime=0
        )
        uncompressed = _HashingWriter(gz)
        with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in names:
                info = _tarinfo(
                    tar, root, name, epoch=args.epoch, mtime=args.mtime, root_owned=args.root_owned
                )
                if info.isreg():
                    with open(root / name, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        gz.close()
    digest = compressed.sha.hexdigest()
    os.replace(tmp, blobs / "sha256" / digest)
    print(
        json.dumps(
            {
                "digest": f"sha256:{digest}",
                "diff_id": f"sha256:{uncompressed.sha.hexdigest()}",
                "size": compressed.size,
                "unpacked_size": _unpacked_size(root, names),
                "entries": len(names),
            },
            sort_keys=True,
        )
    )


# --- images ---------------------------------------------------------------------------------


def _iso(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _repository(name: str) -> str:
    """registry.example:5000/team/app:1.0 -> registry.example:5000/team/app"""
    name = name.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def cmd_image(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.spec).read_text())
    created = _iso(int(spec["epoch"]))
    with tempfile.TemporaryDirectory(prefix="oci-layout.") as tmpdir:
        layout = Path(tmpdir)
        blobs = layout / "blobs"
        (blobs / "sha256").mkdir(parents=True)
        layers = []
        for layer in spec["layers"]:
            src = Path(layer["blobs"]) / "sha256" / layer["digest"].split(":", 1)[1]
            dst = blobs / "sha256" / src.name
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
            layers.append(layer)
        config = {
            "architecture": spec.get("architecture", "amd64"),
            "os": "linux",
            "created": created,
            "config": spec["config"],
            "rootfs": {"type": "layers", "diff_ids": [layer["diff_id"] for layer in layers]},
            "history": [
                {"created": _iso(int(layer["epoch"])), "created_by": layer["created_by"]}
                for layer in layers
            ],
        }
        config_desc = {"mediaType": MT_CONFIG, **_put_blob(blobs, _canonical(config))}
        manifest = {
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": config_desc,
            "layers": [
                {"mediaType": MT_LAYER, "digest": layer["digest"], "size": layer["size"]}
                for layer in layers
            ],
        }
        manifest_desc = {"mediaType": MT_MANIFEST, **_put_blob(blobs, _canonical(manifest))}
        # The same manifest under two names: REPO:TAG, and REPO@DIGEST, which is the name
        # containerd's CRI looks up for a pod's `image: REPO[:TAG]@DIGEST` (a pull records it;
        # an import only creates the names in the index). containerd (ctr import, kind load)
        # reads io.containerd.image.name, other tools ref.name.
        names = [spec["name"], f"{_repository(spec['name'])}@{manifest_desc['digest']}"]
        index = {
            "schemaVersion": 2,
            "mediaType": MT_INDEX,
            "manifests": [
                {
                    **manifest_desc,
                    "platform": {"architecture": config["architecture"], "os": "linux"},
                    "annotations": {
                        "io.containerd.image.name": name,
                        "org.opencontainers.image.ref.name": name,
                    },
                }
                for name in names
            ],
        }
        (layout / "index.json").write_bytes(_canonical(index))
        (layout / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = out.with_name(out.name + ".partial")
        with tarfile.open(tmp_out, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in _walk(layout, "", set()):
                info = tar.gettarinfo(str(layout / name), arcname=name)
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                info.mtime = int(spec["epoch"])
                info.mode = 0o755 if info.isdir() else 0o644
                if info.isreg():
                    with open(layout / name, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
        os.replace(tmp_out, out)
    print(manifest_desc["digest"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("layer")
    p.add_argument("--root", required=True)
    p.add_argument("--blobs", required=True)
    p.add_argument("--epoch", type=int, required=True)
    p.add_argument("--mtime", choices=("clamp", "set"), default="clamp")
    p.add_argument("--root-owned", action="store_true", help="uid and gid 0 for every entry")
    p.add_argument("--path", action="append", default=[], help="only this path (and its parents)")
    p.add_argument(
        "--skip-contents", action="append", default=[], help="keep the directory, not what is in it"
    )
    p.set_defaults(func=cmd_layer)
    p = sub.add_parser("image")
    p.add_argument("--spec", required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_image)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    sys.exit(main())
