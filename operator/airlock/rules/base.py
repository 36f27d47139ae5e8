"""The shape of a rule: metadata next to a pure check function.

A check takes the discovered workload and the evaluation scope and yields ``Hit``s (JSON path and
a specific message). The engine turns hits into findings with the policy's action; rules never
decide actions, exceptions or output, and never hold state between calls.
"""

from __future__ import annotations

import operator
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from itertools import accumulate, count
from typing import Any

from airlock.compilecache import regex
from airlock.findings import RuleInfo
from airlock.images import ImageRef, InvalidImageReference, parse_image
from airlock.records import field, record
from airlock.state import CompiledEnvironment, EvalContext
from airlock.workloads import ContainerView, PodSpecView, Workload, json_path

__all__ = [
    "Check",
    "EnvText",
    "Hit",
    "Rule",
    "Scope",
    "cached_image",
    "containers",
    "data_path",
    "mapping",
    "sequence",
    "service_accounts",
]


@record(frozen=True)
class Hit:
    path: str
    message: str


@record
class Scope:
    """Per-evaluation view of the context: the object's environment is resolved once.

    It also memoises what several rules read (a container's literal env values and their
    joined text, the workload's image references), so one evaluation walks each once, and
    carries what one rule tells the others (the ConfigMap keys holding a credential, the
    containers whose env the credentials rule found clean). A Scope lives for one evaluation
    of one workload only.
    """

    ctx: EvalContext
    env: CompiledEnvironment
    namespace: str | None
    _envs: dict[int, tuple[tuple[int, str, str], ...]] = field(default_factory=dict)
    _env_texts: dict[int, EnvText] = field(default_factory=dict)
    _images: tuple[tuple[ContainerView, str, ImageRef | None], ...] | None = None
    # the keys of a ConfigMap that its check found holding a credential: the verdict carries
    # them to the second phase (workloads reading those keys), without scanning them again
    credential_keys: set[str] = field(default_factory=set)
    # containers (ids) whose literal env values the credentials rule found clean: only their
    # text may be a key of the cross-environment rules' memos (no memo keeps a credential)
    clean_env: set[int] = field(default_factory=set)

    def literal_env(self, c: ContainerView) -> tuple[tuple[int, str, str], ...]:
        """``(index, name, value)`` of every env entry of ``c`` with a literal string value."""
        key = id(c.container)
        found = self._envs.get(key)
        if found is None:
            found = self._envs[key] = _literal_env(c)
        return found

    def images(self, wl: Workload) -> tuple[tuple[ContainerView, str, ImageRef | None], ...]:
        """``(container, image, parsed reference or None)`` of every container of ``wl`` that
        names an image; read by every image rule. ``wl`` is the workload this Scope evaluates
        (the list is built from it once)."""
        found = self._images
        if found is None:
            found = self._images = tuple(
                (c, image, cached_image(image))
                for pod in wl.pod_specs
                for c in pod.containers
                if isinstance(image := c.container.get("image"), str) and image
            )
        return found

    def env_text(self, c: ContainerView) -> EnvText:
        """The literal env values of ``c`` as one text, for rules that search them all at once."""
        key = id(c.container)
        found = self._env_texts.get(key)
        if found is None:
            found = self._env_texts[key] = EnvText(self.literal_env(c))
        return found


class EnvText:
    """A container's literal env values joined by line breaks, searched in one pass instead of
    one call per value. Host names, storage URIs (scheme included) and credential keywords are
    read without line breaks, so no match spans two values; :meth:`entry_at` names the value a
    match is in."""

    __slots__ = ("_ends", "entries", "text")

    def __init__(self, entries: tuple[tuple[int, str, str], ...]) -> None:
        self.entries = entries
        self.text = "\n".join(map(_VALUE, entries))
        self._ends: list[int] | None = None

    def entry_at(self, offset: int) -> tuple[int, str, str]:
        """``(index, name, value)`` of the entry whose value holds ``offset`` of :attr:`text`."""
        ends = self._ends
        if ends is None:  # where each value ends (its line break excluded): k line breaks before
            lengths = accumulate(map(len, map(_VALUE, self.entries)))
            ends = self._ends = list(map(operator.add, lengths, count()))
        return self.entries[bisect_right(ends, offset)]


