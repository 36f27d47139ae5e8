"""Registry answers (ImageFacts) in the handlers: what gets pinned where, what gets asked.

The registry itself is exercised in tests/registry; here the answers are given, so the
handler's use of them is checked without any I/O.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from airlock.admission import AdmissionSettings, StateStore, handle_mutate
from airlock.admission.supply import ImageFacts, SupplyChain
from airlock.registry import ImageResolver, RegistryClient

from tests.admission.conftest import POLICY, admission_review, loaded_store
from tests.support.builders import DIGEST, clean_container, clean_pod

TAGGED = "registry.corp.example/prod/x:1.0"


def pinning_store() -> StateStore:
    store = loaded_store()
    policy = {
        **POLICY,
        "metadata": {**POLICY["metadata"], "generation": 4},
        "spec": {**POLICY["spec"], "mutations": {"pinImageDigests": True}},
    }
    assert store.set_policy(policy) is None
    assert store.policy.spec.mutations.pin_image_digests
    return store


def ops(answer: Any) -> list[dict[str, Any]]:
    return json.loads(base64.b64decode(answer["response"]["patch"]))


def test_pod_update_pins_only_ephemeral_containers() -> None:
    store = pinning_store()
    old = clean_pod("ml-dev")
    old["spec"]["containers"][0]["image"] = TAGGED  # admitted before pinning was on
    new = json.loads(json.dumps(old))
    new["spec"]["ephemeralContainers"] = [clean_container("debug", TAGGED)]
    review = admission_review(new, operation="UPDATE", old=old)
    review["request"]["subResource"] = "ephemeralcontainers"
    answer = handle_mutate(review, store, AdmissionSettings(), images=ImageFacts({TAGGED: DIGEST}))
    assert ops(answer) == [
        {
            "op": "replace",
            "path": "/spec/ephemeralContainers/0/image",
            "value": f"{TAGGED}@{DIGEST}",
        }
    ]


def test_warnings_of_failed_lookups_come_first_and_are_the_only_ones_without_a_patch() -> None:
    store = pinning_store()
    p = clean_pod("ml-dev")
    p["spec"]["containers"][0]["image"] = TAGGED
    note = f"airlock could not resolve {TAGGED} to a digest (timeout); admitted unpinned"
    answer = handle_mutate(
        admission_review(p), store, AdmissionSettings(), images=ImageFacts(warnings=(note,))
    )
    assert answer["response"]["warnings"][0] == note


def test_nothing_is_asked_when_no_switch_needs_a_registry() -> None:
    store = loaded_store()  # pinning off, no imageSignatures
    supply = SupplyChain(ImageResolver(RegistryClient()))
    p = clean_pod("ml-dev")
    p["spec"]["containers"][0]["image"] = TAGGED
    review = admission_review(p)
    for mutating in (True, False):
        assert asyncio.run(supply.facts(review, store, mutating=mutating)) is None
    pinned = pinning_store()
    p["spec"]["containers"][0]["image"] = f"{TAGGED}@{DIGEST}"  # nothing left to resolve
    assert asyncio.run(supply.facts(admission_review(p), pinned, mutating=True)) is None
    excluded = clean_pod("kube-system")
    excluded["spec"]["containers"][0]["image"] = TAGGED
    assert asyncio.run(supply.facts(admission_review(excluded), pinned, mutating=True)) is None
