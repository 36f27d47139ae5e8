"""What Airlock compiles while it starts, kept between runs: regular expressions, record methods.

Importing the engine compiles about 130 regular expressions (13 ms of ``airlock scan``'s start-up)
and the methods of 34 records (9 ms); a scan compiles some 50 more patterns when it first needs
them. Python keeps the bytecode of modules in ``__pycache__`` but nothing of these, so every run
paid for them again. This module keeps what they compile to in one file per interpreter build:

* a pattern's compiled form is the list of codes the ``re`` module's compiler hands to its C
  engine (``_sre.compile``), with the pattern's flags and groups. A pattern found in the file
  goes straight to the engine: parsing and compiling it in Python is what cost the time. The
  engine validates the codes it is given, and a pattern built from the file compares equal to
  one :func:`re.compile` builds (a test holds every pattern of the package to it).
* a record's methods (:mod:`airlock.records`) are Python source built from its fields: the
  code object ``compile`` makes of it (what ``__pycache__`` holds for modules).

The file is read once, at the first lookup, and written by :func:`save` (the console script
calls it before it exits) only when this process compiled something the file lacked: written
beside and renamed over it, so a reader sees the old file or the new one, never half of one.
It is trusted (like ``__pycache__``) only when it is a regular file owned by this user or by
root and writable by no one else; anything else, a file from another Python build, a damaged
one or any error reading it, and every lookup compiles afresh, as without a cache. Where the
interpreter's ``re`` internals are not what this module knows (another Python version), it
uses :func:`re.compile` and keeps nothing.

Where: ``$AIRLOCK_CACHE_DIR`` when set (empty or relative: no cache), else
``$XDG_CACHE_HOME/airlock`` or ``~/.cache/airlock`` (none without a home directory), one file per
interpreter build. Only the package's own patterns and code live there, never input: patterns a
policy supplies (``allowValues``, extra credential names) are compiled without it.
"""

from __future__ import annotations

import binascii
import contextlib
import marshal
import os
import re
import stat
import sys
from types import CodeType
from typing import Any, AnyStr

__all__ = ["MAX_ENTRIES", "CompileCache", "cache_path", "code", "regex", "save"]

MAX_ENTRIES = 4096
"""Entries kept per kind. A file holding more (patterns of earlier versions pile up) is written
with only those this process used."""

_FORMAT = 1  # of the file's layout, in its first field
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_MAX_BYTES = 16 << 20  # a larger file is not read

# The regular-expression engine's entry point and the stdlib's two steps before it (``re``
# imports all three). Private names: where one is missing, patterns come from re.compile.
_sre: Any = sys.modules.get("_sre")
_parser: Any = sys.modules.get("re._parser")
_compiler: Any = sys.modules.get("re._compiler")
_ENGINE: Any = (
    _sre
    if hasattr(_sre, "compile") and hasattr(_parser, "parse") and hasattr(_compiler, "_code")
    else None
)
_TAG: tuple[object, ...] = (
    _FORMAT,
    sys.version,
    getattr(_sre, "MAGIC", None),
    getattr(_sre, "CODESIZE", None),
)

# (pattern, flags) -> what _sre.compile takes after the pattern: flags, codes, group count,
# group names to numbers, numbers to names
_Entry = tuple[int, list[int], int, dict[str, int], tuple[str | None, ...]]


def cache_path() -> str | None:
    """The cache file of this interpreter, or ``None`` when caching is off: ``AIRLOCK_CACHE_DIR``
    empty or relative, or no home directory (a service account's ``/nonexistent``)."""
    where = os.environ.get("AIRLOCK_CACHE_DIR")
    if where is None:
        base = os.environ.get("XDG_CACHE_HOME", "")
        if not os.path.isabs(base):  # unset, or relative: ignored, as the XDG spec says
            home = os.path.expanduser("~")
            if not os.path.isabs(home) or not os.path.isdir(home):
                return None
            base = os.path.join(home, ".cache")
        where = os.path.join(base, "airlock")
    elif not os.path.isabs(where):  # empty (no cache), or relative (not into the scanned tree)
        return None
    tag = sys.implementation.cache_tag or sys.implementation.name
    build = binascii.crc32(sys.version.encode()) & 0xFFFFFFFF  # builds of one version keep apart
    return os.path.join(where, f"compiled-{tag}-{build:08x}.marshal")


