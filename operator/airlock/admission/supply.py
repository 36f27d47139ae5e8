"""The webhook's image supply chain step: registry answers gathered before the engine runs.

The engine is pure, so what only a registry can tell (the digest a tag names now, whether a
digest is signed by a trusted key) is asked here, in the server's I/O shell, and handed to the
handler as :class:`ImageFacts`, which enter the verdict through
:class:`~airlock.state.EvalContext` (``image_digests``, ``image_signatures``).

When there is anything to ask:

* ``/mutate`` with the policy's ``mutations.pinImageDigests``: every container image (init and
  ephemeral included) of a supported kind that has a tag but no digest is resolved;
* ``/validate`` with ``imageSignatures`` in the policy: every image under a listed prefix is
  checked at its digest (the pinned one, else its tag resolved).

Otherwise nothing is done and the hot path is unchanged. Credentials are the pull Secrets of
the pod specs' ``imagePullSecrets`` and of their ServiceAccount, read through a
:class:`PullSecrets` (the Kubernetes API in ``airlock webhook``).

Bounded: all lookups of one review share ``budget`` seconds (by default 3 s, inside the
webhook's 5 s timeout, each registry lookup is itself bounded by the registry's
``timeoutSeconds``). A lookup that fails or is not done by then leaves the image unpinned, with
a warning, or its signature unknown (``image-signature-unverified`` then says it could not be
checked); the lookup itself goes on and fills the cache for the next review.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from airlock.detectors import redact
from airlock.errors import AirlockError, RegistryError
from airlock.images import (
    ImageRef,
    InvalidImageReference,
    SignatureCheck,
    SignatureStatus,
    parse_image,
)
from airlock.records import replace
from airlock.registry import ImageResolver, Keychain
from airlock.state import EvalContext
from airlock.workloads import SUPPORTED_KINDS, discover

from .store import StateStore

__all__ = ["ImageFacts", "PullSecrets", "SupplyChain"]

log = logging.getLogger("airlock.admission")

DEFAULT_BUDGET: Final = 3.0


@dataclass(frozen=True, slots=True)
class ImageFacts:
    """What the registries said about one review's images."""

    digests: Mapping[str, str] = field(default_factory=dict)
    signatures: Mapping[str, SignatureCheck] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def apply(self, ctx: EvalContext) -> EvalContext:
        """``ctx`` with these answers in it."""
        if not self.digests and not self.signatures:
            return ctx
        return replace(
            ctx,
            image_digests={**ctx.image_digests, **self.digests},
            image_signatures={**ctx.image_signatures, **self.signatures},
        )


class PullSecrets(Protocol):
    """Reads the pull credentials a pod would use (``airlock webhook``: the Kubernetes API)."""

    async def keychain(
        self, namespace: str, secret_names: Sequence[str], service_account: str
    ) -> Keychain:
        """The dockerconfig Secrets named, then those of the ServiceAccount, as one keychain
        (missing ones skipped). Raises :class:`~airlock.errors.AirlockError` when the API
        cannot be asked."""
        ...


