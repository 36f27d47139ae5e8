"""Airlock's exception tree.

Everything Airlock raises on purpose derives from :class:`AirlockError`, so a caller can catch one
class. Each subclass carries the location a user needs to fix the problem:

    AirlockError
    ├── PolicyError        a BaselinePolicy or PolicyException does not validate (field path)
    ├── InputError         a manifest cannot be read or parsed (file and document index)
    ├── AdmissionError     an AdmissionReview request is malformed (request uid, field)
    ├── KubeError          a call to the API server failed (HTTP status, or no answer at all)
    ├── RegistryError      a container registry could not answer (registry, bounded reason)
    └── StatusWriteError   the controller could not write to the cluster (retried later)

Pydantic's ``ValidationError`` never reaches a user directly: it is converted into a
``PolicyError`` whose message names every failing field path.
"""

from __future__ import annotations

__all__ = [
    "AdmissionError",
    "AirlockError",
    "InputError",
    "KubeError",
    "PolicyError",
    "RegistryError",
    "StatusWriteError",
]


class AirlockError(Exception):
    """Base class of every error Airlock raises on purpose."""


class PolicyError(AirlockError):
    """A policy or exception object is invalid.

    ``errors`` holds ``(field_path, message)`` pairs, e.g. ``("spec.environments[1].mode", "...")``.
    """

    def __init__(self, message: str, errors: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[tuple[str, str]] = list(errors or [])


class InputError(AirlockError):
    """A manifest could not be read or parsed.

    ``source`` is the file name (or ``-`` for standard input) and ``document`` the 1-based index
    of the YAML document within it, when known.
    """

    def __init__(
        self, message: str, source: str | None = None, document: int | None = None
    ) -> None:
        where = ""
        if source is not None:
            where = source if document is None else f"{source} (document {document})"
        super().__init__(f"{where}: {message}" if where else message)
        self.source = source
        self.document = document
        self.detail = message


class AdmissionError(AirlockError):
    """An AdmissionReview request cannot be evaluated (malformed body, missing field)."""

    def __init__(self, message: str, uid: str | None = None) -> None:
        super().__init__(message)
        self.uid = uid


class KubeError(AirlockError):
    """A call to the API server failed (:class:`airlock.controller.kube.Kube` raises it).

    ``status`` is the HTTP status of the answer, None when none came (connection refused or
    reset, timeout); ``reason`` is the HTTP reason or the transport error's class name, never
    the response body (which may echo a Secret). ``body`` is kept for callers that must tell a
    missing object from a missing resource type (a 404 naming the resource or not).
    """

    def __init__(self, status: int | None, reason: str, body: str = "") -> None:
        super().__init__(f"HTTP {status} {reason}" if status is not None else reason)
        self.status = status
        self.reason = reason
        self.body = body


class RegistryError(AirlockError):
    """A container registry could not answer a lookup (:mod:`airlock.registry` raises it).

    ``registry`` is the host asked; ``reason`` one of a few words fit for a metric label
    (``timeout``, ``unreachable``, ``tls``, ``unauthorized``, ``not-found``, ``protocol``);
    the message says what happened in a sentence. Neither ever holds a credential.
    """

    REASONS = ("timeout", "unreachable", "tls", "unauthorized", "not-found", "protocol")

    def __init__(self, registry: str, reason: str, message: str) -> None:
        super().__init__(f"registry {registry}: {message}")
        self.registry = registry
        self.reason = reason if reason in self.REASONS else "protocol"
        self.detail = message


class StatusWriteError(AirlockError):
    """A write to the cluster (a status, the peering state) failed for a reason other than the
    object being gone; the controller retries it later."""
