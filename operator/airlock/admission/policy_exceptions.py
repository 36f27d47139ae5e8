"""PolicyException admission: who created it, who approved it, and whether it may exist at all.

The four-eyes rule
------------------

A ``PolicyException`` waives rules only after someone other than its creator approved it. Both
names are recorded by Airlock at admission, from the identity the API server authenticated
(``request.userInfo.username``), never from what a user writes:

* **CREATE** — the mutating webhook sets ``airlock.dev/created-by`` to the requesting user,
  overwriting any value in the manifest, and removes any ``airlock.dev/approved-by``.
* **UPDATE** — the mutating webhook restores both annotations from the stored object
  (``oldObject``), so they cannot be edited by hand. To approve, a user adds
  ``airlock.dev/approve: "true"``: if that user is not the creator, the webhook records them in
  ``airlock.dev/approved-by`` and removes the request annotation; if the user *is* the creator, the
  request annotation stays and the validating webhook denies the update with "a PolicyException
  cannot be approved by its creator (four-eyes rule)".
* **Editing an approved exception** — a change to ``spec`` by anyone but a new approver removes
  ``airlock.dev/approved-by``: what was approved is not what would be in force, so it needs a new
  approval.

The validating webhook then checks that the annotations are what the mutating webhook would
have written (it denies them otherwise, e.g. when the mutating call was skipped), that the spec is
valid, and that ``expires`` lies in the future and at most the active policy's
``exceptions.maxDays`` after the exception's creation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airlock.errors import PolicyError
from airlock.model import (
    APPROVE_ANNOTATION,
    APPROVED_BY_ANNOTATION,
    CREATED_BY_ANNOTATION,
    ExceptionSettings,
    load_exception,
)
from airlock.workloads import json_pointer

from .review import AdmissionRequest

__all__ = [
    "FOUR_EYES_MESSAGE",
    "Problem",
    "check_exception",
    "exception_patch",
]

FOUR_EYES_MESSAGE = "a PolicyException cannot be approved by its creator (four-eyes rule)"

_MANAGED = (CREATED_BY_ANNOTATION, APPROVED_BY_ANNOTATION)


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason to refuse a PolicyException.

    ``forbidden`` separates who-may-do-what problems (HTTP 403) from invalid fields (HTTP 422).
    """

    path: str
    message: str
    forbidden: bool = False


