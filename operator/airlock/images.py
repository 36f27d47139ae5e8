"""Container image references, parsed the way the container runtime parses them.

Image rules (``image-tag-latest``, ``image-digest-missing``, ``image-registry-not-allowed``) and
the digest-pinning mutation all need the same answers: which registry, which repository, which
tag, and whether the digest is a real pin. Substring heuristics (``"@" in image``) get these
wrong, so this module follows the distribution reference grammar and Docker's normalisation:

* the first path component is a registry only when there is a ``/`` after it and it contains a
  ``.`` or a ``:``, is ``localhost``, or has an uppercase letter (Docker's rule, so
  ``Registry/app`` is a registry named ``Registry``); otherwise the registry is ``docker.io``;
* ``index.docker.io`` and ``registry-1.docker.io`` are the same registry as ``docker.io``;
* one-component Docker Hub names live under ``library/`` (``nginx`` is ``docker.io/library/nginx``);
* the tag is after the last ``:`` of the last path component, the digest after ``@``.

A digest is kept as written even when it is malformed (uppercase hex, truncated, an unknown
algorithm): such a reference still runs somewhere, and the rule reporting it can say *why* it is
not a pin. :attr:`ImageRef.pinned` is true only for a digest of a registered algorithm in its
canonical form.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from airlock.compilecache import regex
from airlock.errors import AirlockError
from airlock.records import record

__all__ = [
    "DEFAULT_REGISTRY",
    "DOCKER_HUB_ALIASES",
    "ImageRef",
    "InvalidImageReference",
    "SignatureCheck",
    "SignatureStatus",
    "is_pinned_digest",
    "parse_image",
]

DEFAULT_REGISTRY = "docker.io"
DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_OFFICIAL_PREFIX = "library/"
_NAME_MAX = 255  # distribution's NameTotalLengthMax
_SHOWN_MAX = 120  # longest reference quoted back in an error message

# host: DNS name, IPv4 address, or bracketed IPv6 address; optional numeric port.
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_REGISTRY_RE = regex(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = regex(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_TAG_RE = regex(r"[\w][\w.-]{0,127}")
# Lenient on purpose: any "algorithm:encoded" shape is kept so rules can explain why it is no pin.
_DIGEST_SHAPE_RE = regex(r"[A-Za-z0-9][A-Za-z0-9+._-]*:[A-Za-z0-9=_+.-]+")
# Registered algorithms in canonical form (OCI image spec): lowercase hex of the exact length.
_PINNED_DIGEST_RE = regex(r"sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}")


class InvalidImageReference(AirlockError):  # noqa: N818 (name fixed by the interface)
    """An image reference that no container runtime would accept.

    ``reason`` says what is wrong without the reference itself, for messages that must stay short.
    """

    def __init__(self, reference: str, reason: str) -> None:
        shown = reference if len(reference) <= _SHOWN_MAX else reference[:_SHOWN_MAX] + "…"
        super().__init__(f"invalid image reference {shown!r}: {reason}")
        self.reference = reference
        self.reason = reason


@record(frozen=True)
class ImageRef:
    """A parsed image reference; ``registry`` and ``repository`` are normalised."""

    raw: str
    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def name(self) -> str:
        """``registry/repository``: what registry allow-lists are matched against."""
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """The digest is a well-formed sha256/sha512 digest, so the content cannot change."""
        return self.digest is not None and is_pinned_digest(self.digest)

    @property
    def latest(self) -> bool:
        """No tag or the ``latest`` tag. Whether a digest excuses it is the rule's decision."""
        return self.tag is None or self.tag == "latest"

    @property
    def canonical(self) -> str:
        """The fully qualified form, e.g. ``docker.io/library/nginx:1.27@sha256:…``."""
        out = self.name
        if self.tag is not None:
            out = f"{out}:{self.tag}"
        if self.digest is not None:
            out = f"{out}@{self.digest}"
        return out


def is_pinned_digest(digest: str) -> bool:
    """True for ``sha256:`` + 64 or ``sha512:`` + 128 lowercase hex digits, nothing else."""
    return _PINNED_DIGEST_RE.fullmatch(digest) is not None


def parse_image(ref: str) -> ImageRef:
    """Parse ``ref`` or raise :class:`InvalidImageReference`.

    Manifests are untrusted input, so a non-string (``image: 5``) is an invalid reference too,
    not a ``TypeError``.
    """
    if not isinstance(ref, str):
        raise InvalidImageReference(repr(ref), "not a string")
    return _parse(ref)


@lru_cache(maxsize=4096)
def _parse(ref: str) -> ImageRef:
    # Cached: the same few images recur in every admission request and audit pass, and an
    # ImageRef is immutable.
    if not ref:
        raise InvalidImageReference(ref, "empty")
    if ref != ref.strip() or any(c.isspace() for c in ref):
        raise InvalidImageReference(ref, "contains whitespace")

    name_part, at, digest = ref.partition("@")
    if at:
        if not digest:
            raise InvalidImageReference(ref, "empty digest after '@'")
        if _DIGEST_SHAPE_RE.fullmatch(digest) is None:
            raise InvalidImageReference(ref, "digest is not of the form algorithm:hex")

    slash = name_part.rfind("/")
    colon = name_part.rfind(":")
    tag: str | None = None
    if colon > slash:
        tag = name_part[colon + 1 :]
        name_part = name_part[:colon]
        if _TAG_RE.fullmatch(tag) is None:
            raise InvalidImageReference(ref, "invalid tag")
    if not name_part:
        raise InvalidImageReference(ref, "missing repository name")
    if len(name_part) > _NAME_MAX:
        raise InvalidImageReference(ref, f"name longer than {_NAME_MAX} characters")

    first, sep, rest = name_part.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        registry, repository = first, rest
        if _REGISTRY_RE.fullmatch(registry) is None:
            raise InvalidImageReference(ref, "invalid registry host")
    else:
        registry, repository = DEFAULT_REGISTRY, name_part
    if registry in DOCKER_HUB_ALIASES:
        registry = DEFAULT_REGISTRY
    if _REPOSITORY_RE.fullmatch(repository) is None:
        if repository.lower() != repository:
            raise InvalidImageReference(ref, "repository name must be lowercase")
        raise InvalidImageReference(ref, "invalid repository name")
    if registry == DEFAULT_REGISTRY and "/" not in repository:
        repository = _OFFICIAL_PREFIX + repository
    return ImageRef(
        raw=ref, registry=registry, repository=repository, tag=tag, digest=digest if at else None
    )


class SignatureStatus(StrEnum):
    """What checking an image's signature found (:mod:`airlock.registry` checks; the
    ``image-signature-unverified`` rule reads the answer from the evaluation context)."""

    VERIFIED = "verified"
    """A signature by one of the keys for the image's prefix names the image's digest."""
    NO_SIGNATURE = "no-signature"
    """The registry holds no signature for the digest."""
    WRONG_KEY = "wrong-key"
    """Signatures exist, but none verifies with a key the policy lists for the image."""
    DIGEST_MISMATCH = "digest-mismatch"
    """A signature verifies, but its payload names another digest (a signature copied over)."""
    UNAVAILABLE = "unavailable"
    """The registry could not be asked (down, slow, refused): nothing is known."""


@record(frozen=True)
class SignatureCheck:
    """The outcome of checking one image reference's signature: ``digest`` is the digest that
    was checked (None when even the tag could not be resolved) and ``detail`` one sentence for
    messages (never a credential)."""

    status: SignatureStatus
    digest: str | None = None
    detail: str = ""

    @property
    def verified(self) -> bool:
        return self.status is SignatureStatus.VERIFIED
