"""The package's public surface is what its modules say it is: every module that is not private
declares ``__all__``, and every name there exists. The error tree is one tree."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import airlock
import pytest
from airlock import errors


def _modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(airlock.__path__, "airlock."):
        leaf = info.name.rsplit(".", 1)[1]
        if leaf == "__main__":
            continue  # running it is its only purpose
        names.append(info.name)
    return names


MODULES = _modules()
# Rule families and detector internals: one function per rule, collected by the registries
# (airlock.rules.RULES, airlock.detectors), not imported by name.
WITHOUT_ALL = {
    name
    for name in MODULES
    if name.startswith("airlock.rules.") or name.startswith("airlock.detectors._")
}


def test_the_walk_finds_the_layers() -> None:
    for expected in (
        "airlock.cluster",
        "airlock.engine",
        "airlock.admission.server",
        "airlock.controller.runner",
        "airlock.webhook_process",
        "airlock.cli",
    ):
        assert expected in MODULES


@pytest.mark.parametrize("name", sorted(set(MODULES) - WITHOUT_ALL))
def test_every_public_module_declares_what_it_exports(name: str) -> None:
    module: ModuleType = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert isinstance(exported, list | tuple), f"{name} has no __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert missing == [], f"{name}.__all__ names what it does not define"
    assert len(set(exported)) == len(exported)


def test_every_error_airlock_raises_on_purpose_is_in_one_tree() -> None:
    found = {}
    for name in MODULES:
        module = importlib.import_module(name)
        for attr, value in vars(module).items():
            if attr.startswith("_"):
                continue  # private control flow, never escapes its module
            if inspect.isclass(value) and issubclass(value, Exception) and value.__module__ == name:
                found[f"{name}.{attr}"] = value
    outside = [where for where, cls in found.items() if not issubclass(cls, errors.AirlockError)]
    assert outside == []
    assert "airlock.errors.StatusWriteError" in found
    assert set(errors.__all__) >= {"AirlockError", "PolicyError", "InputError", "AdmissionError"}