_VALUE = operator.itemgetter(2)


Check = Callable[[Workload, Scope], Iterator[Hit]]


@record(frozen=True)
class Rule:
    info: RuleInfo
    check: Check

    @property
    def id(self) -> str:
        return self.info.id


def mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is a mapping, else an empty one: manifests are untrusted and oddly shaped."""
    if type(value) is dict:  # the common case, without the ABC instance check
        return value
    if value is None:  # an absent field (the next most common case): no ABC check either
        return _EMPTY_MAP
    return value if isinstance(value, Mapping) else _EMPTY_MAP


def sequence(value: Any) -> list[Any] | tuple[Any, ...]:
    if type(value) is list:
        return value
    return value if isinstance(value, tuple) else ()


_EMPTY_MAP: Mapping[str, Any] = {}


def _literal_env(c: ContainerView) -> tuple[tuple[int, str, str], ...]:
    # a loop into a list, not a generator: every env entry of every request passes here
    found: list[tuple[int, str, str]] = []
    for i, entry in enumerate(sequence(c.container.get("env"))):
        if type(entry) is dict or isinstance(entry, Mapping):
            value = entry.get("value")
            if isinstance(value, str) and value:
                name = entry.get("name")
                found.append((i, name if isinstance(name, str) else "", value))
    return tuple(found)


def cached_image(ref: str) -> ImageRef | None:
    """Parse an image reference once per distinct string; ``None`` when it is not valid. A
    string with userinfo before its registry (``user:password@registry/…``, never valid) is
    parsed every time: no memo keeps a credential."""
    if userinfo_end(ref) >= 0:
        return _parse_image(ref)
    return _cached_image(ref)


def userinfo_end(ref: str) -> int:
    """Offset of the ``@`` ending what stands before the registry as userinfo, or -1: an ``@``
    that does not open a digest (``user:password@registry/…``; a password may hold ``/`` or
    ``@``); ``name@sha256:…`` alone is a digest."""
    at = ref.rfind("@")
    if at >= 0 and ref.startswith(_DIGEST_ALGORITHMS, at + 1):
        at = ref.rfind("@", 0, at)  # the digest's own "@": userinfo would be before it
    return at


_DIGEST_ALGORITHMS = ("sha256:", "sha384:", "sha512:", "blake3:")


def _parse_image(ref: str) -> ImageRef | None:
    try:
        return parse_image(ref)
    except InvalidImageReference:
        return None


_cached_image = lru_cache(maxsize=4096)(_parse_image)


def containers(wl: Workload) -> Iterator[tuple[PodSpecView, ContainerView]]:
    for pod in wl.pod_specs:
        for c in pod.containers:
            yield pod, c


_PLAIN_KEY = regex(r"^[A-Za-z_][A-Za-z0-9_]*$")


def data_path(key: str, field: str = "data") -> str:
    """JSON path of a ConfigMap key under ``field`` (``data``, ``binaryData``), quoting keys that
    are not identifiers (``a.b``)."""
    return f"{field}.{key}" if _PLAIN_KEY.match(key) else f'{field}["{key}"]'


def service_accounts(wl: Workload) -> Iterator[tuple[str, str]]:
    """``(path, name)`` of the ServiceAccount each pod spec of ``wl`` runs as.

    An unset name is the namespace's ``default`` account (path: the pod spec) where the pod is
    expressed in full; a fragment whose pod is completed elsewhere proves nothing by omission.
    Argo templates inherit the workflow's ``serviceAccountName``.
    """
    for pod in wl.pod_specs:
        found = pod.effective("serviceAccountName") or pod.effective("serviceAccount")
        if found is not None:
            pointer, name = found
            if isinstance(name, str) and name:
                yield json_path(pointer), name
        elif pod.complete:
            yield pod.path, "default"
