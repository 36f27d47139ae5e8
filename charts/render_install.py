"""Keep the chart's copies and the plain-manifest install in step with their sources.

    python charts/render_install.py            # sync the copies, re-render manifests/install.yaml
    python charts/render_install.py --check    # exit 1 (listing what) when anything is stale

The chart ships copies of files that live elsewhere, because Helm can only read files inside the
chart directory: the CRDs (manifests/crds/ -> charts/airlock/crds/) and, once they exist, the
Grafana dashboard and Prometheus rules (manifests/monitoring/ -> charts/airlock/files/).
manifests/install.yaml is `helm template` of the chart with default values, for people who
install with kubectl: a Namespace, the CRDs, then everything else (the chart has no Helm hooks;
`--no-hooks` keeps it so should one ever be added), but no fingerprint key: a random one would
differ on every render and be shared by every reader of the file.

Helm comes from $HELM, else the local control plane's binaries (hack/localcluster.py).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "charts" / "airlock"
INSTALL = REPO / "manifests" / "install.yaml"
RELEASE, NAMESPACE = "airlock", "airlock-system"

# (source, copy in the chart); a missing source is skipped (its owner has not written it yet).
COPIES: tuple[tuple[Path, Path], ...] = (
    (REPO / "manifests" / "monitoring" / "dashboard.json", CHART / "files" / "dashboard.json"),
    (
        REPO / "manifests" / "monitoring" / "prometheusrule.yaml",
        CHART / "files" / "prometheusrule.yaml",
    ),
)

HEADER = f"""\
# Airlock, plain manifests: `helm template {RELEASE} charts/airlock --namespace {NAMESPACE}
# --include-crds --no-hooks` with default values, rendered by charts/render_install.py (do not
# edit by hand; tests/unit/test_chart.py fails when it is stale).
#
#   kubectl apply --server-side -f manifests/install.yaml
#
# The CRDs come first; if the API server has not established them by the time the
# BaselinePolicy is applied, run the same command again. Set the image digest your release
# pinned (image.digest) with Helm, or edit the three image references below.
# Credential fingerprints are unkeyed here (a plain manifest cannot hold a per-installation
# random key): install with Helm, which creates the key, for fingerprints that cannot confirm
# a guessed password.
---
apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: airlock
    app.kubernetes.io/part-of: airlock
"""


def crd_copies() -> list[tuple[Path, Path]]:
    return [
        (src, CHART / "crds" / src.name) for src in sorted((REPO / "manifests" / "crds").glob("*"))
    ]


def helm_binary() -> str:
    if os.environ.get("HELM"):
        return os.environ["HELM"]
    name = "airlock_hack_localcluster"
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, REPO / "hack" / "localcluster.py")
        if spec is None or spec.loader is None:
            raise SystemExit("cannot load hack/localcluster.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return str(module.bin_dir() / "helm")


def render(helm: str) -> str:
    result = subprocess.run(  # noqa: S603 - our own helm binary, fixed arguments
        [
            helm,
            "template",
            RELEASE,
            str(CHART),
            "--namespace",
            NAMESPACE,
            "--include-crds",
            "--no-hooks",
            # a random key would differ on every render (and be the same for every reader)
            "--set",
            "fingerprintKey.create=false",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return HEADER + result.stdout


def stale(helm: str) -> list[str]:
    """What differs from its source (relative paths); empty when everything is current."""
    out = []
    for src, dst in [*crd_copies(), *COPIES]:
        if src.exists() and (not dst.exists() or src.read_bytes() != dst.read_bytes()):
            out.append(str(dst.relative_to(REPO)))
    stray = {p.name for p in (CHART / "crds").glob("*")} - {s.name for s, _ in crd_copies()}
    out.extend(f"charts/airlock/crds/{name} (no longer in manifests/crds)" for name in stray)
    if not INSTALL.exists() or INSTALL.read_text(encoding="utf-8") != render(helm):
        out.append(str(INSTALL.relative_to(REPO)))
    return out


def sync(helm: str) -> None:
    (CHART / "crds").mkdir(exist_ok=True)
    names = set()
    for src, dst in crd_copies():
        shutil.copyfile(src, dst)
        names.add(dst.name)
    for extra in (CHART / "crds").glob("*"):
        if extra.name not in names:
            extra.unlink()
    for src, dst in COPIES:
        if src.exists():
            shutil.copyfile(src, dst)
    INSTALL.write_text(render(helm), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report what is stale")
    args = parser.parse_args(argv)
    helm = helm_binary()
    if args.check:
        todo = stale(helm)
        for path in todo:
            print(f"stale: {path}", file=sys.stderr)
        if todo:
            print("run: python charts/render_install.py", file=sys.stderr)
        return 1 if todo else 0
    sync(helm)
    print(f"wrote {INSTALL.relative_to(REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
