"""Cosign signatures, as ``cosign sign --key`` stores them and ``cosign verify --key`` checks them.

For an image digest ``sha256:<hex>``, the signatures live in the same repository under the tag
``sha256-<hex>.sig``: an OCI image manifest whose layers are simple-signing payloads
(``application/vnd.dev.cosign.simplesigning.v1+json``), each annotated with
``dev.cosignproject.cosign/signature``, the base64 ASN.1 ECDSA signature over the payload's
bytes (SHA-256). The payload names what was signed::

    {"critical": {"identity": {"docker-reference": "registry/repo"},
                  "image": {"docker-manifest-digest": "sha256:<hex>"},
                  "type": "cosign container image signature"},
     "optional": null}

A signature counts when it verifies with one of the policy's keys for the image's prefix *and*
its payload names the digest being admitted: a valid signature copied from another image's
``.sig`` tag verifies but names another digest, which is reported as such. The checks here are
pure; :func:`check_signature` does the fetching through a :class:`~.client.RegistryClient`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Final

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from airlock.errors import RegistryError
from airlock.images import SignatureCheck, SignatureStatus

from .client import RegistryClient
from .credentials import Credential

__all__ = [
    "SIGNATURE_ANNOTATION",
    "SIMPLE_SIGNING_MEDIA_TYPE",
    "check_signature",
    "load_public_keys",
    "payload_digest",
    "signature_tag",
    "verify_blob",
]

SIMPLE_SIGNING_MEDIA_TYPE: Final = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION: Final = "dev.cosignproject.cosign/signature"
_MAX_LAYERS: Final = 32  # signatures read per image; more is an attack, not a pipeline
_MAX_PAYLOAD: Final = 64 * 1024


def signature_tag(digest: str) -> str:
    """``sha256:<hex>`` → ``sha256-<hex>.sig``, cosign's tag for the digest's signatures."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}-{encoded}.sig"


def load_public_keys(pems: Sequence[str]) -> tuple[ec.EllipticCurvePublicKey, ...]:
    """The policy's PEM keys (already validated by the model as ECDSA P-256)."""
    out = []
    for pem in pems:
        key = load_pem_public_key(pem.strip().encode("ascii"))
        if isinstance(key, ec.EllipticCurvePublicKey):
            out.append(key)
    return tuple(out)


def verify_blob(
    payload: bytes, signature_b64: str, keys: Sequence[ec.EllipticCurvePublicKey]
) -> bool:
    """True when ``signature_b64`` is an ECDSA-SHA256 signature of ``payload`` by a key."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, binascii.Error):
        return False
    for key in keys:
        try:
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            continue
        return True
    return False


def payload_digest(payload: bytes) -> str | None:
    """The digest a simple-signing payload names, None when it is no such payload."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    critical = data.get("critical")
    image = critical.get("image") if isinstance(critical, dict) else None
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    return digest if isinstance(digest, str) else None


async def check_signature(
    client: RegistryClient,
    registry: str,
    repository: str,
    digest: str,
    keys: Sequence[ec.EllipticCurvePublicKey],
    *,
    credential: Credential | None = None,
) -> SignatureCheck:
    """Fetch and check the cosign signatures of ``registry/repository@digest``.

    A registry that cannot be asked raises :class:`RegistryError` (the caller decides what an
    unknown answer means); every other outcome is a :class:`SignatureCheck`.
    """
    try:
        manifest = await client.manifest(registry, repository, signature_tag(digest), credential)
    except RegistryError as exc:
        if exc.reason == "not-found":
            return SignatureCheck(SignatureStatus.NO_SIGNATURE, digest)
        raise
    try:
        layers = orjson.loads(manifest.body).get("layers")
    except (orjson.JSONDecodeError, AttributeError):
        layers = None
    if not isinstance(layers, list):
        return SignatureCheck(
            SignatureStatus.NO_SIGNATURE, digest, "the signature manifest has no layers"
        )
    signed = [
        layer
        for layer in layers[:_MAX_LAYERS]
        if isinstance(layer, dict)
        and layer.get("mediaType") == SIMPLE_SIGNING_MEDIA_TYPE
        and isinstance(layer.get("digest"), str)
        and isinstance(layer.get("annotations"), dict)
        and isinstance(layer["annotations"].get(SIGNATURE_ANNOTATION), str)
    ]
    if not signed:
        return SignatureCheck(SignatureStatus.NO_SIGNATURE, digest)
    other: str | None = None
    for layer in signed:
        payload = await client.blob(
            registry, repository, layer["digest"], credential, max_bytes=_MAX_PAYLOAD
        )
        if not verify_blob(payload, layer["annotations"][SIGNATURE_ANNOTATION], keys):
            continue
        named = payload_digest(payload)
        if named == digest:
            return SignatureCheck(SignatureStatus.VERIFIED, digest)
        other = named or "no digest"
    if other is not None:
        return SignatureCheck(
            SignatureStatus.DIGEST_MISMATCH, digest, f"the signed payload names {other}"
        )
    n = len(signed)
    return SignatureCheck(
        SignatureStatus.WRONG_KEY,
        digest,
        f"{n} signature{'' if n == 1 else 's'}, none by a key the policy lists",
    )
