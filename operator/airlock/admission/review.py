"""The AdmissionReview v1 wire format, typed, with the one parser and the answer builders.

The API server is trusted to send well-formed reviews, but the webhook port is reachable by any
pod that can reach the Service, so everything is checked before use and a malformed body gets a
short error, never a traceback. The checks are the few that decide whether an answer is possible
at all (``apiVersion``, ``kind``, ``request.uid``, ``request.kind.kind``, ``operation``); the
object itself is handed to the engine, which tolerates any shape.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal, NotRequired, TypedDict, cast

import orjson

from airlock.errors import AdmissionError

__all__ = [
    "API_VERSION",
    "OPERATIONS",
    "AdmissionRequest",
    "AdmissionResponse",
    "AdmissionReview",
    "GroupVersionKind",
    "GroupVersionResource",
    "Status",
    "UserInfo",
    "allow",
    "deny",
    "encode",
    "parse_request",
    "review",
]

API_VERSION: Final = "admission.k8s.io/v1"
OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})

Operation = Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class UserInfo(TypedDict, total=False):
    username: str
    uid: str
    groups: list[str]
    extra: dict[str, list[str]]


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: GroupVersionResource
    operation: Operation
    userInfo: UserInfo
    subResource: NotRequired[str]
    requestKind: NotRequired[GroupVersionKind]
    requestResource: NotRequired[GroupVersionResource]
    requestSubResource: NotRequired[str]
    name: NotRequired[str]
    namespace: NotRequired[str]
    object: NotRequired[dict[str, Any] | None]
    oldObject: NotRequired[dict[str, Any] | None]
    dryRun: NotRequired[bool]
    options: NotRequired[dict[str, Any] | None]


class Status(TypedDict):
    """The part of ``metav1.Status`` the API server shows a user when a webhook denies."""

    code: int
    message: str
    reason: NotRequired[str]


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    status: NotRequired[Status]
    patch: NotRequired[str]  # base64 of a JSON Patch (RFC 6902) document
    patchType: NotRequired[Literal["JSONPatch"]]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: NotRequired[AdmissionRequest]
    response: NotRequired[AdmissionResponse]


def _bad(message: str, uid: str | None = None) -> AdmissionError:
    return AdmissionError(message, uid=uid)


def parse_request(body: object) -> AdmissionRequest:
    """Check a decoded AdmissionReview and return its request.

    Raises :class:`AdmissionError`; its ``uid`` is set once the request's uid is known, so the
    caller can still answer with a proper AdmissionReview for problems past the envelope.
    """
    if not isinstance(body, Mapping):
        raise _bad("body must be a JSON object (an AdmissionReview)")
    if body.get("apiVersion") != API_VERSION:
        raise _bad(f"apiVersion must be {API_VERSION!r}")
    if body.get("kind") != "AdmissionReview":
        raise _bad("kind must be 'AdmissionReview'")
    req = body.get("request")
    if not isinstance(req, Mapping):
        raise _bad("request must be an object")
    uid = req.get("uid")
    if not isinstance(uid, str) or not uid or len(uid) > 128:
        raise _bad("request.uid must be a non-empty string")
    gvk = req.get("kind")
    if (
        not isinstance(gvk, Mapping)
        or not isinstance(gvk.get("kind"), str)
        or not gvk["kind"]
        or not isinstance(gvk.get("group", ""), str)
    ):
        raise _bad("request.kind must be a group/version/kind object", uid)
    if req.get("operation") not in OPERATIONS:
        raise _bad("request.operation must be CREATE, UPDATE, DELETE or CONNECT", uid)
    for key in ("object", "oldObject"):
        value = req.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise _bad(f"request.{key} must be an object or null", uid)
    for key in ("name", "namespace"):
        value = req.get(key)
        if value is not None and not isinstance(value, str):
            raise _bad(f"request.{key} must be a string", uid)
    user = req.get("userInfo")
    if user is not None and not isinstance(user, Mapping):
        raise _bad("request.userInfo must be an object", uid)
    return cast(AdmissionRequest, req)


def review(response: AdmissionResponse) -> AdmissionReview:
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}


def allow(
    uid: str,
    *,
    warnings: Sequence[str] = (),
    patch: Sequence[Mapping[str, Any]] = (),
) -> AdmissionReview:
    """An allowing answer, with warnings and a JSON patch when there are any."""
    resp: AdmissionResponse = {"uid": uid, "allowed": True}
    if patch:
        resp["patchType"] = "JSONPatch"
        resp["patch"] = base64.b64encode(orjson.dumps(list(patch))).decode("ascii")
    if warnings:
        resp["warnings"] = list(warnings)
    return review(resp)


def deny(
    uid: str,
    message: str,
    *,
    code: int = 403,
    reason: str = "Forbidden",
    warnings: Sequence[str] = (),
) -> AdmissionReview:
    """A denying answer. The API server shows ``message`` after "admission webhook … denied"."""
    resp: AdmissionResponse = {
        "uid": uid,
        "allowed": False,
        "status": {"code": code, "reason": reason, "message": message},
    }
    if warnings:
        resp["warnings"] = list(warnings)
    return review(resp)


def encode(answer: AdmissionReview | Mapping[str, Any]) -> bytes:
    """Compact JSON; non-ASCII kept as UTF-8 (messages may hold names in any script)."""
    return orjson.dumps(answer)
