"""The webhook (real server, real TLS) with a real registry behind it: tags pinned at
admission, pull secrets, a registry that is down or slow, signatures judged at validation."""

from __future__ import annotations

import base64
import copy
import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from airlock.admission import StateStore
from airlock.admission.supply import SupplyChain
from airlock.registry import ImageResolver, Keychain, RegistryClient
from cryptography.hazmat.primitives.asymmetric import ec

from tests.admission.conftest import ServerThread, admission_review, test_settings
from tests.support.builders import apply_patch, clean_container, clean_pod, deployment
from tests.support.pki import CA, TLSFiles, issue_serving_cert
from tests.support.registry import Registries, free_port, public_key_pem

NAMESPACES = {"ml-dev": "dev", "ml-prod": "prod"}


def policy(
    regs: Registries, *, extra_registries: Sequence[dict[str, Any]] = (), **spec: Any
) -> dict[str, Any]:
    pem = regs.ca.pem.decode()
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "BaselinePolicy",
        "metadata": {"name": "default", "generation": 1},
        "spec": {
            "defaultEnvironment": "dev",
            "environments": [
                {"name": "dev", "mode": "warn"},
                {"name": "prod", "mode": "enforce"},
            ],
            "mutations": {"pinImageDigests": True},
            "registries": [
                {"host": regs.public.host, "caBundle": pem},
                {"host": regs.private.host, "caBundle": pem},
                *extra_registries,
            ],
            **spec,
        },
    }


def store_for(pol: dict[str, Any]) -> StateStore:
    store = StateStore()
    assert store.set_policy(pol) is None
    for ns, env in NAMESPACES.items():
        store.set_namespace(ns, {"kubernetes.io/metadata.name": ns, "airlock.dev/environment": env})
    for what in ("policy", "namespaces", "exceptions"):
        store.mark_synced(what)  # type: ignore[arg-type]
    return store


class FakePullSecrets:
    """The Kubernetes API's Secrets and ServiceAccounts, in memory (the seam the webhook reads
    pull secrets through; tests/e2e reads them from a real API server)."""

    def __init__(
        self,
        secrets: dict[tuple[str, str], tuple[str, dict[str, str]]],
        accounts: dict[tuple[str, str], list[str]],
    ) -> None:
        self.secrets, self.accounts = secrets, accounts
        self.asked: list[tuple[str, tuple[str, ...], str]] = []

    async def keychain(
        self, namespace: str, secret_names: Sequence[str], service_account: str
    ) -> Keychain:
        self.asked.append((namespace, tuple(secret_names), service_account))
        names = [*secret_names, *self.accounts.get((namespace, service_account), [])]
        return Keychain.from_secrets(
            self.secrets[namespace, n] for n in names if (namespace, n) in self.secrets
        )


@pytest.fixture
def tls(tmp_path: Path, registry_ca: CA) -> TLSFiles:
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    der = issue_serving_cert(registry_ca, cert_file, key_file, "airlock-webhook")
    return TLSFiles(registry_ca, cert_file, key_file, der)


@pytest.fixture
def serve(tls: TLSFiles) -> Iterator[Any]:
    started: list[ServerThread] = []

    def factory(pol: dict[str, Any], pull_secrets: Any = None, budget: float = 3.0) -> ServerThread:
        srv = ServerThread(test_settings(tls), store_for(pol), tls)
        resolver = ImageResolver(RegistryClient())
        srv.server.supply = SupplyChain(resolver, pull_secrets, budget=budget)
        srv.start()
        started.append(srv)
        return srv

    yield factory
    for srv in started:
        assert srv.server.supply is not None
        srv.call(srv.server.supply.resolver.client.close())
        srv.stop()


def pod(namespace: str, *images: str, init: str | None = None) -> dict[str, Any]:
    p = clean_pod(namespace)
    p["spec"]["containers"] = [clean_container(f"c{i}", image) for i, image in enumerate(images)]
    if init is not None:
        p["spec"]["initContainers"] = [clean_container("init", init)]
    return p


