"""Session fixtures shared by several test directories.

``registries``: Debian's ``docker-registry`` on loopback, two processes (token auth and
htpasswd basic auth) with TLS from ``registry_ca``, started once per session on first use
(tests/support/registry.py). Where the registry cannot be installed (not root, no apt) the
tests using it are skipped with the reason; under ``CI`` that is a failure: CI must talk to a
real registry.

The run's regular-expression and record-method cache (``airlock.compilecache``) lives in a
directory of the session's own, set before anything imports Airlock: commands the tests start
share it (the first fills it, later ones read it), and no test reads or writes the user's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

if "AIRLOCK_CACHE_DIR" not in os.environ:  # a caller's choice (even "": none) is kept
    os.environ["AIRLOCK_CACHE_DIR"] = _CACHE = tempfile.mkdtemp(prefix="airlock-test-cache-")
    atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

from tests.support.pki import CA, make_ca
from tests.support.registry import Registries, RegistryUnavailableError, start_registries


@pytest.fixture(scope="session")
def registry_ca() -> CA:
    return make_ca()


@pytest.fixture(scope="session")
def registries(tmp_path_factory: pytest.TempPathFactory, registry_ca: CA) -> Iterator[Registries]:
    try:
        with start_registries(tmp_path_factory.mktemp("registries"), registry_ca) as regs:
            yield regs
    except RegistryUnavailableError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the registry tests, but this machine cannot: {exc}")
        pytest.skip(f"no registry on this machine: {exc}")
