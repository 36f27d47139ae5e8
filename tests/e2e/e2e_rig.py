"""Types and helpers shared by the e2e conftest and tests (a plain module, so tests can
import it; conftest modules are not meant to be imported)."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kubernetes import client

REPO_ROOT = Path(__file__).resolve().parents[2]


def _load_localcluster() -> ModuleType:
    # hack/ is not a package; load the one file so the fixture and `make cluster-up` share code.
    name = "airlock_hack_localcluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "hack" / "localcluster.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


localcluster = _load_localcluster()


@dataclass(frozen=True)
class E2ECluster:
    """A reachable cluster and what the tests need to drive it."""

    api_client: client.ApiClient
    kubeconfig: Path
    server: str
    bin_dir: Path
    started_here: bool

    def tool(self, name: str) -> str:
        """Path of a built binary (kubectl, helm): never the machine's older ones."""
        return str(self.bin_dir / name)


@dataclass(frozen=True)
class WebhookCA:
    """A CA the apiserver is told to trust for a webhook (through caBundle)."""

    cert: Path
    key: Path

    def issue_serving_cert(
        self, out_dir: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    ) -> tuple[Path, Path]:
        """(cert, key) of a serving certificate for hosts, signed by this CA."""
        cert, key = localcluster.issue_serving_cert(self.cert, self.key, out_dir, hosts)
        return Path(cert), Path(key)
