"""The registry client and resolver against a real registry: tags, indexes, authentication,
caching, mirrors and cosign signatures (tests/support/registry.py runs the registries)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from airlock import metrics
from airlock.errors import RegistryError
from airlock.images import SignatureStatus, parse_image
from airlock.model import load_policy
from airlock.registry import ImageResolver, Keychain, RegistryClient
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.registry import Registries, public_key_pem

T = TypeVar("T")


def spec(regs: Registries, **extra: Any) -> Any:
    pem = regs.ca.pem.decode()
    return load_policy(
        {
            "registries": [
                {"host": regs.public.host, "caBundle": pem},
                {"host": regs.private.host, "caBundle": pem},
            ],
            **extra,
        }
    )


def run(make: Callable[[ImageResolver], Awaitable[T]], resolver: ImageResolver) -> T:
    async def go() -> T:
        try:
            return await make(resolver)
        finally:
            await resolver.client.close()

    return asyncio.run(go())


def resolver_for(regs: Registries, **kw: Any) -> ImageResolver:
    resolver = ImageResolver(RegistryClient(), **kw)
    resolver.configure(spec(regs, **kw.pop("policy", {})) if "policy" in kw else spec(regs))
    return resolver


def pull_secret(host: str, user: str, password: str) -> tuple[str, dict[str, str]]:
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    config = {"auths": {f"https://{host}": {"auth": auth}}}
    return (
        "kubernetes.io/dockerconfigjson",
        {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    )


def network_lookups(host: str, lookup: str = "digest") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "airlock_registry_lookup_duration_seconds_count", {"registry": host, "lookup": lookup}
    )
    return value or 0.0


# --- tags to digests -----------------------------------------------------------------------------


def test_tag_of_an_index_resolves_to_the_index_digest_through_the_bearer_flow(
    registries: Registries,
) -> None:
    image = registries.pusher("public").image("team/multi", "1.0", platforms=("amd64", "arm64"))
    before = len(registries.tokens.issued)
    ref = parse_image(f"{registries.public.host}/team/multi:1.0")
    digest = run(lambda r: r.digest(ref), resolver_for(registries))
    assert digest == image.digest  # the index, not one platform's manifest
    assert digest not in image.manifests
    issued = registries.tokens.issued[before:]
    assert issued == [{"scopes": ["repository:team/multi:pull"], "auth": False}]


def test_tag_of_a_single_manifest_resolves_to_that_manifest(registries: Registries) -> None:
    image = registries.pusher("public").image("team/single", "2.1")
    ref = parse_image(f"{registries.public.host}/team/single:2.1")

    async def both(r: ImageResolver) -> tuple[str, str]:
        manifest = await r.client.manifest(ref.registry, ref.repository, "2.1")
        return await r.digest(ref), manifest.digest

    digest, fetched = run(both, resolver_for(registries))
    assert digest == fetched == image.digest == image.manifests[0]


def test_a_token_serves_its_repository_until_it_expires_and_no_other(
    registries: Registries,
) -> None:
    pusher = registries.pusher("public")
    pusher.image("team/reuse", "1.0")
    pusher.image("team/reuse", "2.0")
    pusher.image("team/other", "1.0")
    host = registries.public.host
    before = len(registries.tokens.issued)

    async def three(r: ImageResolver) -> None:
        await r.client.manifest(host, "team/reuse", "1.0")
        await r.client.manifest(host, "team/reuse", "2.0")  # the same repository: its token
        await r.client.manifest(host, "team/other", "1.0")  # another scope: a token of its own

    run(three, resolver_for(registries))
    issued = registries.tokens.issued[before:]
    assert [i["scopes"] for i in issued] == [
        ["repository:team/reuse:pull"],
        ["repository:team/other:pull"],
    ]


def test_unknown_tag_is_not_found(registries: Registries) -> None:
    ref = parse_image(f"{registries.public.host}/team/single:does-not-exist")
    with pytest.raises(RegistryError) as err:
        run(lambda r: r.digest(ref), resolver_for(registries))
    assert err.value.reason == "not-found"
    assert "team/single" in str(err.value)


def test_private_registry_needs_the_pull_secret_and_never_shares_answers(
    registries: Registries,
) -> None:
    image = registries.pusher("private").image("ml/secret-model", "3.0")
    host = registries.private.host
    ref = parse_image(f"{host}/ml/secret-model:3.0")
    good = Keychain.from_secrets([pull_secret(host, registries.username, registries.password)])
    bad = Keychain.from_secrets([pull_secret(host, registries.username, "wrong")])

    async def lookups(r: ImageResolver) -> list[str | RegistryError]:
        out: list[str | RegistryError] = []
        for keychain in (Keychain(), good, Keychain(), bad):
            try:
                out.append(await r.digest(ref, keychain))
            except RegistryError as exc:
                out.append(exc)
        return out

    anonymous, with_secret, anonymous_again, wrong = run(lookups, resolver_for(registries))
    assert with_secret == image.digest
    for failed in (anonymous, anonymous_again, wrong):  # a cached answer serves only its owner
        assert isinstance(failed, RegistryError)
        assert failed.reason == "unauthorized"
        assert registries.password not in str(failed)
    assert registries.password not in repr(good)


def test_concurrent_lookups_are_coalesced_and_then_cached(registries: Registries) -> None:
    registries.pusher("public").image("team/popular", "1.0", platforms=("amd64", "arm64"))
    host = registries.public.host
    ref = parse_image(f"{host}/team/popular:1.0")
    before = network_lookups(host)
    timings: dict[str, float] = {}

    async def burst(r: ImageResolver) -> set[str]:
        start = time.perf_counter()
        answers = await asyncio.gather(*(r.digest(ref) for _ in range(20)))
        timings["cold"] = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(100):
            await r.digest(ref)
        timings["cached"] = (time.perf_counter() - start) / 100
        return set(answers)

    answers = run(burst, resolver_for(registries))
    assert len(answers) == 1
    assert network_lookups(host) - before == 1  # twenty callers, one registry round trip
    assert timings["cached"] < 0.001
    print(
        f"\nlookup latency: cold {timings['cold'] * 1000:.1f} ms (bearer token + HEAD), "
        f"cached {timings['cached'] * 1e6:.1f} µs"
    )


def test_a_moved_tag_is_pinned_to_its_new_digest_after_the_ttl(registries: Registries) -> None:
    pusher = registries.pusher("public")
    first = pusher.image("team/moving", "stable")
    ref = parse_image(f"{registries.public.host}/team/moving:stable")

    async def twice(r: ImageResolver) -> tuple[str, str, str]:
        a = await r.digest(ref)
        second = pusher.image("team/moving", "stable")
        b = await r.digest(ref)  # still cached
        await asyncio.sleep(0.3)
        c = await r.digest(ref)
        assert c == second.digest
        return a, b, c

    a, b, c = run(twice, resolver_for(registries, digest_ttl=0.2))
    assert a == b == first.digest
    assert c != a


def test_mirror_is_asked_before_the_registry(registries: Registries) -> None:
    image = registries.pusher("public").image("team/mirrored", "1.0")
    resolver = ImageResolver(RegistryClient())
    resolver.configure(
        load_policy(
            {
                "registries": [
                    {
                        # the upstream does not exist: only the mirror can answer
                        "host": "registry.invalid",
                        "mirrors": [registries.public.host],
                        "caBundle": registries.ca.pem.decode(),
                    }
                ]
            }
        )
    )
    ref = parse_image("registry.invalid/team/mirrored:1.0")
    assert run(lambda r: r.digest(ref), resolver) == image.digest


# --- signatures --------------------------------------------------------------------------------


def sign_policy(regs: Registries, key: ec.EllipticCurvePrivateKey) -> Any:
    return spec(
        regs,
        imageSignatures=[{"prefix": f"{regs.public.host}/signed/", "keys": [public_key_pem(key)]}],
    )


def check(regs: Registries, image: str, key: ec.EllipticCurvePrivateKey) -> Any:
    resolver = ImageResolver(RegistryClient())
    resolver.configure(sign_policy(regs, key))
    ref = parse_image(image)
    keys = resolver.keys_for(ref)
    assert keys is not None

    async def go(r: ImageResolver) -> Any:
        digest = await r.digest(ref)
        return await r.signature(ref, digest, keys)

    return run(go, resolver)


def test_signature_by_the_trusted_key_verifies(
    registries: Registries, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    pusher = registries.pusher("public")
    image = pusher.image("signed/app", "1.0", platforms=("amd64", "arm64"))
    pusher.sign("signed/app", image.digest, signing_key)
    result = check(registries, f"{registries.public.host}/signed/app:1.0", signing_key)
    assert result.status is SignatureStatus.VERIFIED
    assert result.digest == image.digest


def test_missing_signature(registries: Registries, signing_key: ec.EllipticCurvePrivateKey) -> None:
    registries.pusher("public").image("signed/unsigned", "1.0")
    result = check(registries, f"{registries.public.host}/signed/unsigned:1.0", signing_key)
    assert result.status is SignatureStatus.NO_SIGNATURE


def test_signature_by_another_key(
    registries: Registries,
    signing_key: ec.EllipticCurvePrivateKey,
    other_key: ec.EllipticCurvePrivateKey,
) -> None:
    pusher = registries.pusher("public")
    image = pusher.image("signed/stranger", "1.0")
    pusher.sign("signed/stranger", image.digest, other_key)
    result = check(registries, f"{registries.public.host}/signed/stranger:1.0", signing_key)
    assert result.status is SignatureStatus.WRONG_KEY
    assert "none by a key the policy lists" in result.detail


def test_signature_for_another_digest(
    registries: Registries, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    pusher = registries.pusher("public")
    genuine = pusher.image("signed/genuine", "1.0")
    forged = pusher.image("signed/forged", "1.0")
    # a valid signature of the genuine image, copied to the forged image's signature tag
    pusher.sign("signed/forged", forged.digest, signing_key, payload_digest=genuine.digest)
    result = check(registries, f"{registries.public.host}/signed/forged:1.0", signing_key)
    assert result.status is SignatureStatus.DIGEST_MISMATCH
    assert genuine.digest in result.detail


def test_one_good_signature_among_others_is_enough(
    registries: Registries,
    signing_key: ec.EllipticCurvePrivateKey,
    other_key: ec.EllipticCurvePrivateKey,
) -> None:
    pusher = registries.pusher("public")
    image = pusher.image("signed/cosigned", "1.0")
    earlier = pusher.sign("signed/cosigned", image.digest, other_key)
    pusher.sign("signed/cosigned", image.digest, signing_key, append=[earlier])
    result = check(registries, f"{registries.public.host}/signed/cosigned:1.0", signing_key)
    assert result.status is SignatureStatus.VERIFIED
