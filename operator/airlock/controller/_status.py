"""Small pure helpers shared by the status computations: conditions, timestamps, merge patches."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["condition", "generation_of", "previous_status", "rfc3339", "status_patch", "truncate"]


def rfc3339(moment: datetime) -> str:
    """Second-resolution UTC time as the API server writes it (``2026-01-31T12:00:00Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(text: str, limit: int) -> str:
    """Fit ``text`` into a CRD ``maxLength`` (the API server rejects the whole patch otherwise)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def generation_of(obj: Mapping[str, Any]) -> int | None:
    meta = obj.get("metadata")
    generation = meta.get("generation") if isinstance(meta, Mapping) else None
    return generation if isinstance(generation, int) and not isinstance(generation, bool) else None


def previous_status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def condition(
    kind: str,
    ok: bool,
    reason: str,
    message: str,
    *,
    now: datetime,
    generation: int | None,
    previous: Mapping[str, Any],
    message_limit: int = 32768,
) -> dict[str, Any]:
    """One ``metav1.Condition``; ``lastTransitionTime`` moves only when ``status`` flips.

    Keeping the previous transition time when nothing flipped is what makes the status a fixed
    point: recomputing it from the object it was written to gives the same dict, so writing it
    produces no further change and no further watch event.
    """
    status = "True" if ok else "False"
    since = rfc3339(now)
    conditions = previous.get("conditions")
    if isinstance(conditions, Sequence):
        for old in conditions:
            if (
                isinstance(old, Mapping)
                and old.get("type") == kind
                and old.get("status") == status
                and isinstance(old.get("lastTransitionTime"), str)
            ):
                since = old["lastTransitionTime"]
                break
    out: dict[str, Any] = {
        "type": kind,
        "status": status,
        "reason": reason,
        "message": truncate(message, message_limit),
        "lastTransitionTime": since,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def status_patch(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch of ``status`` turning ``current`` into ``desired``; empty if equal.

    Only keys of ``desired`` are compared, so fields other writers own (``lastAudit``) are left
    alone. A ``None`` in ``desired`` means "absent": it deletes the key if present.
    """
    return {key: value for key, value in desired.items() if current.get(key) != value}
