"""The OCI distribution API, as far as admission needs it: manifests by tag or digest, blobs.

What a lookup does, in order:

1. pick the endpoint: the policy's mirrors for the registry first (in order), then the registry
   itself; ``https://`` unless the policy marks the registry ``insecure`` (plain HTTP), trusting
   the system's CAs plus the registry's ``caBundle``. Docker Hub is ``registry-1.docker.io``;
2. ``HEAD /v2/<repository>/manifests/<tag>`` with the full ``Accept`` list (OCI index, OCI
   manifest, Docker manifest list, Docker v2 manifest), so the registry answers with the digest
   of what the runtime pulls: the index when the tag names one, not one platform's manifest.
   A registry whose ``HEAD`` carries no ``Docker-Content-Digest`` is asked with ``GET`` and the
   digest computed from the bytes;
3. on ``401``, follow the ``WWW-Authenticate`` challenge: ``Bearer realm=…,service=…,scope=…``
   fetches a token (anonymously, or with the pull Secret's username and password, which are
   sent only to an ``https://`` realm), kept until it expires; ``Basic`` retries with the pull
   Secret's credentials.

Every lookup has one deadline (the registry's ``timeoutSeconds``, default 2 s, well inside the
webhook's own 5 s) covering tokens, redirects and mirrors. Failures are
:class:`~airlock.errors.RegistryError` with a reason fit for a metric label. Nothing here logs a
credential, a token or an ``Authorization`` header; error messages carry the registry, the
status and the repository, never a response body.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from time import monotonic
from typing import Final, TypeVar

import aiohttp
import orjson

from airlock.compilecache import regex
from airlock.errors import RegistryError
from airlock.images import DEFAULT_REGISTRY

from .credentials import Credential, identity_of

__all__ = [
    "MANIFEST_MEDIA_TYPES",
    "Endpoint",
    "Manifest",
    "RegistryClient",
    "RegistryConfig",
]

MANIFEST_MEDIA_TYPES: Final = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_ACCEPT: Final = ", ".join(MANIFEST_MEDIA_TYPES)
_DOCKER_HUB_ENDPOINT: Final = "registry-1.docker.io"
MAX_MANIFEST_BYTES: Final = 4 * 1024 * 1024  # distribution's own limit on a manifest
_TOKEN_MAX_TTL: Final = 300.0
_CHALLENGE_PARAM = regex(r'([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^\s,]*))')
_DIGEST_RE = regex(r"sha256:[0-9a-f]{64}")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """How to reach one registry (from the policy's ``registries``)."""

    host: str
    mirrors: tuple[str, ...] = ()
    insecure: bool = False
    ca_bundle: str | None = None
    timeout: float = 2.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One base URL to ask, and the TLS it needs (None: plain HTTP)."""

    host: str
    base: str
    ssl_context: ssl.SSLContext | None = field(compare=False)


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes


def _endpoints(cfg: RegistryConfig, ctx: ssl.SSLContext | None) -> list[Endpoint]:
    """The base URLs to ask for ``cfg``'s registry, mirrors first; plain HTTP when ``ctx`` is
    None (an insecure registry)."""
    out = []
    for host in (*cfg.mirrors, cfg.host):
        real = _DOCKER_HUB_ENDPOINT if host == DEFAULT_REGISTRY else host
        scheme = "http" if ctx is None else "https"
        out.append(Endpoint(host, f"{scheme}://{real}", ctx))
    return out


class RegistryClient:
    """Talks to registries over one aiohttp session; configured from the policy.

    ``system_ca_file`` adds a CA file to the system's trust for every registry (tests; a
    cluster's private CA is better given per registry in the policy). Tokens are cached per
    (registry host, repository scope, pull credential) until they expire.
    """

    def __init__(
        self,
        *,
        configs: Mapping[str, RegistryConfig] | None = None,
        default_timeout: float = 2.0,
        system_ca_file: str | None = None,
    ) -> None:
        self.default_timeout = default_timeout
        self._system_ca_file = system_ca_file
        self._configs: Mapping[str, RegistryConfig] = dict(configs or {})
        # TLS contexts by CA bundle, read and written on the event loop only; the first build of
        # each runs in a thread, shared by the lookups that wait for it
        self._contexts: dict[str | None, ssl.SSLContext] = {}
        self._building: dict[str | None, asyncio.Future[ssl.SSLContext]] = {}
        self._session: aiohttp.ClientSession | None = None
        # (host, scope, identity) -> (expires, token): the token that answered the last
        # challenge for that repository and pull Secret
        self._tokens: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._basic: set[str] = set()  # hosts that answered with a Basic challenge

    # -- configuration ---------------------------------------------------------------------------

    def configure(self, configs: Mapping[str, RegistryConfig]) -> None:
        """Adopt the policy's registry settings (the webhook calls this when the policy
        changes). TLS contexts stay cached by CA bundle, the bundles no registry names any more
        dropped: building one reads the system CA file, which is not done again for a policy
        change that keeps a bundle."""
        self._configs = dict(configs)
        for bundle in [b for b in self._contexts if not self._names(b)]:
            del self._contexts[bundle]

    def _names(self, ca_bundle: str | None) -> bool:
        """Whether the policy still trusts ``ca_bundle`` for some registry (the system's trust
        alone, ``None``, is always in use)."""
        return ca_bundle is None or any(c.ca_bundle == ca_bundle for c in self._configs.values())

    def config(self, registry: str) -> RegistryConfig:
        found = self._configs.get(registry)
        return found or RegistryConfig(registry, timeout=self.default_timeout)

    def timeout(self, registry: str) -> float:
        return self.config(registry).timeout

    def _build_ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        """A new TLS context trusting the system CAs and ``ca_bundle``; touches no shared state
        (it runs in a thread)."""
        ctx = ssl.create_default_context(cafile=self._system_ca_file)
        if self._system_ca_file is not None:
            ctx.load_default_certs()
        if ca_bundle:
            ctx.load_verify_locations(cadata=ca_bundle)
        return ctx

    async def _context(self, cfg: RegistryConfig) -> ssl.SSLContext:
        """The TLS context for ``cfg``'s CA bundle: cached, or built in a thread once however
        many lookups wait for it (or give up waiting), and kept if the policy still names the
        bundle when it is ready. A bundle that cannot be loaded is a ``tls`` failure."""
        bundle = cfg.ca_bundle
        ctx = self._contexts.get(bundle)
        if ctx is not None:
            return ctx
        try:
            return await self._prepare_ssl(bundle)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise RegistryError(
                cfg.host,
                "tls",
                f"the trusted CA certificates cannot be loaded ({type(exc).__name__})",
            ) from None

    async def _prepare_ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        building = self._building.get(ca_bundle)
        if building is not None and building.get_loop() is not asyncio.get_running_loop():
            building = None  # started on a loop that is gone: start again on this one
        if building is None:
            building = asyncio.ensure_future(asyncio.to_thread(self._build_ssl, ca_bundle))

            def keep(done: asyncio.Future[ssl.SSLContext]) -> None:  # on the event loop
                self._building.pop(ca_bundle, None)
                if done.cancelled() or done.exception() is not None:
                    return  # the next lookup tries again, and says why
                if self._names(ca_bundle):
                    self._contexts.setdefault(ca_bundle, done.result())

            building.add_done_callback(keep)  # before any waiter's: stored when they wake
            self._building[ca_bundle] = building
        return await asyncio.shield(building)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=8, ttl_dns_cache=60),
                auto_decompress=True,
                trust_env=False,  # no proxy or .netrc picked up behind the policy's back
            )
        return self._session

    # -- lookups --------------------------------------------------------------------------------

    async def resolve(
        self, registry: str, repository: str, tag: str, credential: Credential | None = None
    ) -> str:
        """The digest ``registry/repository:tag`` names now (the index digest for an index)."""

        async def attempt(endpoint: Endpoint) -> str:
            url = f"{endpoint.base}/v2/{repository}/manifests/{tag}"
            async with self._call(
                "HEAD",
                url,
                endpoint,
                registry=registry,
                repository=repository,
                credential=credential,
                headers={"Accept": _ACCEPT},
            ) as resp:
                digest = resp.headers.get("Docker-Content-Digest", "")
            if _DIGEST_RE.fullmatch(digest):
                return digest
            # no usable digest header: read the manifest and hash it
            return (
                await self._get_manifest(endpoint, registry, repository, tag, credential)
            ).digest

        return await self._lookup(registry, attempt)

    async def manifest(
        self,
        registry: str,
        repository: str,
        reference: str,
        credential: Credential | None = None,
    ) -> Manifest:
        """The manifest at a tag or digest; a digest reference is checked against the bytes."""

        async def attempt(endpoint: Endpoint) -> Manifest:
            return await self._get_manifest(endpoint, registry, repository, reference, credential)

        return await self._lookup(registry, attempt)

    async def blob(
        self,
        registry: str,
        repository: str,
        digest: str,
        credential: Credential | None = None,
        *,
        max_bytes: int = 1024 * 1024,
    ) -> bytes:
        """A blob by digest, checked against the digest, at most ``max_bytes`` long."""

        async def attempt(endpoint: Endpoint) -> bytes:
            url = f"{endpoint.base}/v2/{repository}/blobs/{digest}"
            async with self._call(
                "GET",
                url,
                endpoint,
                registry=registry,
                repository=repository,
                credential=credential,
            ) as resp:
                body = await _read_bounded(resp, max_bytes, registry)
            if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
                raise RegistryError(
                    registry, "protocol", f"blob {digest} of {repository} has another digest"
                )
            return body

        return await self._lookup(registry, attempt)

    async def _lookup(self, registry: str, attempt: Callable[[Endpoint], Awaitable[T]]) -> T:
        """``attempt`` against each endpoint of ``registry`` in turn, within its time limit: a
        mirror's failure moves to the next, the last endpoint's failure is the answer (a
        not-found from the registry itself)."""

        async def each() -> T:
            cfg = self.config(registry)  # one reading, whatever the policy does meanwhile
            # a TLS context's first build reads and parses CA files: not on the event loop
            ctx = None if cfg.insecure else await self._context(cfg)
            last: RegistryError | None = None
            for endpoint in _endpoints(cfg, ctx):
                try:
                    return await attempt(endpoint)
                except RegistryError as exc:
                    last = exc
            assert last is not None
            raise last

        timeout = self.timeout(registry)
        try:
            return await asyncio.wait_for(each(), timeout)
        except TimeoutError:
            raise RegistryError(registry, "timeout", f"no answer within {timeout:g} s") from None

    async def _get_manifest(
        self,
        endpoint: Endpoint,
        registry: str,
        repository: str,
        reference: str,
        credential: Credential | None,
    ) -> Manifest:
        url = f"{endpoint.base}/v2/{repository}/manifests/{reference}"
        async with self._call(
            "GET",
            url,
            endpoint,
            registry=registry,
            repository=repository,
            credential=credential,
            headers={"Accept": _ACCEPT},
        ) as resp:
            body = await _read_bounded(resp, MAX_MANIFEST_BYTES, registry)
            media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(
                registry, "protocol", f"manifest {reference} of {repository} has another digest"
            )
        if not media_type:
            media_type = _media_type_of(body)
        return Manifest(digest, media_type, body)

    # -- HTTP and authentication ----------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        endpoint: Endpoint,
        *,
        registry: str,
        repository: str,
        credential: Credential | None,
        headers: Mapping[str, str] | None = None,
    ) -> _Call:
        # a pull secret is for its registry: a mirror (a pull-through cache someone else runs)
        # never sees it, nor does a token service the mirror names
        return _Call(
            self,
            method,
            url,
            endpoint,
            registry=registry,
            repository=repository,
            credential=credential if endpoint.host == registry else None,
            headers=headers,
        )

    def _auth_header(
        self, endpoint: Endpoint, repository: str, credential: Credential | None
    ) -> str | None:
        hit = self._tokens.get(_token_key(endpoint, repository, credential))
        if hit is not None and hit[0] > monotonic():
            return f"Bearer {hit[1]}"
        if credential is not None and endpoint.host in self._basic:
            return _basic(credential)
        return None

    async def _authenticate(
        self,
        resp: aiohttp.ClientResponse,
        endpoint: Endpoint,
        registry: str,
        repository: str,
        credential: Credential | None,
    ) -> str:
        """The ``Authorization`` value that answers the 401 ``resp``."""
        scheme, params = _parse_challenge(resp.headers.get("WWW-Authenticate", ""))
        if scheme == "basic":
            if credential is None:
                raise RegistryError(
                    registry,
                    "unauthorized",
                    f"{repository} needs credentials and no imagePullSecret has any for "
                    f"{endpoint.host}",
                )
            self._basic.add(endpoint.host)
            return _basic(credential)
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(registry, "unauthorized", "unsupported authentication challenge")
        realm = params["realm"]
        if not realm.startswith(("https://", "http://")):
            raise RegistryError(registry, "protocol", "token realm is not an http(s) URL")
        query = {"scope": params.get("scope") or _scope(repository)}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {}
        # credentials go to a token service only over TLS, or in plain HTTP to the registry's
        # own host when the policy marks that registry insecure (plain HTTP already)
        if credential is not None and (
            realm.startswith("https://")
            or (endpoint.ssl_context is None and _host_of(realm) == _host_of(endpoint.base))
        ):
            headers["Authorization"] = _basic(credential)
        ssl_ctx: ssl.SSLContext | bool = (
            endpoint.ssl_context if realm.startswith("https://") and endpoint.ssl_context else True
        )
        try:
            async with self._http().get(
                realm, params=query, headers=headers, ssl=ssl_ctx, allow_redirects=False
            ) as token_resp:
                if token_resp.status in (401, 403):
                    raise RegistryError(
                        registry,
                        "unauthorized",
                        f"the token service refused access to {repository} "
                        f"({'with' if credential else 'without'} credentials)",
                    )
                if token_resp.status != 200:
                    raise RegistryError(
                        registry, "protocol", f"token service answered HTTP {token_resp.status}"
                    )
                raw = await _read_bounded(token_resp, 64 * 1024, registry)
        except aiohttp.ClientError as exc:
            raise _transport_error(registry, exc) from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise RegistryError(registry, "protocol", "token service answered no JSON") from None
        token = data.get("token") or data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise RegistryError(registry, "protocol", "token service answered no token")
        expires_in = data.get("expires_in", 60)
        ttl = min(
            float(expires_in) if isinstance(expires_in, int | float) else 60.0, _TOKEN_MAX_TTL
        )
        expires = monotonic() + max(ttl - 5.0, 1.0)
        self._tokens[_token_key(endpoint, repository, credential)] = (expires, token)
        if len(self._tokens) > 4096:  # expired ones go first, then the oldest
            now = monotonic()
            for k in [k for k, (exp, _) in self._tokens.items() if exp <= now][:2048] or list(
                self._tokens
            )[:2048]:
                self._tokens.pop(k, None)
        return f"Bearer {token}"


class _Call:
    """``async with`` one registry request: authentication on 401, errors as RegistryError."""

    def __init__(
        self,
        client: RegistryClient,
        method: str,
        url: str,
        endpoint: Endpoint,
        *,
        registry: str,
        repository: str,
        credential: Credential | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.client, self.method, self.url, self.endpoint = client, method, url, endpoint
        self.registry, self.repository, self.credential = registry, repository, credential
        self.headers = dict(headers or {})
        self.resp: aiohttp.ClientResponse | None = None

    async def __aenter__(self) -> aiohttp.ClientResponse:
        client, endpoint = self.client, self.endpoint
        auth = client._auth_header(endpoint, self.repository, self.credential)
        resp = await self._send(auth)
        if resp.status == 401:
            try:
                auth = await client._authenticate(
                    resp, endpoint, self.registry, self.repository, self.credential
                )
            finally:
                resp.release()
            resp = await self._send(auth)
        self.resp = resp
        if resp.status == 200:
            return resp
        resp.release()
        status = resp.status
        what = f"{self.repository} ({self.endpoint.host})"
        if status in (401, 403):
            raise RegistryError(self.registry, "unauthorized", f"access to {what} refused")
        if status == 404:
            raise RegistryError(
                self.registry, "not-found", f"{self.url.rsplit('/', 2)[-1]} of {what} not found"
            )
        raise RegistryError(self.registry, "protocol", f"HTTP {status} for {what}")

    async def __aexit__(self, *exc: object) -> None:
        if self.resp is not None:
            self.resp.release()

    async def _send(self, auth: str | None) -> aiohttp.ClientResponse:
        headers = dict(self.headers)
        if auth is not None:
            headers["Authorization"] = auth
        ssl_ctx: ssl.SSLContext | bool = (
            self.endpoint.ssl_context if self.endpoint.ssl_context is not None else False
        )
        try:
            return await self.client._http().request(
                self.method, self.url, headers=headers, ssl=ssl_ctx
            )
        except aiohttp.ClientError as exc:
            raise _transport_error(self.registry, exc) from None


def _transport_error(registry: str, exc: aiohttp.ClientError) -> RegistryError:
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return RegistryError(registry, "tls", f"TLS failed: {type(exc).__name__}")
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ServerDisconnectedError):
        return RegistryError(registry, "unreachable", f"cannot connect: {type(exc).__name__}")
    return RegistryError(registry, "unreachable", f"request failed: {type(exc).__name__}")


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int, registry: str) -> bytes:
    length = resp.content_length
    if length is not None and length > limit:
        raise RegistryError(registry, "protocol", f"answer larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise RegistryError(registry, "protocol", f"answer larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type_of(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    value = data.get("mediaType") if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _token_key(
    endpoint: Endpoint, repository: str, credential: Credential | None
) -> tuple[str, str, str]:
    """Where a bearer token is kept: the registry host, the repository's scope, whose pull
    credential asked (a token answers for one identity only)."""
    return endpoint.host, _scope(repository), identity_of(credential)


def _scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def _basic(credential: Credential) -> str:
    raw = f"{credential.username}:{credential.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _host_of(url: str) -> str:
    return url.split("://", 1)[-1].split("/", 1)[0].lower()


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """(scheme in lowercase, parameters) of a ``WWW-Authenticate`` header."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) or m.group(3) or "" for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params