class CompileCache:
    """The compiled forms kept in the file at ``path`` (``None``: kept in memory only)."""

    __slots__ = ("_codes", "_loaded", "_new", "_regexes", "_used_codes", "_used_regexes", "path")

    def __init__(self, path: str | None) -> None:
        self.path = path
        # (pattern, flags) -> what _sre.compile takes after the pattern
        self._regexes: dict[tuple[str | bytes, int], _Entry] = {}
        self._codes: dict[tuple[str, str], CodeType] = {}
        self._used_regexes: set[tuple[str | bytes, int]] = set()
        self._used_codes: set[tuple[str, str]] = set()
        self._loaded = path is None
        self._new = False

    def regex(self, pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
        """``re.compile(pattern, flags)``, from the cache when it holds the pattern."""
        if _ENGINE is None:
            return re.compile(pattern, flags)
        if not self._loaded:
            self._load()
        key = (pattern, int(flags))
        entry = self._regexes.get(key)
        if entry is not None:
            try:
                compiled: re.Pattern[AnyStr] = _ENGINE.compile(pattern, *entry)
            except Exception:  # an entry the engine refuses: compiled afresh
                self._regexes.pop(key, None)
            else:
                self._used_regexes.add(key)
                return compiled
        try:
            compiled, entry = _compile(pattern, int(flags))
        except re.error:
            raise
        except Exception:
            return re.compile(pattern, flags)
        self._regexes[key] = entry
        self._used_regexes.add(key)
        self._new = True
        return compiled

    def code(self, source: str, filename: str) -> CodeType:
        """``compile(source, filename, "exec")``, from the cache when it holds the source."""
        if not self._loaded:
            self._load()
        key = (source, filename)
        found = self._codes.get(key)
        if found is None:
            found = self._codes[key] = compile(source, filename, "exec")
            self._new = True
        self._used_codes.add(key)
        return found

    def _load(self) -> None:
        self._loaded = True
        loaded = _read(self.path) if self.path is not None else None
        if (
            isinstance(loaded, tuple)
            and len(loaded) == 3
            and loaded[0] == _TAG
            and isinstance(loaded[1], dict)
            and isinstance(loaded[2], dict)
        ):
            self._regexes.update(loaded[1])
            self._codes.update(loaded[2])

    def save(self) -> None:
        """Write the file when this process compiled something it lacked; errors are ignored
        (the next run compiles afresh, as without a cache)."""
        if not self._new or self.path is None:
            return
        self._new = False
        regexes, codes = self._regexes, self._codes
        if len(regexes) > MAX_ENTRIES:
            regexes = {k: v for k, v in regexes.items() if k in self._used_regexes}
        if len(codes) > MAX_ENTRIES:
            codes = {k: v for k, v in codes.items() if k in self._used_codes}
        content: Any = (_TAG, regexes, codes)  # typeshed's marshal types know no nesting
        try:
            data = marshal.dumps(content)
        except ValueError:  # something unmarshallable slipped in: no cache rather than a failure
            return
        _write(self.path, data)


def _compile(pattern: AnyStr, flags: int) -> tuple[re.Pattern[AnyStr], _Entry]:
    """What ``re._compiler.compile`` does, keeping what it hands to the engine."""
    parsed = _parser.parse(pattern, flags)
    codes = [int(c) for c in _compiler._code(parsed, flags)]  # opcodes are int subclasses
    state = parsed.state
    names: dict[str, int] = dict(state.groupdict)
    numbers: list[str | None] = [None] * state.groups
    for name, number in names.items():
        numbers[number] = name
    entry: _Entry = (int(flags | state.flags), codes, state.groups - 1, names, tuple(numbers))
    return _ENGINE.compile(pattern, *entry), entry


_CACHE = CompileCache(cache_path())


def regex(pattern: AnyStr, flags: int = 0) -> re.Pattern[AnyStr]:
    """``re.compile(pattern, flags)``, through this process's cache."""
    return _CACHE.regex(pattern, flags)


def code(source: str, filename: str) -> CodeType:
    """``compile(source, filename, "exec")``, through this process's cache."""
    return _CACHE.code(source, filename)


def save() -> None:
    """Write this process's cache when it compiled something new (see :class:`CompileCache`)."""
    _CACHE.save()


def _trusted(st: os.stat_result) -> bool:
    """A regular file of this user's or root's that no one else may write, and not too large."""
    owners = {0}
    geteuid = getattr(os, "geteuid", None)
    if geteuid is not None:
        owners.add(geteuid())
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_uid in owners
        and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
        and st.st_size <= _MAX_BYTES
    )


def _read(path: str) -> Any:
    """The unmarshalled file at ``path``, or ``None`` when it is absent, not trusted or damaged."""
    try:
        # not a link, and no wait on a FIFO put there: what is not a regular file is refused
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_CLOEXEC", 0) | _NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _trusted(st):
            return None
        chunks = []
        left = st.st_size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    try:
        return marshal.loads(b"".join(chunks))  # noqa: S302 - our own file, trusted as __pycache__
    except (EOFError, ValueError, TypeError):
        return None


def _write(path: str, data: bytes) -> None:
    """``data`` into ``path``: written beside it (this user's only) and renamed over it."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
