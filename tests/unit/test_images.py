"""Image reference parsing: the distribution grammar with Docker's normalisation."""

from __future__ import annotations

import pytest
from airlock.errors import AirlockError
from airlock.images import (
    DEFAULT_REGISTRY,
    ImageRef,
    InvalidImageReference,
    is_pinned_digest,
    parse_image,
)
from hypothesis import assume, given
from hypothesis import strategies as st

SHA256 = "sha256:" + "0123456789abcdef" * 4
SHA512 = "sha512:" + "0123456789abcdef" * 8


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.27", "docker.io", "library/nginx", "1.27", None),
        ("library/nginx:latest", "docker.io", "library/nginx", "latest", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/library/nginx", "docker.io", "library/nginx", None, None),
        ("registry-1.docker.io/bitnami/redis:7", "docker.io", "bitnami/redis", "7", None),
        ("pytorch/pytorch:2.4.0-cuda12.1-cudnn9-runtime", "docker.io", "pytorch/pytorch",
         "2.4.0-cuda12.1-cudnn9-runtime", None),
        ("ghcr.io/org/model-server:v1.2", "ghcr.io", "org/model-server", "v1.2", None),
        ("registry.corp.example:5000/org/model-server", "registry.corp.example:5000",
         "org/model-server", None, None),
        ("registry.corp.example/prod/a/b/c:1", "registry.corp.example", "prod/a/b/c", "1", None),
        ("localhost:5000/team/app:dev", "localhost:5000", "team/app", "dev", None),
        ("localhost/app", "localhost", "app", None, None),
        ("127.0.0.1:5000/app:1", "127.0.0.1:5000", "app", "1", None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("nvcr.io/nvidia/tritonserver:24.08-py3", "nvcr.io", "nvidia/tritonserver",
         "24.08-py3", None),
        (f"nginx@{SHA256}", "docker.io", "library/nginx", None, SHA256),
        (f"quay.io/org/app:1.0@{SHA256}", "quay.io", "org/app", "1.0", SHA256),
        (f"gcr.io/p/app@{SHA512}", "gcr.io", "p/app", None, SHA512),
        # The first component is a registry only if it looks like a host (or has uppercase).
        ("team/app", "docker.io", "team/app", None, None),
        ("Registry/app", "Registry", "app", None, None),
        # One component with a port-like suffix is a tag, not a registry.
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        # Separators of the grammar.
        ("a/b__c/d-e--f/g.h_i", "docker.io", "a/b__c/d-e--f/g.h_i", None, None),
        ("nginx:_under.score-9", "docker.io", "library/nginx", "_under.score-9", None),
    ],
)  # fmt: skip
def test_parse(
    ref: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    img = parse_image(ref)
    assert (img.raw, img.registry, img.repository, img.tag, img.digest) == (
        ref,
        registry,
        repository,
        tag,
        digest,
    )
    assert img.name == f"{registry}/{repository}"


def test_name_is_what_allow_lists_match() -> None:
    assert parse_image("nginx").name == "docker.io/library/nginx"
    assert parse_image("registry.corp.example/prod/app:1").name.startswith(
        "registry.corp.example/prod/"
    )
    assert not parse_image("registry.corp.example/production/app").name.startswith(
        "registry.corp.example/prod/"
    )


@pytest.mark.parametrize(
    ("digest", "pinned"),
    [
        (SHA256, True),
        (SHA512, True),
        (SHA256.upper().replace("SHA256", "sha256"), False),  # uppercase hex
        ("sha256:" + "a" * 63, False),  # truncated
        ("sha256:" + "a" * 65, False),  # too long
        ("sha512:" + "a" * 64, False),  # sha512 needs 128
        ("sha384:" + "a" * 96, False),  # not a registered algorithm
        ("md5:" + "a" * 32, False),
        ("SHA256:" + "a" * 64, False),
        ("sha256:" + "g" * 64, False),
        ("sha256+b64u:" + "a" * 64, False),
    ],
)
def test_pinned_only_for_canonical_registered_digests(digest: str, pinned: bool) -> None:
    img = parse_image(f"registry.corp.example/app@{digest}")
    assert img.digest == digest  # kept as written, so a rule can say why it is no pin
    assert img.pinned is pinned
    assert is_pinned_digest(digest) is pinned


@pytest.mark.parametrize(
    ("ref", "latest"),
    [
        ("nginx", True),
        ("nginx:latest", True),
        ("nginx:1.27", False),
        ("nginx:Latest", False),  # tags are case-sensitive
        (f"nginx@{SHA256}", True),  # no tag: whether the digest excuses it is the rule's call
        (f"nginx:latest@{SHA256}", True),
        (f"nginx:1.27@{SHA256}", False),
    ],
)
def test_latest(ref: str, latest: bool) -> None:
    assert parse_image(ref).latest is latest


def test_not_pinned_without_digest() -> None:
    assert parse_image("nginx:1.27").pinned is False


@pytest.mark.parametrize(
    ("ref", "reason"),
    [
        ("", "empty"),
        (" nginx", "whitespace"),
        ("nginx ", "whitespace"),
        ("ngi nx", "whitespace"),
        ("\tnginx", "whitespace"),
        ("NGINX", "lowercase"),
        ("docker.io/Library/nginx", "lowercase"),
        ("nginx:", "tag"),
        ("nginx:-1", "tag"),
        ("nginx:" + "a" * 129, "tag"),
        ("nginx:a/b", "registry"),  # ':' before a '/' makes a host with a bad port
        ("nginx@", "digest"),
        ("nginx@latest", "digest"),
        ("nginx@sha256:", "digest"),
        ("nginx@sha256:abc@sha256:def", "digest"),
        (":1.0", "missing repository"),
        ("@" + SHA256, "missing repository"),
        ("a//b", "repository"),
        ("registry.corp.example/", "repository"),
        ("/nginx", "repository"),
        ("nginx/", "repository"),
        ("-nginx", "repository"),
        ("ngin$x", "repository"),
        ("bad_host.example/app", "registry"),
        ("host.example:port/app", "registry"),
        ("a/" * 130 + "b", "longer than 255"),
    ],
)
def test_invalid(ref: str, reason: str) -> None:
    with pytest.raises(InvalidImageReference) as excinfo:
        parse_image(ref)
    assert reason in excinfo.value.reason
    assert isinstance(excinfo.value, AirlockError)
    assert excinfo.value.reference == ref


@pytest.mark.parametrize("value", [None, 5, ["nginx"], {"image": "nginx"}, b"nginx"])
def test_non_strings_are_invalid_references(value: object) -> None:
    with pytest.raises(InvalidImageReference, match="not a string"):
        parse_image(value)  # type: ignore[arg-type]


def test_error_message_quotes_a_shortened_reference() -> None:
    ref = "registry.corp.example/" + "x" * 300 + ":bad tag"
    with pytest.raises(InvalidImageReference) as excinfo:
        parse_image(ref)
    message = str(excinfo.value)
    assert len(message) < 200
    assert message.startswith("invalid image reference 'registry.corp.example/xxx")


def test_parsed_references_are_values() -> None:
    a = parse_image("nginx:1.27")
    assert a == ImageRef("nginx:1.27", "docker.io", "library/nginx", "1.27", None)
    assert hash(a) == hash(ImageRef("nginx:1.27", "docker.io", "library/nginx", "1.27", None))


def test_canonical() -> None:
    assert parse_image("nginx").canonical == "docker.io/library/nginx"
    assert parse_image(f"ghcr.io/o/a:1@{SHA256}").canonical == f"ghcr.io/o/a:1@{SHA256}"


# --------------------------------------------------------------------------------------------
# Properties

_alnum = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_separator = st.sampled_from([".", "_", "__", "-", "--"])
_path_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(_separator, _alnum), max_size=2),
)
_repository = st.lists(_path_component, min_size=1, max_size=4).map("/".join)
_host_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,6}[a-z0-9])?", fullmatch=True)
_registry = st.one_of(
    st.builds(lambda a, b: f"{a}.{b}", _host_label, _host_label),
    st.builds(lambda a, b, p: f"{a}.{b}:{p}", _host_label, _host_label, st.integers(1, 65535)),
    st.builds(lambda p: f"localhost:{p}", st.integers(1, 65535)),
    st.just("localhost"),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    st.text(alphabet="0123456789abcdef", min_size=128, max_size=128).map("sha512:".__add__),
)