class SupplyChain:
    """Asks the registries what a review's images need, within one time budget."""

    def __init__(
        self,
        resolver: ImageResolver,
        pull_secrets: PullSecrets | None = None,
        *,
        budget: float = DEFAULT_BUDGET,
    ) -> None:
        self.resolver = resolver
        self.pull_secrets = pull_secrets
        self.budget = budget

    async def facts(self, body: object, store: StateStore, *, mutating: bool) -> ImageFacts | None:
        """The registry answers a review needs; None when it needs none (most reviews)."""
        spec = store.policy.spec
        pin = mutating and spec.mutations.pin_image_digests
        verify = not mutating and bool(spec.image_signatures)
        if not (pin or verify):
            return None
        request = body.get("request") if isinstance(body, Mapping) else None
        if not isinstance(request, Mapping):
            return None
        if request.get("operation") not in ("CREATE", "UPDATE"):
            return None
        kind = request.get("kind")
        obj = request.get("object")
        if not isinstance(kind, Mapping) or kind.get("kind") not in SUPPORTED_KINDS:
            return None
        if not isinstance(obj, Mapping):
            return None
        namespace = request.get("namespace") or None
        if namespace is not None and namespace in store.policy.excluded_namespaces:
            return None
        self.resolver.configure(spec)
        wl = discover(obj)
        # pinning a running Pod (its ephemeral containers' update): only those can change, and
        # only their pins are kept, so only their images are looked up
        only_ephemeral = pin and kind.get("kind") == "Pod" and request.get("operation") == "UPDATE"
        images: dict[str, ImageRef] = {}
        secret_names: list[str] = []
        service_account = "default"
        for pod in wl.pod_specs:
            for c in pod.containers:
                if only_ephemeral and c.group != "ephemeralContainers":
                    continue
                image = c.container.get("image")
                if isinstance(image, str) and image and image not in images:
                    try:
                        images[image] = parse_image(image)
                    except InvalidImageReference:
                        continue
            for ref in pod.spec.get("imagePullSecrets") or ():
                if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
                    secret_names.append(ref["name"])
            sa = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount")
            if isinstance(sa, str) and sa:
                service_account = sa
        to_pin = [i for i, r in images.items() if pin and not r.pinned]
        to_verify = {}
        if verify:
            for image, ref in images.items():
                keys = self.resolver.keys_for(ref)
                if keys is not None:
                    to_verify[image] = keys
        if not to_pin and not to_verify:
            return None
        keychain = await self._keychain(namespace, secret_names, service_account)
        return await self._ask(images, to_pin, to_verify, keychain)

    async def _keychain(
        self, namespace: str | None, secret_names: Sequence[str], service_account: str
    ) -> Keychain:
        if self.pull_secrets is None or namespace is None:
            return Keychain()
        try:
            return await asyncio.wait_for(
                self.pull_secrets.keychain(namespace, secret_names, service_account),
                self.budget / 3,
            )
        except (AirlockError, TimeoutError) as exc:
            # anonymous lookups may still work; the Secret's content is never in the message
            log.warning(
                "pull secrets of %s (service account %s) not read: %s",
                namespace,
                service_account,
                type(exc).__name__,
            )
            return Keychain()

    async def _ask(
        self,
        images: Mapping[str, ImageRef],
        to_pin: Sequence[str],
        to_verify: Mapping[str, Any],
        keychain: Keychain,
    ) -> ImageFacts:
        resolver = self.resolver
        digests: dict[str, str] = {}
        signatures: dict[str, SignatureCheck] = {}
        failures: dict[str, str] = {}

        async def pin_one(image: str) -> None:
            try:
                digests[image] = await resolver.digest(images[image], keychain)
            except RegistryError as exc:
                failures[image] = exc.detail

        async def verify_one(image: str) -> None:
            ref = images[image]
            try:
                digest = ref.digest if ref.pinned else None
                if digest is None:
                    digest = await resolver.digest(ref, keychain)
                signatures[image] = await resolver.signature(
                    ref, digest, to_verify[image], keychain
                )
            except RegistryError as exc:
                signatures[image] = SignatureCheck(
                    SignatureStatus.UNAVAILABLE, ref.digest if ref.pinned else None, exc.detail
                )

        tasks = [asyncio.ensure_future(pin_one(i)) for i in to_pin]
        tasks += [asyncio.ensure_future(verify_one(i)) for i in to_verify]
        _done, pending = await asyncio.wait(tasks, timeout=self.budget)
        for task in pending:
            task.cancel()  # the lookups themselves go on, shielded, and fill the cache
        late = f"no answer within the webhook's {self.budget:g} s budget"
        for image in to_pin:
            if image not in digests and image not in failures:
                failures[image] = late
        for image in to_verify:
            if image not in signatures:
                ref = images[image]
                signatures[image] = SignatureCheck(
                    SignatureStatus.UNAVAILABLE, ref.digest if ref.pinned else None, late
                )
        warnings = tuple(
            redact(f"airlock could not resolve {image} to a digest ({why}); admitted unpinned")
            for image, why in failures.items()
        )
        return ImageFacts(digests, signatures, warnings)