def _annotations(obj: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        return {}
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    ann = meta.get("annotations")
    return ann if isinstance(ann, Mapping) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _username(request: AdmissionRequest) -> str | None:
    user = request.get("userInfo") or {}
    return _text(user.get("username"))


def _desired_annotations(request: AdmissionRequest) -> dict[str, Any]:
    """The annotations the object must carry once Airlock has recorded creator and approver."""
    obj = request.get("object")
    current = _annotations(obj)
    desired = dict(current)
    user = _username(request)
    if request["operation"] == "CREATE":
        desired.pop(APPROVED_BY_ANNOTATION, None)
        if user is not None:
            desired[CREATED_BY_ANNOTATION] = user
        else:
            desired.pop(CREATED_BY_ANNOTATION, None)
        return desired
    old = request.get("oldObject")
    old_ann = _annotations(old)
    creator = _text(old_ann.get(CREATED_BY_ANNOTATION))
    approver = _text(old_ann.get(APPROVED_BY_ANNOTATION))
    old_spec = old.get("spec") if isinstance(old, Mapping) else None
    new_spec = obj.get("spec") if isinstance(obj, Mapping) else None
    if (
        current.get(APPROVE_ANNOTATION) == "true"
        and user is not None
        and creator is not None
        and user != creator
    ):
        approver = user
        desired.pop(APPROVE_ANNOTATION, None)
    elif old_spec != new_spec:
        approver = None  # the approved spec is not the one that would be in force
    for key, value in ((CREATED_BY_ANNOTATION, creator), (APPROVED_BY_ANNOTATION, approver)):
        if value is None:
            desired.pop(key, None)
        else:
            desired[key] = value
    return desired


def exception_patch(request: AdmissionRequest) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON Patch operations and warnings recording creator and approver (mutating webhook)."""
    if request["operation"] not in ("CREATE", "UPDATE"):
        return [], []
    obj = request.get("object")
    if not isinstance(obj, Mapping) or not isinstance(obj.get("metadata"), Mapping):
        return [], []
    meta = obj["metadata"]
    current = _annotations(obj)
    desired = _desired_annotations(request)
    if desired == dict(current):
        return [], []
    changes: list[str] = []
    for key in (*_MANAGED, APPROVE_ANNOTATION):
        before, after = current.get(key), desired.get(key)
        if before == after:
            continue
        if after is None:
            changes.append(f"airlock removed annotation {key}")
        else:
            changes.append(f"airlock set annotation {key}={after}")
    if not isinstance(meta.get("annotations"), Mapping):
        return [{"op": "add", "path": "/metadata/annotations", "value": desired}], changes
    ops: list[dict[str, Any]] = []
    for key in sorted(set(current) | set(desired)):
        pointer = json_pointer(("metadata", "annotations", key))
        if key not in desired:
            ops.append({"op": "remove", "path": pointer})
        elif key not in current:
            ops.append({"op": "add", "path": pointer, "value": desired[key]})
        elif current[key] != desired[key]:
            ops.append({"op": "replace", "path": pointer, "value": desired[key]})
    return ops, changes


def _timestamp(obj: Mapping[str, Any] | None) -> datetime | None:
    if not isinstance(obj, Mapping):
        return None
    meta = obj.get("metadata")
    value = meta.get("creationTimestamp") if isinstance(meta, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def check_exception(
    request: AdmissionRequest, settings: ExceptionSettings, now: datetime
) -> list[Problem]:
    """Every reason to refuse a PolicyException CREATE or UPDATE (validating webhook)."""
    obj = request.get("object")
    if not isinstance(obj, Mapping):
        return [Problem("object", "is missing")]
    problems: list[Problem] = []
    try:
        spec = load_exception(obj)
    except PolicyError as exc:
        problems.extend(Problem(path, msg) for path, msg in exc.errors)
        spec = None
    creating = request["operation"] == "CREATE"
    old = request.get("oldObject")
    if spec is not None:
        old_expires = None
        if not creating and isinstance(old, Mapping) and isinstance(old.get("spec"), Mapping):
            old_expires = old["spec"].get("expires")
        new_expires = obj.get("spec", {}).get("expires") if isinstance(obj, Mapping) else None
        if spec.expires <= now and (creating or old_expires != new_expires):
            problems.append(Problem("spec.expires", f"{spec.expires.isoformat()} is in the past"))
        start = (None if creating else _timestamp(old) or _timestamp(obj)) or now
        window = spec.expires - start
        if window > timedelta(days=settings.max_days):
            problems.append(
                Problem(
                    "spec.expires",
                    f"must be at most {settings.max_days} days after the exception's creation "
                    f"({start.replace(microsecond=0).isoformat()}); it is "
                    f"{window.total_seconds() / 86400:.1f} days "
                    "(the policy's exceptions.maxDays)",
                )
            )
    problems.extend(_check_annotations(request))
    return problems


def _check_annotations(request: AdmissionRequest) -> list[Problem]:
    ann = _annotations(request.get("object"))
    user = _username(request)
    creator = _text(ann.get(CREATED_BY_ANNOTATION))
    problems: list[Problem] = []
    where = "metadata.annotations"
    if ann.get(APPROVE_ANNOTATION) == "true":
        if request["operation"] == "CREATE" or (user is not None and user == creator):
            problems.append(Problem(f'{where}["{APPROVE_ANNOTATION}"]', FOUR_EYES_MESSAGE, True))
        elif creator is None:
            problems.append(
                Problem(
                    f'{where}["{APPROVE_ANNOTATION}"]',
                    "cannot be approved: its creator was not recorded (it was created while "
                    "Airlock's webhook was not running); delete and re-create it",
                    True,
                )
            )
        else:
            problems.append(
                Problem(
                    f'{where}["{APPROVE_ANNOTATION}"]',
                    "the approval was not recorded because Airlock's mutating webhook did not "
                    "process this request; retry",
                    True,
                )
            )
        return problems
    expected = _desired_annotations(request)
    old_creator = _text(_annotations(request.get("oldObject")).get(CREATED_BY_ANNOTATION))
    for key in _MANAGED:
        value = _text(ann.get(key))
        if value == _text(expected.get(key)):
            continue
        # What the mutating webhook wrote for an approval: the requester, who is not the creator.
        approval = (
            key == APPROVED_BY_ANNOTATION
            and request["operation"] == "UPDATE"
            and value is not None
            and value == user
            and old_creator is not None
            and user != old_creator
        )
        if not approval:
            problems.append(
                Problem(
                    f'{where}["{key}"]',
                    "is managed by Airlock and cannot be set or changed by hand "
                    f"(to approve, annotate {APPROVE_ANNOTATION}=true)",
                    True,
                )
            )
    return problems
