"""The controller's one seam to the API server: how a call runs and how it fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import urllib3
from airlock.controller.kube import REQUEST_TIMEOUT, Kube
from airlock.errors import AirlockError, KubeError
from kubernetes.client.exceptions import ApiException


class Recorder:
    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls: list[dict[str, Any]] = []

    def get_thing(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append({"args": args, **kwargs})
        if self.failures:
            raise self.failures.pop(0)
        return {"ok": True}


def test_a_call_gets_the_seams_timeout_unless_it_names_one() -> None:
    api = Recorder()
    kube = Kube(custom=api)
    assert asyncio.run(kube.call(kube.custom.get_thing, "a", name="b")) == {"ok": True}
    asyncio.run(kube.call(kube.custom.get_thing, _request_timeout=5))
    assert api.calls == [
        {"args": ("a",), "name": "b", "_request_timeout": REQUEST_TIMEOUT},
        {"args": (), "_request_timeout": 5},
    ]


@pytest.mark.parametrize(
    ("failure", "status", "message"),
    [
        (ApiException(status=409, reason="Conflict"), 409, "HTTP 409 Conflict"),
        (urllib3.exceptions.ProtocolError("reset"), None, "ProtocolError"),
        (ConnectionRefusedError(), None, "ConnectionRefusedError"),
    ],
)
def test_every_failure_is_one_error_type_without_the_body(
    failure: BaseException, status: int | None, message: str
) -> None:
    kube = Kube(custom=Recorder(failure))
    with pytest.raises(KubeError) as caught:
        asyncio.run(kube.call(kube.custom.get_thing))
    assert caught.value.status == status
    assert str(caught.value) == message
    assert isinstance(caught.value, AirlockError)


def test_no_retries_by_default_and_only_transient_ones_when_asked() -> None:
    api = Recorder(ApiException(status=503, reason="Unavailable"))
    with pytest.raises(KubeError):
        asyncio.run(Kube(custom=api).call(api.get_thing))
    assert len(api.calls) == 1

    api = Recorder(ApiException(status=503, reason="Unavailable"), OSError())
    kube = Kube(custom=api, retries=2, retry_delay=0)
    assert asyncio.run(kube.call(api.get_thing)) == {"ok": True}
    assert len(api.calls) == 3

    api = Recorder(ApiException(status=404, reason="Not Found"))
    with pytest.raises(KubeError):
        asyncio.run(Kube(custom=api, retries=2, retry_delay=0).call(api.get_thing))
    assert len(api.calls) == 1  # an answer, not a hiccup: never repeated


def test_the_api_objects_need_a_client_unless_given() -> None:
    with pytest.raises(AirlockError):
        _ = Kube().core
