"""Image provenance: mutable tags, missing digests, registries outside the environment's list,
signatures that do not verify."""

from __future__ import annotations

from collections.abc import Iterator

from airlock.findings import RuleInfo, Severity
from airlock.images import SignatureStatus
from airlock.rules.base import Hit, Rule, Scope, userinfo_end
from airlock.workloads import Workload

IMAGE_TAG_LATEST = RuleInfo(
    id="image-tag-latest",
    family="images",
    severity=Severity.MEDIUM,
    title="Image without a version tag",
    reason="the image has no tag or uses :latest, so what runs changes without a deploy",
    fix="pin a version tag and a digest, e.g. repo/image:1.4.2@sha256:<digest>",
    rationale=(
        "A moving tag makes runs irreproducible and lets a compromised or broken push reach every "
        "node on its next pull; rollbacks and audits cannot tell which build ran."
    ),
    references=("CIS 5.5.1", "NIST SP 800-190 4.1.1", "NSA/CISA Kubernetes Hardening: images"),
)

IMAGE_DIGEST_MISSING = RuleInfo(
    id="image-digest-missing",
    family="images",
    severity=Severity.LOW,
    title="Image not pinned by digest",
    reason="the image is not pinned by a well-formed sha256/sha512 digest",
    fix="append @sha256:<digest> (the pin-digests mutation can resolve it at admission)",
    rationale=(
        "Tags are mutable; only a content digest guarantees that the image scanned and approved is "
        "the image that runs."
    ),
    references=("NIST SP 800-190 4.1.1", "SLSA: pinned dependencies"),
    mutable=True,
)

IMAGE_REGISTRY_NOT_ALLOWED = RuleInfo(
    id="image-registry-not-allowed",
    family="images",
    severity=Severity.HIGH,
    title="Image from a registry this environment does not allow",
    reason="the image comes from a registry or repository outside the environment's allow-list",
    fix="use an image from one of the environment's allowed registries (see the policy)",
    rationale=(
        "Each environment pulls only from registries whose images went through its promotion and "
        "scanning; a dev registry image in prod skips every gate."
    ),
    references=("NIST SP 800-190 4.2.1", "CIS 5.5.1"),
)


IMAGE_SIGNATURE_UNVERIFIED = RuleInfo(
    id="image-signature-unverified",
    family="images",
    severity=Severity.HIGH,
    title="Image signature not verified",
    reason="the image has no signature by a key the policy trusts for its registry prefix",
    fix=(
        "sign the image digest with a trusted key (cosign sign --key …) or use a signed image; "
        "the policy's imageSignatures list the keys per prefix"
    ),
    rationale=(
        "A digest says which bytes run, not who built them: only a signature by a key the team "
        "trusts ties the image to its build pipeline, so a pushed-over tag or a look-alike "
        "repository cannot reach the cluster."
    ),
    references=("NIST SP 800-190 4.1.5", "SLSA: provenance", "NSA/CISA Kubernetes Hardening"),
)

_SIGNATURE_FAILURES = {
    SignatureStatus.NO_SIGNATURE: "has no signature",
    SignatureStatus.WRONG_KEY: "has no signature by a trusted key",
    SignatureStatus.DIGEST_MISMATCH: "has a signature made for another digest",
    SignatureStatus.UNAVAILABLE: "could not be checked for a signature",
}


def _shown(image: str) -> str:
    """An invalid reference as a message quotes it: without what stands before the registry as
    userinfo (``user:password@registry/x`` is shown as ``…@registry/x``)."""
    at = userinfo_end(image)
    return image if at < 0 else f"…{image[at:]}"


def check_latest(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for c, image, ref in scope.images(wl):
        if ref is not None and ref.latest and not ref.pinned:
            what = "has no tag" if ref.tag is None else "uses the :latest tag"
            yield Hit(f"{c.path}.image", f"image {image} {what}")


def check_digest(wl: Workload, scope: Scope) -> Iterator[Hit]:
    for c, image, ref in scope.images(wl):
        if ref is None:
            yield Hit(f"{c.path}.image", f"image {_shown(image)!r} is not a valid image reference")
        elif not ref.pinned:
            detail = "" if ref.digest is None else f" (digest {ref.digest[:15]}… is malformed)"
            yield Hit(f"{c.path}.image", f"image {ref.name} is not pinned by digest{detail}")


def registry_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    """Prefix match on the normalised name, by whole path segments.

    ``registry.corp.example/prod/`` allows ``registry.corp.example/prod/x`` but not
    ``registry.corp.example/production/x``; an entry without a trailing slash names one repository
    or a path prefix ending at a segment boundary.
    """
    for entry in allowed:
        if entry.endswith("/"):
            if name.startswith(entry):
                return True
        elif name == entry or name.startswith(entry + "/"):
            return True
    return False


def check_registry(wl: Workload, scope: Scope) -> Iterator[Hit]:
    allowed = scope.env.allowed_registries
    if not allowed:
        return
    for c, _image, ref in scope.images(wl):
        if ref is not None and not registry_allowed(ref.name, allowed):
            yield Hit(
                f"{c.path}.image",
                f"image {ref.name} is outside environment {scope.env.name}'s allowed registries",
            )


def check_signature(wl: Workload, scope: Scope) -> Iterator[Hit]:
    """Images whose signature check (done by the webhook's I/O, in the context) failed.

    An image the context has no check for is not judged: nothing was asked (``airlock scan``
    without registry access, or no key covers its prefix).
    """
    checks = scope.ctx.image_signatures
    if not checks:
        return
    for c, image, _ref in scope.images(wl):
        check = checks.get(image)
        if check is None or check.verified:
            continue
        what = _SIGNATURE_FAILURES[check.status]
        at = f" at {check.digest}" if check.digest and check.digest not in image else ""
        detail = f" ({check.detail})" if check.detail else ""
        yield Hit(f"{c.path}.image", f"image {image}{at} {what}{detail}")


RULES = (
    Rule(IMAGE_TAG_LATEST, check_latest),
    Rule(IMAGE_DIGEST_MISSING, check_digest),
    Rule(IMAGE_REGISTRY_NOT_ALLOWED, check_registry),
    Rule(IMAGE_SIGNATURE_UNVERIFIED, check_signature),
)