@given(
    st.one_of(st.none(), _registry),
    _repository,
    st.one_of(st.none(), _tag),
    st.one_of(st.none(), _digest),
)
def test_round_trip(
    registry: str | None, repository: str, tag: str | None, digest: str | None
) -> None:
    assume(len(repository) + len(registry or "") < 250)
    ref = repository if registry is None else f"{registry}/{repository}"
    if tag is not None:
        ref += f":{tag}"
    if digest is not None:
        ref += f"@{digest}"
    assume(registry not in {"docker.io", "index.docker.io", "registry-1.docker.io"})
    if registry is None and "/" in repository:
        first = repository.split("/", 1)[0]
        # A first component that looks like a host is a registry, as Docker decides.
        assume("." not in first and first != "localhost")
    img = parse_image(ref)

    want_registry = DEFAULT_REGISTRY if registry is None else registry
    want_repository = repository
    if registry is None and "/" not in repository:
        want_repository = "library/" + repository
    assert (img.registry, img.repository, img.tag, img.digest) == (
        want_registry,
        want_repository,
        tag,
        digest,
    )
    assert img.pinned is (digest is not None)
    assert img.latest is (tag is None or tag == "latest")
    # The canonical form is a fixed point of parsing.
    again = parse_image(img.canonical)
    assert (again.registry, again.repository, again.tag, again.digest) == (
        img.registry,
        img.repository,
        img.tag,
        img.digest,
    )


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_invalid_reference(text: str) -> None:
    try:
        img = parse_image(text)
    except InvalidImageReference:
        return
    assert img.raw == text
    assert img.repository
    assert img.name.startswith(img.registry + "/")
