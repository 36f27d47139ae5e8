"""Pull Secrets read through the API for the webhook's registry lookups: one read however many
admissions ask at once, kept for a while, a failed read not kept, unreadable Secrets skipped."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
from airlock.errors import KubeError
from airlock.webhook_process import KubePullSecrets


def dockerconfig(host: str, user: str, password: str) -> dict[str, str]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = json.dumps({"auths": {host: {"auth": auth}}}).encode()
    return {".dockerconfigjson": base64.b64encode(config).decode()}


class FakeKube:
    """The two reads KubePullSecrets makes, counted; each yields to the loop like a real call."""

    def __init__(self, secrets: dict[str, dict[str, str] | int], account_secrets: list[str]):
        self.secrets = secrets
        self.account_secrets = account_secrets
        self.reads: list[str] = []
        self.fail_next: KubeError | None = None
        self.core = SimpleNamespace(
            read_namespaced_service_account=self._account,
            read_namespaced_secret=self._secret,
        )

    def _account(self, name: str, namespace: str) -> Any:
        self.reads.append(f"sa/{namespace}/{name}")
        refs = [SimpleNamespace(name=n) for n in self.account_secrets]
        return SimpleNamespace(image_pull_secrets=refs)

    def _secret(self, name: str, namespace: str) -> Any:
        self.reads.append(f"secret/{namespace}/{name}")
        found = self.secrets[name]
        if isinstance(found, int):
            raise KubeError(found, "Forbidden" if found == 403 else "Not Found")
        return SimpleNamespace(type="kubernetes.io/dockerconfigjson", data=found)

    async def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        await asyncio.sleep(0.01)
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        return fn(*args)


def test_concurrent_admissions_share_one_read_and_unreadable_secrets_are_skipped() -> None:
    kube = FakeKube(
        {"regcred": dockerconfig("reg.example:5000", "bot", "s3cr3t-pw"), "gone": 404, "no": 403},
        account_secrets=["regcred", "no"],
    )
    pulls = KubePullSecrets(kube, ttl=60)  # type: ignore[arg-type]

    async def fifty() -> list[Any]:
        return await asyncio.gather(*(pulls.keychain("ml", ["gone"], "trainer") for _ in range(50)))

    chains = asyncio.run(fifty())
    assert kube.reads == ["sa/ml/trainer", "secret/ml/gone", "secret/ml/regcred", "secret/ml/no"]
    assert all(c is chains[0] for c in chains)
    assert "s3cr3t-pw" not in repr(chains[0])
    assert chains[0].lookup("reg.example:5000", "team/app") is not None


def test_a_failed_read_is_not_kept() -> None:
    kube = FakeKube({"regcred": dockerconfig("reg.example", "bot", "pw")}, ["regcred"])
    pulls = KubePullSecrets(kube, ttl=60)  # type: ignore[arg-type]
    kube.fail_next = KubeError(None, "ConnectionResetError")
    with pytest.raises(KubeError):
        asyncio.run(pulls.keychain("ml", [], "default"))
    chain = asyncio.run(pulls.keychain("ml", [], "default"))
    assert chain.lookup("reg.example", "team/app") is not None
    assert kube.reads.count("sa/ml/default") == 1  # the failed call never reached the read
