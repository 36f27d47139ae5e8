"""Fixtures for the chart-on-a-real-node tests: the control plane of tests/e2e plus a real node
(containerd, runc, CNI, kubelet, kube-scheduler, kube-proxy; hack/localnode.py) and Airlock's
own image (hack/build-image.sh), imported into the node's containerd.

The node needs root: elsewhere these tests are skipped with the reason, which `pytest -ra`
prints. In CI (``CI`` set) a machine that cannot run a node is an error, not a skip: CI must
test Airlock the way admins run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from e2e_rig import REPO_ROOT, localcluster

NODE_DIR = Path(__file__).resolve().parent
NODE_RUN_DIR = REPO_ROOT / ".local" / "node-cluster"
IMAGE_DIR = REPO_ROOT / ".local" / "image"
localnode = sys.modules["localnode"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/node needs the node, so `-m 'not node'` skips it."""
    for item in items:
        if item.path.is_relative_to(NODE_DIR):
            item.add_marker(pytest.mark.node)


@dataclass(frozen=True)
class NodeCluster:
    """A control plane with one real node, and Airlock's image on that node."""

    api_client: client.ApiClient
    kubeconfig: Path
    bin_dir: Path
    run_dir: Path
    image_repository: str
    image_digest: str

    def tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.tool("kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check:
            assert result.returncode == 0, result.stderr
        return result


def build_image() -> tuple[Path, str]:
    """(archive, manifest digest) of Airlock's image, built (or found current) by make image."""
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "hack" / "build-image.sh"), "airlock"],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail("hack/build-image.sh airlock failed (its output is above)")
    digest = (IMAGE_DIR / "airlock.digest").read_text(encoding="utf-8").strip()
    return IMAGE_DIR / "airlock.oci.tar", digest


@pytest.fixture(scope="session")
def node_cluster() -> Iterator[NodeCluster]:
    reason = localnode.unavailable_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the node tests, but this machine cannot: {reason}")
        pytest.skip(f"no real node on this machine: {reason}")
    archive, digest = build_image()
    cluster = localcluster.start(NODE_RUN_DIR, node=True)
    try:
        names = localnode.import_image(NODE_RUN_DIR, archive)
        api = config.new_client_from_config(config_file=str(cluster.kubeconfig))
        try:
            yield NodeCluster(
                api_client=api,
                kubeconfig=cluster.kubeconfig,
                bin_dir=cluster.bin_dir,
                run_dir=NODE_RUN_DIR,
                image_repository=names[0].rsplit(":", 1)[0],
                image_digest=digest,
            )
        finally:
            api.close()
    finally:
        localcluster.stop(NODE_RUN_DIR)
