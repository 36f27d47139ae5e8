"""The AdmissionReview v1 wire format, typed, with the one parser and the answer builders.

The API server is trusted to send well-formed reviews, but the webhook port is reachable by any
pod that can reach the Service, so everything is checked before use and a malformed body gets a
short error, never a traceback. Every field of the request envelope is checked for its type
(and the names for their Kubernetes length bounds), so nothing past :func:`parse_request` meets
a list where it expects a string; the object itself is handed to the engine, which tolerates any
shape. A problem found before ``request.uid`` is known can only be answered with HTTP 400; once
the uid is known, the answer is an AdmissionReview denying with code 400.
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


# Length bounds of the strings that end up in messages, logs and metrics: Kubernetes' own (a
# name is a DNS subdomain, a namespace a DNS label), generous for the others.
_MAX_UID: Final = 128
_MAX_NAME: Final = 253
_MAX_NAMESPACE: Final = 63
_MAX_TYPE_FIELD: Final = 253  # group, version, kind, resource, subresource


def _check_type_ref(
    req: Mapping[str, Any], key: str, fields: tuple[str, str, str], uid: str, *, required: bool
) -> None:
    """``request.<key>`` is a group/version/kind (or /resource) object of short strings."""
    ref = req.get(key)
    if ref is None and not required:
        return
    last = fields[2]
    if not isinstance(ref, Mapping):
        raise _bad(f"request.{key} must be an object with {'/'.join(fields)}", uid)
    for name in fields:
        value = ref.get(name, "" if name != last else None)
        if (
            not isinstance(value, str)
            or len(value) > _MAX_TYPE_FIELD
            or (name == last and not value)
        ):
            what = "a non-empty string" if name == last else "a string"
            raise _bad(
                f"request.{key}.{name} must be {what} of at most {_MAX_TYPE_FIELD} characters", uid
            )


def _check_string(req: Mapping[str, Any], key: str, limit: int, uid: str) -> None:
    value = req.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > limit):
        raise _bad(f"request.{key} must be a string of at most {limit} characters", uid)


def _check_user(user: object, uid: str) -> None:
    if user is None:
        return
    if not isinstance(user, Mapping):
        raise _bad("request.userInfo must be an object", uid)
    for key in ("username", "uid"):
        value = user.get(key)
        if value is not None and not isinstance(value, str):
            raise _bad(f"request.userInfo.{key} must be a string", uid)
    groups = user.get("groups")
    if groups is not None and (
        not isinstance(groups, list) or not all(isinstance(g, str) for g in groups)
    ):
        raise _bad("request.userInfo.groups must be a list of strings", uid)
    extra = user.get("extra")
    if extra is not None and (
        not isinstance(extra, Mapping)
        or not all(
            isinstance(v, list) and all(isinstance(x, str) for x in v) for v in extra.values()
        )
    ):
        raise _bad("request.userInfo.extra must map names to lists of strings", uid)


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
    if not isinstance(uid, str) or not uid or len(uid) > _MAX_UID:
        raise _bad(f"request.uid must be a non-empty string of at most {_MAX_UID} characters")
    _check_type_ref(req, "kind", ("group", "version", "kind"), uid, required=True)
    operation = req.get("operation")
    if not isinstance(operation, str) or operation not in OPERATIONS:
        raise _bad("request.operation must be CREATE, UPDATE, DELETE or CONNECT", uid)
    _check_type_ref(req, "resource", ("group", "version", "resource"), uid, required=False)
    _check_type_ref(req, "requestKind", ("group", "version", "kind"), uid, required=False)
    _check_type_ref(req, "requestResource", ("group", "version", "resource"), uid, required=False)
    _check_string(req, "subResource", _MAX_TYPE_FIELD, uid)
    _check_string(req, "requestSubResource", _MAX_TYPE_FIELD, uid)
    _check_string(req, "name", _MAX_NAME, uid)
    _check_string(req, "namespace", _MAX_NAMESPACE, uid)
    for key in ("object", "oldObject", "options"):
        value = req.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise _bad(f"request.{key} must be an object or null", uid)
    dry_run = req.get("dryRun")
    if dry_run is not None and not isinstance(dry_run, bool):
        raise _bad("request.dryRun must be true, false or null", uid)
    _check_user(req.get("userInfo"), uid)
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
