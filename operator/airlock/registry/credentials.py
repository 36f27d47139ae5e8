"""Registry credentials from ``imagePullSecrets``: what kubelet would send, never shown.

A :class:`Keychain` is read from the ``kubernetes.io/dockerconfigjson`` (and the legacy
``kubernetes.io/dockercfg``) Secrets a pod may pull with: its own ``imagePullSecrets`` and its
ServiceAccount's. Keys are matched as kubelet matches them: the host (with its port) of the
image, then the longest path prefix; ``https://index.docker.io/v1/`` and friends stand for
Docker Hub. A :class:`Credential` never prints its password (nor its username: a username can
be a token, as with ``_json_key`` or ``oauth2accesstoken``), so logging one by mistake leaks
nothing; :attr:`Credential.identity` is a keyed-free hash used only to keep one tenant's cached
answers apart from another's.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from airlock.images import DOCKER_HUB_ALIASES

__all__ = ["Credential", "Keychain", "identity_of", "normalise_host"]

# image references' aliases of the default registry, plus the legacy host docker config files use
_DOCKER_HUB = DOCKER_HUB_ALIASES | {"registry.hub.docker.com"}


@dataclass(frozen=True, slots=True)
class Credential:
    """A username and password for basic auth (and the token endpoint of a bearer flow)."""

    username: str = field(repr=False)
    password: str = field(repr=False)

    def __repr__(self) -> str:
        return "Credential(<redacted>)"

    __str__ = __repr__

    @property
    def identity(self) -> str:
        """A short hash telling credentials apart in cache keys (not a secret, not reversible
        for any realistic password: sha256 of both fields)."""
        raw = f"{self.username}\0{self.password}".encode()
        return hashlib.sha256(raw).hexdigest()[:16]


def identity_of(credential: Credential | None) -> str:
    """The cache-key identity of ``credential`` ("-": anonymous)."""
    return credential.identity if credential is not None else "-"


def normalise_host(key: str) -> tuple[str, str]:
    """(host, path prefix) of a dockerconfig key: scheme and trailing slashes dropped, Docker
    Hub's aliases folded into ``docker.io``."""
    for scheme in ("https://", "http://"):
        if key.startswith(scheme):
            key = key[len(scheme) :]
    host, _, path = key.partition("/")
    host = host.lower()
    if host in _DOCKER_HUB:
        return "docker.io", ""  # '/v1/' of the legacy index URL is no repository path
    return host, path.strip("/")


@dataclass(frozen=True, slots=True)
class Keychain:
    """Credentials by (host, path prefix); the first Secret listed wins a tie, as in kubelet."""

    entries: tuple[tuple[str, str, Credential], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    @classmethod
    def from_secrets(cls, secrets: Iterable[tuple[str, Mapping[str, str]]]) -> Keychain:
        """From ``(type, data)`` of Secrets (``data`` base64 as the API returns it); Secrets of
        other types and unreadable entries are skipped (kubelet skips them too)."""
        entries: list[tuple[str, str, Credential]] = []
        for kind, data in secrets:
            if kind == "kubernetes.io/dockerconfigjson":
                auths = _json(data.get(".dockerconfigjson")).get("auths")
            elif kind == "kubernetes.io/dockercfg":
                auths = _json(data.get(".dockercfg"))
            else:
                continue
            if not isinstance(auths, Mapping):
                continue
            for key, entry in auths.items():
                cred = _credential(entry)
                if isinstance(key, str) and cred is not None:
                    host, path = normalise_host(key)
                    entries.append((host, path, cred))
        return cls(tuple(entries))

    def lookup(self, registry: str, repository: str) -> Credential | None:
        """The credential for ``registry/repository``: the entry for the host with the longest
        path prefix of the repository."""
        registry = normalise_host(registry)[0]
        best: tuple[int, Credential] | None = None
        for host, path, cred in self.entries:
            if host != registry:
                continue
            if path and repository != path and not repository.startswith(path + "/"):
                continue
            if best is None or len(path) > best[0]:
                best = (len(path), cred)
        return None if best is None else best[1]

    def __add__(self, other: Keychain) -> Keychain:
        return Keychain(self.entries + other.entries)


def _json(value: str | None) -> Mapping[str, object]:
    if not value:
        return {}
    try:
        decoded = json.loads(base64.b64decode(value, validate=True))
    except (ValueError, binascii.Error):
        return {}
    return decoded if isinstance(decoded, Mapping) else {}


def _credential(entry: object) -> Credential | None:
    if not isinstance(entry, Mapping):
        return None
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user:
        return Credential(user, password)
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            user, sep, password = base64.b64decode(auth, validate=True).decode().partition(":")
        except (ValueError, binascii.Error):
            return None
        if sep and user:
            return Credential(user, password)
    return None
