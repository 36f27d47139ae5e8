"""Tag → digest and signature checks with caches, coalescing and metrics: what the webhook asks.

:class:`ImageResolver` sits on a :class:`~.client.RegistryClient` and keeps two caches:

* digests by (registry, repository, tag, credential), for ``digest_ttl`` (5 minutes: a tag that
  moves is pinned to its new digest within that time; the pin itself never moves);
* signature checks by (registry, repository, digest, keys, credential), for ``signature_ttl``
  (an hour: a digest's content never changes, only a signature pushed later can turn an
  answer into ``verified``, hence not forever).

Failures are kept ``failure_ttl`` seconds (10 s), so a registry that is down costs one timeout
per 10 s, not one per admission. A credential is part of every key: one tenant's answer never
serves another tenant who could not have pulled the image.

Metrics (``airlock_registry_*``) are labelled with the registry host when the policy names it
(``registries``, ``imageSignatures``, ``allowedRegistries``), else ``other``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any, Final, TypeVar

from airlock import metrics
from airlock.errors import RegistryError
from airlock.images import ImageRef, SignatureCheck
from airlock.rules.images import registry_allowed

from .cache import LookupCache
from .client import RegistryClient, RegistryConfig
from .cosign import check_signature, load_public_keys
from .credentials import Keychain, identity_of

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from airlock.model import PolicySpec

__all__ = ["ImageResolver", "SignatureKeys"]

OTHER: Final = "other"
_NO_CREDENTIALS: Final = Keychain()
T = TypeVar("T")

SignatureKeys = tuple[str, tuple["ec.EllipticCurvePublicKey", ...]]
"""(prefix, keys) of one ``imageSignatures`` entry."""


class ImageResolver:
    """Resolves tags and checks signatures for the webhook; one per process."""

    def __init__(
        self,
        client: RegistryClient,
        *,
        digest_ttl: float = 300.0,
        signature_ttl: float = 3600.0,
        failure_ttl: float = 10.0,
        max_entries: int = 4096,
    ) -> None:
        self.client = client
        self.digests: LookupCache[tuple[str, ...], str] = LookupCache(
            ttl=digest_ttl, failure_ttl=failure_ttl, max_entries=max_entries
        )
        self.signatures: LookupCache[tuple[str, ...], SignatureCheck] = LookupCache(
            ttl=signature_ttl, failure_ttl=failure_ttl, max_entries=max_entries
        )
        self._spec: PolicySpec | None = None
        self._known: frozenset[str] = frozenset()
        self._keys: tuple[SignatureKeys, ...] = ()

    # -- the policy's registry settings ---------------------------------------------------------

    def configure(self, spec: PolicySpec) -> None:
        """Adopt the policy's ``registries`` and ``imageSignatures`` (cheap when unchanged)."""
        if spec is self._spec:
            return
        configs = {
            r.host: RegistryConfig(
                host=r.host,
                mirrors=tuple(r.mirrors),
                insecure=r.insecure,
                ca_bundle=r.ca_bundle,
                timeout=r.timeout_seconds,
            )
            for r in spec.registries
        }
        self.client.configure(configs)
        known = {h for r in spec.registries for h in (r.host, *r.mirrors)}
        prefixes = [s.prefix for s in spec.image_signatures] + [
            p for env in spec.environments for p in env.allowed_registries
        ]
        known.update(p.split("/", 1)[0] for p in prefixes)
        self._known = frozenset(known)
        self._keys = tuple(
            sorted(
                ((s.prefix, load_public_keys(s.keys)) for s in spec.image_signatures),
                key=lambda pk: -len(pk[0]),
            )
        )
        self._spec = spec

    def keys_for(self, ref: ImageRef) -> SignatureKeys | None:
        """The longest ``imageSignatures`` prefix covering ``ref``, with its keys; None when
        no key covers the image (its signature is not checked)."""
        for prefix, keys in self._keys:
            if registry_allowed(ref.name, (prefix,)):
                return prefix, keys
        return None

    def label(self, registry: str) -> str:
        return registry if registry in self._known else OTHER

    # -- lookups --------------------------------------------------------------------------------

    async def digest(self, ref: ImageRef, keychain: Keychain = _NO_CREDENTIALS) -> str:
        """The digest ``ref``'s tag names now (``latest`` without a tag); raises
        :class:`RegistryError` when the registry cannot tell."""
        tag = ref.tag or "latest"
        cred = keychain.lookup(ref.registry, ref.repository)
        key = (ref.registry, ref.repository, tag, identity_of(cred))

        async def lookup() -> str:
            return await self.client.resolve(ref.registry, ref.repository, tag, cred)

        return await self._cached(self.digests, key, ref.registry, "digest", lookup)

    async def signature(
        self,
        ref: ImageRef,
        digest: str,
        keys: SignatureKeys,
        keychain: Keychain = _NO_CREDENTIALS,
    ) -> SignatureCheck:
        """The cosign check of ``ref``'s repository at ``digest`` with ``keys``."""
        cred = keychain.lookup(ref.registry, ref.repository)
        key = (ref.registry, ref.repository, digest, keys[0], identity_of(cred))

        async def lookup() -> SignatureCheck:
            return await check_signature(
                self.client, ref.registry, ref.repository, digest, keys[1], credential=cred
            )

        return await self._cached(self.signatures, key, ref.registry, "signature", lookup)

    async def _cached(
        self,
        cache: LookupCache[tuple[str, ...], T],
        key: tuple[str, ...],
        registry: str,
        what: str,
        lookup: Callable[[], Awaitable[T]],
    ) -> T:
        label = self.label(registry)
        metrics.REGISTRY_LOOKUPS.labels(label, what).inc()

        async def timed() -> T:
            start = perf_counter()
            try:
                return await lookup()
            except RegistryError as exc:
                metrics.REGISTRY_FAILURES.labels(label, what, exc.reason).inc()
                raise
            finally:
                metrics.REGISTRY_LOOKUP_DURATION.labels(label, what).observe(perf_counter() - start)

        found, _, _ = cache.peek(key)
        if found:
            metrics.REGISTRY_CACHE_HITS.labels(label, what).inc()
        value, _hit = await cache.get(key, timed)
        return value

    def stats(self) -> Mapping[str, Any]:
        """Sizes of the caches (for logs and tests)."""
        return {"digests": len(self.digests), "signatures": len(self.signatures)}
