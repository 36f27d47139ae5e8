"""A real OCI registry on loopback for tests: Debian's ``docker-registry`` (distribution 2.8),
with TLS from the test CA, and the code that pushes images and cosign signatures through the
registry's HTTP API (no Docker, no cosign binary).

Two registries run per test session (:func:`start_registries`):

* ``private`` — htpasswd basic auth (``401`` with ``WWW-Authenticate: Basic``): pulls need the
  user and password an ``imagePullSecret`` carries;
* ``public`` — token auth, as Docker Hub, GHCR and most clouds do it: ``401`` with
  ``WWW-Authenticate: Bearer realm=…,service=…,scope=…``; the realm is :class:`TokenServer`,
  a small HTTPS service in this process that hands anonymous pull tokens (JWTs signed with a
  key the registry trusts, ES256 with an ``x5c`` chain, as distribution verifies them). It
  counts the tokens it issued, so a test can tell the bearer flow really ran.

The rig installs ``docker-registry`` and ``apache2-utils`` (for ``htpasswd -B``) with apt when
they are missing, as hack/localnode.py installs containerd. Where that cannot be done it raises
:class:`RegistryUnavailableError`; tests/registry/conftest.py turns that into a skip, or, under
``CI``, into a failure.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from tests.support.pki import CA, issue_serving_cert

__all__ = [
    "OCI_INDEX",
    "OCI_MANIFEST",
    "PushedImage",
    "Pusher",
    "Registries",
    "RegistryProcess",
    "RegistryUnavailableError",
    "TokenServer",
    "cosign_payload",
    "ensure_installed",
    "start_registries",
]

REGISTRY_BIN = "/usr/bin/docker-registry"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SERVICE = "airlock-test-registry"
ISSUER = "airlock-test-token-issuer"


class RegistryUnavailableError(RuntimeError):
    """The registry cannot run here (not installed and not installable)."""


def ensure_installed() -> None:
    """Install Debian's docker-registry and htpasswd when missing (root, apt-get)."""
    missing = [
        pkg
        for pkg, probe in (("docker-registry", REGISTRY_BIN), ("apache2-utils", "htpasswd"))
        if shutil.which(probe) is None
    ]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise RegistryUnavailableError(
            f"missing {', '.join(missing)} and cannot install them (needs root and apt-get)"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *missing]):
        result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RegistryUnavailableError(f"{' '.join(argv)} failed:\n{result.stderr[-2000:]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenServer:
    """Anonymous (and any-credential) bearer tokens for the ``public`` registry, over HTTPS."""

    ca: CA
    directory: Path
    issued: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        # the key that signs tokens, in a self-signed certificate the registry trusts
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = self.directory / "token-signer.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        cert_file, key_file = self.directory / "token.crt", self.directory / "token.key"
        issue_serving_cert(self.ca, cert_file, key_file, "token-server")
        self.port = free_port()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                scopes = query.get("scope", [])
                token = server.token(scopes, query.get("service", [""])[0])
                server.issued.append({"scopes": scopes, "auth": "Authorization" in self.headers})
                body = json.dumps({"token": token, "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def token(self, scopes: Sequence[str], service: str) -> str:
        access = []
        for scope in scopes:
            for one in scope.split(" "):
                kind, _, rest = one.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "",
            "aud": service,
            "exp": now + 300,
            "nbf": now - 60,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "ES256", "x5c": [base64.b64encode(der).decode()]}
        signing_input = (
            _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
        )
        r, s = decode_dss_signature(
            self.key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        )
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return signing_input + "." + _b64url(signature)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# --------------------------------------------------------------------------- registry process


@dataclass
class RegistryProcess:
    """One ``docker-registry serve`` on 127.0.0.1 with TLS from the test CA."""

    name: str
    directory: Path
    ca: CA
    auth: Mapping[str, Any]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = self.directory / "tls.crt", self.directory / "tls.key"
        issue_serving_cert(self.ca, cert_file, key_file, f"registry-{self.name}")
        self.port = self.port or free_port()
        config = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.host,
                "tls": {"certificate": str(cert_file), "key": str(key_file)},
            },
            "auth": dict(self.auth),
        }
        config_file = self.directory / "config.yml"
        config_file.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
        with (self.directory / "registry.log").open("wb") as log:  # the child keeps its copy
            self.proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(config_file)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self) -> None:
        ctx = ssl.create_default_context(cadata=self.ca.pem.decode())
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                log = (self.directory / "registry.log").read_text(errors="replace")
                raise RuntimeError(f"registry {self.name} exited:\n{log[-2000:]}")
            try:
                with (
                    socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw,
                    ctx.wrap_socket(raw, server_hostname="127.0.0.1"),
                ):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"registry {self.name} did not listen on {self.host} within 20 s")

    def stop(self) -> None:
        """Stop the process (the port then refuses connections: a registry that is down)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@dataclass
class Registries:
    ca: CA
    public: RegistryProcess
    private: RegistryProcess
    tokens: TokenServer
    username: str
    password: str

    def pusher(self, which: str) -> Pusher:
        reg = self.public if which == "public" else self.private
        creds = (self.username, self.password) if which == "private" else None
        return Pusher(reg.host, self.ca, creds)

    def stop(self) -> None:
        self.public.stop()
        self.private.stop()
        self.tokens.stop()


@contextlib.contextmanager
def start_registries(directory: Path, ca: CA) -> Iterator[Registries]:
    """The two registries of a test session, stopped on exit."""
    ensure_installed()
    username, password = "puller", "s3cret-" + uuid.uuid4().hex[:12]
    htpasswd = directory / "htpasswd"
    directory.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["htpasswd", "-Bbn", username, password], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RegistryUnavailableError(f"htpasswd failed: {result.stderr}")
    htpasswd.write_text(result.stdout, encoding="utf-8")
    tokens = TokenServer(ca, directory)
    public = RegistryProcess(
        "public",
        directory / "public",
        ca,
        {
            "token": {
                "realm": tokens.realm,
                "service": SERVICE,
                "issuer": ISSUER,
                "rootcertbundle": str(tokens.bundle),
            }
        },
    )
    private = RegistryProcess(
        "private",
        directory / "private",
        ca,
        {"htpasswd": {"realm": "airlock-test", "path": str(htpasswd)}},
    )
    regs = Registries(ca, public, private, tokens, username, password)
    try:
        public.start()
        private.start()
        yield regs
    finally:
        regs.stop()


# --------------------------------------------------------------------------- pushing


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str  # what the tag names: the index for a multi-platform image
    manifests: tuple[str, ...]  # the per-platform manifests (one for a single manifest)
    media_type: str


def cosign_payload(reference: str, digest: str) -> bytes:
    """cosign's simple-signing payload for ``reference`` at ``digest``."""
    return _canonical(
        {
            "critical": {
                "identity": {"docker-reference": reference},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


class Pusher:
    """Pushes blobs, manifests, images and cosign signatures through the distribution API."""

    def __init__(self, host: str, ca: CA, credentials: tuple[str, str] | None = None) -> None:
        self.host = host
        self.base = f"https://{host}"
        self.credentials = credentials
        self.http = urllib3.PoolManager(
            ssl_context=ssl.create_default_context(cadata=ca.pem.decode()), retries=False
        )
        self._tokens: dict[str, str] = {}

    # -- HTTP with the registry's authentication --

    def _request(
        self,
        method: str,
        url: str,
        repository: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        hdrs = dict(headers or {})
        if repository in self._tokens:
            hdrs["Authorization"] = "Bearer " + self._tokens[repository]
        elif self.credentials is not None:
            hdrs.update(urllib3.make_headers(basic_auth=":".join(self.credentials)))
        resp = self.http.request(method, url, body=body, headers=hdrs, redirect=False)
        if resp.status == 401 and resp.headers.get("WWW-Authenticate", "").startswith("Bearer"):
            challenge = resp.headers["WWW-Authenticate"]
            params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
            scope = f"repository:{repository}:pull,push"
            token_resp = self.http.request(
                "GET",
                params["realm"],
                fields={"service": params.get("service", ""), "scope": scope},
            )
            assert token_resp.status == 200, token_resp.data
            self._tokens[repository] = json.loads(token_resp.data)["token"]
            hdrs["Authorization"] = "Bearer " + self._tokens[repository]
            resp = self.http.request(method, url, body=body, headers=hdrs, redirect=False)
        return resp

    def blob(self, repository: str, data: bytes) -> str:
        digest = _digest(data)
        start = self._request("POST", f"{self.base}/v2/{repository}/blobs/uploads/", repository)
        assert start.status == 202, (start.status, start.data)
        location = start.headers["Location"]
        if location.startswith("/"):
            location = self.base + location
        sep = "&" if "?" in location else "?"
        done = self._request(
            "PUT",
            f"{location}{sep}digest={digest}",
            repository,
            body=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status == 201, (done.status, done.data)
        return digest

    def manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self._request(
            "PUT",
            f"{self.base}/v2/{repository}/manifests/{reference}",
            repository,
            body=body,
            headers={"Content-Type": media_type},
        )
        assert resp.status == 201, (resp.status, resp.data)
        digest = _digest(body)
        assert resp.headers.get("Docker-Content-Digest") == digest
        return digest

    # -- images --

    def _platform_manifest(self, repository: str, arch: str, salt: str) -> tuple[str, bytes]:
        layer = self.blob(repository, f"layer {arch} {salt}".encode())
        config_body = _canonical(
            {"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
        )
        config = self.blob(repository, config_body)
        manifest = _canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config, "size": len(config_body)},
                "layers": [{"mediaType": OCI_LAYER, "digest": layer, "size": len(salt) + 7}],
            }
        )
        return _digest(manifest), manifest

    def image(
        self, repository: str, tag: str, *, platforms: Sequence[str] = ("amd64",)
    ) -> PushedImage:
        """A fresh image (unique content) at ``tag``: one manifest, or an index of one manifest
        per platform when more than one is given."""
        salt = uuid.uuid4().hex
        manifests = []
        for arch in platforms:
            digest, body = self._platform_manifest(repository, arch, salt)
            if len(platforms) == 1:
                self.manifest(repository, tag, body, OCI_MANIFEST)
                return PushedImage(repository, tag, digest, (digest,), OCI_MANIFEST)
            self.manifest(repository, digest, body, OCI_MANIFEST)
            manifests.append((digest, len(body), arch))
        index = _canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": d,
                        "size": n,
                        "platform": {"architecture": a, "os": "linux"},
                    }
                    for d, n, a in manifests
                ],
            }
        )
        digest = self.manifest(repository, tag, index, OCI_INDEX)
        return PushedImage(repository, tag, digest, tuple(d for d, _, _ in manifests), OCI_INDEX)

    def sign(
        self,
        repository: str,
        digest: str,
        key: ec.EllipticCurvePrivateKey,
        *,
        payload_digest: str | None = None,
        append: Sequence[tuple[bytes, str]] = (),
    ) -> tuple[bytes, str]:
        """Store a cosign signature of ``digest`` (by ``key``) at ``sha256-<hex>.sig``, as
        ``cosign sign --key`` does. ``payload_digest`` makes the payload name another digest
        (a signature copied from another image). Returns (payload, base64 signature), which
        ``append`` takes to keep earlier signatures in the same manifest."""
        payload = cosign_payload(f"{self.host}/{repository}", payload_digest or digest)
        signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        layers = []
        for body, sig in (*append, (payload, signature)):
            blob = self.blob(repository, body)
            layers.append(
                {
                    "mediaType": SIMPLE_SIGNING,
                    "digest": blob,
                    "size": len(body),
                    "annotations": {SIGNATURE_ANNOTATION: sig},
                }
            )
        config_body = _canonical(
            {
                "architecture": "",
                "os": "",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
            }
        )
        config = self.blob(repository, config_body)
        manifest = _canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config, "size": len(config_body)},
                "layers": layers,
            }
        )
        algorithm, _, hexpart = digest.partition(":")
        self.manifest(repository, f"{algorithm}-{hexpart}.sig", manifest, OCI_MANIFEST)
        return payload, signature


def public_key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
