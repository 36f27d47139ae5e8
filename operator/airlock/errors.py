"""Airlock's exception tree.

Everything Airlock raises on purpose derives from :class:`AirlockError`, so a caller can catch one
class. Each subclass carries the location a user needs to fix the problem:

    AirlockError
    ├── PolicyError        a BaselinePolicy or PolicyException does not validate (field path)
    ├── InputError         a manifest cannot be read or parsed (file and document index)
    ├── AdmissionError     an AdmissionReview request is malformed (request uid, field)
    └── StatusWriteError   the controller could not write to the cluster (retried later)

Pydantic's ``ValidationError`` never reaches a user directly: it is converted into a
``PolicyError`` whose message names every failing field path.
"""

from __future__ import annotations

__all__ = ["AdmissionError", "AirlockError", "InputError", "PolicyError", "StatusWriteError"]


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


class StatusWriteError(AirlockError):
    """A write to the cluster (a status, the peering state) failed for a reason other than the
    object being gone; the controller retries it later."""