def patched(answer: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    ops = json.loads(base64.b64decode(answer["response"]["patch"]))
    return apply_patch(copy.deepcopy(obj), ops)


# --- pinning ------------------------------------------------------------------------------------


def test_pod_tags_are_pinned_with_a_warning(registries: Registries, serve: Any) -> None:
    pusher = registries.pusher("public")
    app = pusher.image("team/app", "1.4.2", platforms=("amd64", "arm64"))
    init = pusher.image("team/init", "0.9")
    host = registries.public.host
    obj = pod("ml-dev", f"{host}/team/app:1.4.2", init=f"{host}/team/init:0.9")
    srv = serve(policy(registries))
    answer = srv.post_review("/mutate", admission_review(obj))
    response = answer["response"]
    assert response["allowed"] is True
    result = patched(answer, obj)
    assert result["spec"]["containers"][0]["image"] == f"{host}/team/app:1.4.2@{app.digest}"
    assert result["spec"]["initContainers"][0]["image"] == f"{host}/team/init:0.9@{init.digest}"
    warnings = response["warnings"]
    assert f"airlock pinned spec.containers[0].image to {host}/team/app@{app.digest}" in warnings
    pinned_init = f"airlock pinned spec.initContainers[0].image to {host}/team/init@{init.digest}"
    assert pinned_init in warnings
    # the pinned pod passes validation's image-digest-missing
    checked = srv.post_review("/validate", admission_review(result))
    assert "image-digest-missing" not in checked["_raw"]


def test_deployment_is_pinned_and_pinned_images_are_left_alone(
    registries: Registries, serve: Any
) -> None:
    image = registries.pusher("public").image("team/server", "2.0")
    host = registries.public.host
    already = f"{host}/team/server:2.0@sha256:{'b' * 64}"
    obj = deployment(pod("ml-dev", f"{host}/team/server:2.0", already))
    srv = serve(policy(registries))
    answer = srv.post_review("/mutate", admission_review(obj))
    result = patched(answer, obj)
    containers = result["spec"]["template"]["spec"]["containers"]
    assert containers[0]["image"] == f"{host}/team/server:2.0@{image.digest}"
    assert containers[1]["image"] == already
    assert len(json.loads(base64.b64decode(answer["response"]["patch"]))) == 1


def test_a_running_pods_ephemeral_container_is_pinned_and_only_its_image_looked_up(
    registries: Registries, serve: Any
) -> None:
    pusher = registries.pusher("public")
    pusher.image("team/running", "1.0")
    debug = pusher.image("team/debug", "0.3")
    host = registries.public.host
    old = pod("ml-dev", f"{host}/team/running:1.0")
    new = copy.deepcopy(old)
    new["spec"]["ephemeralContainers"] = [clean_container("debugger", f"{host}/team/debug:0.3")]
    before = len(registries.tokens.issued)
    answer = serve(policy(registries)).post_review(
        "/mutate", admission_review(new, operation="UPDATE", old=old)
    )
    result = patched(answer, new)
    assert result["spec"]["ephemeralContainers"][0]["image"] == (
        f"{host}/team/debug:0.3@{debug.digest}"
    )
    assert result["spec"]["containers"] == new["spec"]["containers"]  # cannot change: untouched
    # the running container's image was not even looked up
    scopes = [i["scopes"] for i in registries.tokens.issued[before:]]
    assert scopes == [["repository:team/debug:pull"]]


def test_pinning_off_asks_no_registry(registries: Registries, serve: Any) -> None:
    registries.pusher("public").image("team/quiet", "1.0")
    pol = policy(registries)
    pol["spec"]["mutations"] = {"pinImageDigests": False}
    before = len(registries.tokens.issued)
    obj = deployment(pod("ml-dev", f"{registries.public.host}/team/quiet:1.0"))
    answer = serve(pol).post_review("/mutate", admission_review(obj))
    assert "patch" not in answer["response"]
    assert len(registries.tokens.issued) == before


def test_private_image_is_pinned_with_the_pods_pull_secrets(
    registries: Registries, serve: Any
) -> None:
    image = registries.pusher("private").image("ml/weights-server", "7")
    host = registries.private.host
    auth = base64.b64encode(f"{registries.username}:{registries.password}".encode()).decode()
    config = {"auths": {host: {"auth": auth}}}
    secret = (
        "kubernetes.io/dockerconfigjson",
        {".dockerconfigjson": base64.b64encode(json.dumps(config).encode()).decode()},
    )
    # one test through the ServiceAccount's imagePullSecrets, one through the pod's own
    for via_account in (True, False):
        secrets = FakePullSecrets(
            {("ml-dev", "regcred"): secret},
            {("ml-dev", "builder"): ["regcred"]} if via_account else {},
        )
        obj = pod("ml-dev", f"{host}/ml/weights-server:7")
        obj["spec"]["serviceAccountName"] = "builder"
        if not via_account:
            obj["spec"]["imagePullSecrets"] = [{"name": "regcred"}]
        answer = serve(policy(registries), secrets).post_review("/mutate", admission_review(obj))
        result = patched(answer, obj)
        pinned = f"{host}/ml/weights-server:7@{image.digest}"
        assert result["spec"]["containers"][0]["image"] == pinned
        assert secrets.asked == [("ml-dev", () if via_account else ("regcred",), "builder")]
        assert registries.password not in answer["_raw"]


def test_private_image_without_credentials_is_admitted_unpinned_with_a_warning(
    registries: Registries, serve: Any
) -> None:
    registries.pusher("private").image("ml/locked", "1")
    host = registries.private.host
    obj = pod("ml-dev", f"{host}/ml/locked:1")
    answer = serve(policy(registries), FakePullSecrets({}, {})).post_review(
        "/mutate", admission_review(obj)
    )
    response = answer["response"]
    assert response["allowed"] is True
    assert "patch" not in response
    (warning,) = response["warnings"]
    assert warning.startswith(f"airlock could not resolve {host}/ml/locked:1 to a digest")
    assert warning.endswith("admitted unpinned")


# --- a registry that is down or slow -----------------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A TCP port that accepts connections and never answers (a hung registry)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                held.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.parametrize("kind", ["down", "slow"])
def test_registry_down_or_slow_admits_unpinned_within_the_time_limit(
    registries: Registries, serve: Any, black_hole: str, kind: str
) -> None:
    host = f"127.0.0.1:{free_port()}" if kind == "down" else black_hole
    timeout = 0.5
    pol = policy(registries, extra_registries=[{"host": host, "timeoutSeconds": timeout}])
    srv = serve(pol)
    for namespace in ("ml-dev", "ml-prod"):
        obj = pod(namespace, f"{host}/team/app:1.0")
        start = time.monotonic()
        answer = srv.post_review("/mutate", admission_review(obj))
        took = time.monotonic() - start
        assert took < timeout + 0.5  # well inside the API server's 5 s
        response = answer["response"]
        assert response["allowed"] is True
        assert "patch" not in response
        (warning,) = response["warnings"]
        assert f"could not resolve {host}/team/app:1.0" in warning
        reason = "cannot connect" if kind == "down" else "no answer within 0.5 s"
        assert reason in warning
        # validation then decides by image-digest-missing: a warning in dev, a denial in prod
        checked = srv.post_review("/validate", admission_review(obj))["response"]
        if namespace == "ml-dev":
            assert checked["allowed"] is True
            assert any("image-digest-missing" in w for w in checked["warnings"])
        else:
            assert checked["allowed"] is False
            assert "[image-digest-missing]" in checked["status"]["message"]


def test_a_failed_lookup_is_remembered_briefly(
    registries: Registries, serve: Any, black_hole: str
) -> None:
    pol = policy(registries, extra_registries=[{"host": black_hole, "timeoutSeconds": 0.5}])
    srv = serve(pol)
    obj = pod("ml-dev", f"{black_hole}/team/app:1.0")
    srv.post_review("/mutate", admission_review(obj))
    start = time.monotonic()
    answer = srv.post_review("/mutate", admission_review(obj))
    assert time.monotonic() - start < 0.3  # the cached failure, not another timeout
    assert "could not resolve" in answer["response"]["warnings"][0]


# --- signatures at validation ---------------------------------------------------------------


def test_signatures_are_judged_at_validation(
    registries: Registries,
    serve: Any,
    signing_key: ec.EllipticCurvePrivateKey,
    other_key: ec.EllipticCurvePrivateKey,
) -> None:
    pusher = registries.pusher("public")
    host = registries.public.host
    signed = pusher.image("trusted/app", "1.0")
    pusher.sign("trusted/app", signed.digest, signing_key)
    unsigned = pusher.image("trusted/unsigned", "1.0")
    stranger = pusher.image("trusted/stranger", "1.0")
    pusher.sign("trusted/stranger", stranger.digest, other_key)
    pol = policy(
        registries,
        imageSignatures=[{"prefix": f"{host}/trusted/", "keys": [public_key_pem(signing_key)]}],
    )
    srv = serve(pol)
    ok = pod("ml-prod", f"{host}/trusted/app:1.0@{signed.digest}")
    assert srv.post_review("/validate", admission_review(ok))["response"]["allowed"] is True
    bad = pod(
        "ml-prod",
        f"{host}/trusted/unsigned:1.0@{unsigned.digest}",
        f"{host}/trusted/stranger:1.0@{stranger.digest}",
    )
    response = srv.post_review("/validate", admission_review(bad))["response"]
    assert response["allowed"] is False
    message = response["status"]["message"]
    assert (
        f"[image-signature-unverified] spec.containers[0].image: image {host}/trusted/unsigned:1.0"
        f"@{unsigned.digest} has no signature" in message
    )
    assert "spec.containers[1].image" in message
    assert "has no signature by a trusted key" in message
