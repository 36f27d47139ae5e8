"""Fixtures for the tests against a real registry; the registries themselves (one pair per
session, shared with tests/e2e) are tests/conftest.py's ``registries``."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

REGISTRY_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/registry needs the registry, so `-m 'not registry'` skips it."""
    for item in items:
        if item.path.is_relative_to(REGISTRY_DIR):
            item.add_marker(pytest.mark.registry)


@pytest.fixture(scope="session")
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def other_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())
