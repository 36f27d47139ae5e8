"""The pydantic-free catalog: the built-in policy is an empty spec; scan starts without pydantic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from airlock.model import PolicySpec
from airlock.state import CompiledPolicy, default_policy

REPO = Path(__file__).resolve().parents[2]


def test_builtin_policy_is_the_empty_spec_compiled() -> None:
    built, compiled = CompiledPolicy.builtin(), CompiledPolicy.from_spec(PolicySpec())
    for field in (
        "environments",
        "default_environment",
        "excluded_namespaces",
        "environment_label",
        "owner_label",
        "storage_owner",
    ):
        assert getattr(built, field) == getattr(compiled, field), field
    assert built.source is None
    assert built.spec == PolicySpec()
    assert default_policy().spec.exceptions.max_days == 90


def test_scan_without_policy_imports_neither_pydantic_nor_pyyaml(tmp_path: Path) -> None:
    """Nor dataclasses (which imports inspect, ast, dis and tokenize): the core's value classes
    are records, and a scan's start-up is most of a small scan."""
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a}\n"
        "spec: {containers: [{name: c, image: 'nginx:1.25'}]}\n"
    )
    probe = (
        "import sys\n"
        "from airlock.cli import main\n"
        f"code = main(['scan', '-q', {str(manifest)!r}])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('pydantic', 'pydantic_core', 'kopf', 'aiohttp', 'kubernetes', 'yaml', "
        "'dataclasses', 'inspect')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout.splitlines()[-1]
    assert out == "1 []"
