"""Container registries, for the webhook's I/O shell: tags resolved to digests, cosign signatures
checked, credentials from ``imagePullSecrets``.

Outside the pure engine: the admission layer asks :class:`ImageResolver` before it calls the
engine and hands the answers in through :class:`~airlock.state.EvalContext` (``image_digests``
and ``image_signatures``), so the verdict stays a pure function of object and context.

* :mod:`.client` — the OCI distribution API over aiohttp (manifests, blobs, bearer and basic
  authentication, mirrors, plain HTTP and private CAs from the policy, one deadline per lookup);
* :mod:`.cosign` — cosign's ``sha256-<hex>.sig`` signatures, ECDSA P-256, payload digest check;
* :mod:`.credentials` — dockerconfigjson Secrets as a :class:`Keychain` that never prints;
* :mod:`.cache` — TTL- and size-bounded caching with concurrent lookups coalesced;
* :mod:`.resolver` — the above together, with ``airlock_registry_*`` metrics.
"""

from __future__ import annotations

from .cache import LookupCache
from .client import MANIFEST_MEDIA_TYPES, Manifest, RegistryClient, RegistryConfig
from .cosign import check_signature, payload_digest, signature_tag, verify_blob
from .credentials import Credential, Keychain
from .resolver import ImageResolver

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "Credential",
    "ImageResolver",
    "Keychain",
    "LookupCache",
    "Manifest",
    "RegistryClient",
    "RegistryConfig",
    "check_signature",
    "payload_digest",
    "signature_tag",
    "verify_blob",
]
