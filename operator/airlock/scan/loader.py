"""Reading manifests for `airlock scan`: files, directories, standard input, YAML and JSON.

The loader never stops at the first bad document: every unusable input becomes an
:class:`~airlock.errors.InputError` naming the file, the 1-based document index and, when the
parser knows it, the line, so a CI run shows every problem at once.

YAML takes the fast path of :mod:`airlock.scan.fastyaml` (values built in Rust, lines found in
the text only for the fields a report names) wherever it reads exactly as PyYAML would, and
otherwise the exact path of :mod:`airlock.scan.exactyaml` (PyYAML with libyaml, imported only
then), which also refuses alias bombs and recursive aliases before anything walks the data.
Timestamps stay strings, as the API server sees them after kubectl converts YAML to JSON. The
cyclic garbage collector is paused while loading (see :func:`paused_gc`).
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import gc
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TextIO

from airlock.compilecache import regex
from airlock.detectors import redact
from airlock.errors import InputError
from airlock.records import field, record, replace
from airlock.scan.fastyaml import TextLines, load_documents

__all__ = [
    "MAX_ALIAS_EXPANSION",
    "NOT_MANIFESTS",
    "Document",
    "FindingLines",
    "Input",
    "LoadResult",
    "RawDocument",
    "describe_error",
    "iter_manifest_files",
    "list_inputs",
    "load_paths",
    "load_text",
    "load_yaml_exact",
    "parse_yaml",
    "paused_gc",
    "read_text",
    "resolved",
]

MAX_ALIAS_EXPANSION = 10_000
"""Nodes that aliases may add to one document (checked by :mod:`airlock.scan.exactyaml`).
Hand-written anchors (a shared env list reused by a few containers) add hundreds; an alias bomb
adds millions after a handful of lines."""

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
NOT_MANIFESTS = frozenset(
    {"kustomization.yaml", "kustomization.yml", "Chart.yaml", "values.yaml", "values.schema.json"}
)
"""Files that sit next to manifests in most repositories but are not Kubernetes objects
(kustomize and helm configuration). Skipped when found in a directory; read when named."""

# Where each field of a document is, kept beside the object instead of the node tree (which weighs
# ten times the object): a mapping's shadow is {key: line}, a sequence's [line, ...]; an entry is
# (line, shadow) when the value is itself a collection. Lines are 0-based and relative to the
# document's first line, so nearly all of them are small cached ints and cost no memory.
Shadow = dict[Any, Any] | list[Any]

_SOURCE_COMMENT = regex(r"^#\s*Source:\s*(\S[^\r\n]*?)\s*$", re.MULTILINE)
# a JSON path as the rules write it: name, [index], ["quoted key"]
_PATH_TOKEN = regex(r"""\[(\d+)\]|\["((?:[^"\\]|\\.)*)"\]|\['([^']*)'\]|([^.\[\]]+)""")


@record(frozen=True)
class FindingLines:
    """The lines of a judged document's findings: all a report needs once the object is gone."""

    by_path: Mapping[str, int]


@record(frozen=True)
class Document:
    """One Kubernetes object read from one document (or one item of a ``kind: List``)."""

    file: str  # the path as the user named it (or found under a directory); "-" for stdin
    index: int  # 1-based document index within the file
    obj: Mapping[str, Any]
    line: int = 1  # 1-based line where the object starts
    item: int | None = None  # index in the List's ``items`` when the document is a List
    source: str | None = None  # helm's "# Source: chart/templates/x.yaml" for this document
    # where fields are: a shadow of line numbers (PyYAML path), the text to search (fast path),
    # or, once judged, just the lines of the findings
    lines: Shadow | TextLines | FindingLines | None = field(default=None, repr=False, compare=False)
    base: int = 0  # 0-based line the shadow's lines are relative to

    @property
    def display(self) -> str:
        """The file name a user reads: helm template output names the template it came from."""
        return f"{self.file} ({self.source})" if self.source else self.file

    @property
    def location(self) -> str:
        where = f"{self.display}, document {self.index}"
        return where if self.item is None else f"{where}, items[{self.item}]"

    def line_of(self, path: str) -> int:
        """Line of the field at ``path`` (``spec.containers[1].env[3].value``), as close as known.

        Falls back to the deepest field found, then to the object's start (JSON input has no
        line information: every finding points at the document).
        """
        shadow: Any = self.lines
        if shadow is None:
            return self.line
        if isinstance(shadow, FindingLines):
            return shadow.by_path.get(path, self.line)
        tokens = _path_tokens(path)
        if isinstance(shadow, TextLines):
            return shadow.line_of(tokens) + 1
        line = self.line - 1 - self.base
        i = 0
        n = len(tokens)
        while i < n and shadow is not None:
            token = tokens[i]
            entry: Any = None
            if isinstance(token, int):
                if isinstance(shadow, list) and token < len(shadow):
                    entry = shadow[token]
                    i += 1
            elif isinstance(shadow, dict):
                entry = shadow.get(token)
                i += 1
                # a key may itself contain dots (labels["app.kubernetes.io/name"] written
                # without brackets): join the following name tokens until one matches
                j = i
                while entry is None and j < n and isinstance(tokens[j], str):
                    j += 1
                    entry = shadow.get(".".join(str(t) for t in tokens[i - 1 : j]))
                    if entry is not None:
                        i = j
            if entry is None:
                break
            line, shadow = entry if isinstance(entry, tuple) else (entry, None)
        return self.base + line + 1


def resolved(doc: Document, paths: Iterable[str]) -> Document:
    """``doc`` without its object and line index, keeping the line of each of ``paths`` (and the
    object's identity: apiVersion, kind, name, namespace). A scan keeps these, not the objects."""
    obj = doc.obj
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    stub = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": {k: meta[k] for k in ("name", "namespace") if k in meta},
    }
    lines = FindingLines({p: doc.line_of(p) for p in paths})
    return replace(doc, obj=stub, lines=lines)


@functools.lru_cache(maxsize=8192)
def _path_tokens(path: str) -> tuple[str | int, ...]:
    """``spec.containers[1].env[3].value`` -> ("spec", "containers", 1, "env", 3, "value")."""
    tokens: list[str | int] = []
    for m in _PATH_TOKEN.finditer(path):
        index, dquoted, squoted, name = m.groups()
        if index is not None:
            tokens.append(int(index))
        elif dquoted is not None:
            tokens.append(dquoted.replace('\\"', '"').replace("\\\\", "\\"))
        else:
            tokens.append(squoted if squoted is not None else name)
    return tuple(tokens)


@record
class LoadResult:
    documents: list[Document] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0  # files (and stdin) read successfully or not


def describe_error(err: InputError) -> str:
    """``k8s/app.yaml, document 3: line 12: mapping values are not allowed here`` (a parser's
    words may quote the input: an alias or tag name)."""
    if err.source is None:
        return redact(err.detail)
    where = err.source if err.document is None else f"{err.source}, document {err.document}"
    return redact(f"{where}: {err.detail}")


def iter_manifest_files(directory: str) -> Iterator[str]:
    """Manifest files under ``directory``, recursively, sorted; hidden files and directories and
    :data:`NOT_MANIFESTS` are skipped, a directory that cannot be listed is passed over, and a
    symbolic link to a directory is not followed (as ``os.walk`` does, without its ``lstat`` of
    every directory: the entry's type says whether it is a link)."""
    try:
        with os.scandir(directory) as listing:
            entries = sorted(listing, key=_entry_name)
    except OSError:
        return
    below = []
    for entry in entries:
        name = entry.name
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not name.startswith("."):
                below.append(entry)
        elif (
            not name.startswith(".")
            and name.lower().endswith(MANIFEST_SUFFIXES)
            and name not in NOT_MANIFESTS
        ):
            yield entry.path
    for entry in below:
        try:
            link = entry.is_symlink()
        except OSError:
            link = True
        if not link:
            yield from iter_manifest_files(entry.path)


def _entry_name(entry: os.DirEntry[str]) -> str:
    return entry.name


def load_paths(paths: Sequence[str], *, stdin: TextIO | None = None) -> LoadResult:
    """Read every named file, directory (recursively) and ``-`` (standard input).

    The cyclic garbage collector is paused meanwhile: parsing allocates millions of small
    acyclic objects, and each collection would walk every object loaded so far (three times
    slower on 5,000 manifests). Nothing here creates cycles: recursive aliases are refused.
    """
    with paused_gc():
        return _load_paths(paths, stdin)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector (reference counting still frees everything).

    A scan holds thousands of parsed manifests; every collection triggered while more are
    allocated walks all of them again. Manifests, verdicts and reports hold no cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@record(frozen=True)
class Input:
    """One input of a scan, not yet read: a file, standard input (its text), or an error."""

    name: str
    text: str | None = None  # standard input, read once
    error: InputError | None = None

    def load(self, text: str | None = None) -> tuple[list[Document], list[InputError]]:
        """Read and parse this input (a file is read from disk at each call, unless ``text``
        is what :meth:`read` gave a moment ago)."""
        if self.error is not None:
            return [], [self.error]
        if self.text is not None:
            return load_text(self.text, self.name)
        return _load_file(self.name, text)

    @property
    def size(self) -> int:
        """About how much there is to judge (bytes of a file, characters of stdin)."""
        if self.error is not None:
            return 0
        if self.text is not None:
            return len(self.text)
        try:
            return os.stat(self.name).st_size
        except OSError:
            return 0

    def read(self) -> str | None:
        """The input's text, or ``None`` when it cannot be read (``load`` says why)."""
        if self.error is not None:
            return None
        if self.text is not None:
            return self.text
        try:
            return read_text(self.name)
        except InputError:
            return None


def list_inputs(paths: Sequence[str], *, stdin: TextIO | None = None) -> list[Input]:
    """Every file named or found under a named directory (sorted), ``-`` read once, and an
    error for each path that names nothing readable."""
    inputs: list[Input] = []
    for arg in paths:
        if arg == "-":
            if stdin is None:
                inputs.append(Input("-", error=InputError("standard input is not available", "-")))
            else:
                inputs.append(Input("-", text=stdin.read()))
        elif os.path.isdir(arg):
            found = [Input(path) for path in iter_manifest_files(arg)]
            none = InputError("no *.yaml, *.yml or *.json files found", arg)
            inputs.extend(found or [Input(arg, error=none)])
        elif os.path.exists(arg):
            inputs.append(Input(arg))
        else:
            inputs.append(Input(arg, error=InputError("no such file or directory", arg)))
    return inputs


def _load_paths(paths: Sequence[str], stdin: TextIO | None) -> LoadResult:
    result = LoadResult()
    for source in list_inputs(paths, stdin=stdin):
        result.files += source.error is None
        _extend(result, source.load())
    return result


def _extend(result: LoadResult, loaded: tuple[list[Document], list[InputError]]) -> None:
    result.documents.extend(loaded[0])
    result.errors.extend(loaded[1])


def _load_file(path: str, text: str | None = None) -> tuple[list[Document], list[InputError]]:
    """The file at ``path`` parsed (``text``: what was read of it a moment ago)."""
    if text is None:
        try:
            text = read_text(path)
        except InputError as exc:
            return [], [exc]
    return load_text(text, path, json_first=path.lower().endswith(".json"))


def load_text(
    text: str, name: str, *, json_first: bool = False
) -> tuple[list[Document], list[InputError]]:
    """Parse one file's text: JSON when it is JSON, else a YAML stream of documents.

    A ``\\uD800``-style escape of half a surrogate pair decodes to a character no UTF-8 output
    can hold; like the API server's JSON decoder, each becomes U+FFFD.
    """
    docs, errors = _parse_text(text, name, json_first=json_first)
    if _SURROGATE_ESCAPE.search(text) is not None:
        docs = [replace(d, obj=_without_surrogates(d.obj)) for d in docs]
    return docs, errors


_SURROGATE_ESCAPE = regex(r"\\(?:u|U0000)[dD][89a-fA-F]")
_LONE_SURROGATE = regex("[\ud800-\udfff]")


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, Mapping):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    return value


def _parse_text(
    text: str, name: str, *, json_first: bool
) -> tuple[list[Document], list[InputError]]:
    if json_first or text.lstrip()[:1] in ("{", "["):
        import json  # only for JSON input: a scan of YAML does without it

        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if json_first:
                return [], [InputError(f"line {exc.lineno}: {exc.msg}", name, 1)]
            # YAML flow style also starts with "{": let the YAML parser have its say
        except RecursionError:
            return [], [InputError("nested too deeply", name, 1)]
        else:
            docs: list[Document] = []
            errors: list[InputError] = []
            _accept(value, name, 1, line=1, source=None, lines=None, docs=docs, errors=errors)
            return docs, errors
    return _load_yaml(text, name)


@record(frozen=True)
class RawDocument:
    """A parsed, not yet validated document: what the policy loader and the scanner share."""

    index: int
    value: Any
    line: int  # 1-based
    source: str | None
    lines: Shadow | None = None


def parse_yaml(text: str, name: str, errors: list[InputError]) -> Iterator[RawDocument]:
    """Parse a YAML stream lazily with PyYAML, appending unusable documents to ``errors``."""
    from airlock.scan.exactyaml import parse  # PyYAML only when a file needs it (start-up)

    return parse(text, name, errors)


def _load_yaml(text: str, name: str) -> tuple[list[Document], list[InputError]]:
    docs: list[Document] = []
    errors: list[InputError] = []
    fast = load_documents(text)
    if fast is not None:
        sources = _source_comments(text) if "# Source:" in text else None
        for index, (value, mark, first, where) in enumerate(fast, 1):
            source = _source_for(sources, mark, first) if sources and first >= 0 else None
            _accept(
                value,
                name,
                index,
                line=first + 1,
                source=source,
                lines=where,
                docs=docs,
                errors=errors,
            )
        return docs, errors
    return load_yaml_exact(text, name)


def load_yaml_exact(text: str, name: str) -> tuple[list[Document], list[InputError]]:
    """A YAML stream's objects read by the exact (PyYAML) path only, whatever the fast path
    would do: what the fast path is compared with, and where it sends what it declines."""
    docs: list[Document] = []
    errors: list[InputError] = []
    for raw in parse_yaml(text, name, errors):
        _accept(
            raw.value,
            name,
            raw.index,
            line=raw.line,
            source=raw.source,
            lines=raw.lines,
            docs=docs,
            errors=errors,
        )
    return docs, errors


_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def read_text(path: str) -> str:
    """A file's text; raises :class:`InputError` naming the file when it cannot be read.

    Read through the descriptor, without a file object: a scan reads every file (twice when it
    is beyond what the context pass keeps), and ``open()`` costs 15 µs a file, this 9."""
    try:
        fd = os.open(path, _READ_FLAGS)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
        finally:
            os.close(fd)
        data = b"".join(chunks)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or type(exc).__name__}", path) from None
    try:
        # UTF-8's decoder in C; "utf-8-sig" goes through a codec written in Python (and a
        # module loaded for it): a leading byte order mark is dropped here instead
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", path) from None
    return text[1:] if text.startswith("\ufeff") else text


def _accept(
    value: Any,
    name: str,
    index: int,
    *,
    line: int,
    source: str | None,
    lines: Shadow | TextLines | None,
    docs: list[Document],
    errors: list[InputError],
) -> None:
    """Validate one parsed document and append it (or the items of a List) to ``docs``."""
    if value is None:
        return  # empty document: helm emits them for templates that render nothing
    problem = _object_problem(value)
    if problem:
        errors.append(InputError(f"line {line}: {problem}", name, index))
        return
    if value["kind"] == "List" or (
        value["kind"].endswith("List") and isinstance(value.get("items"), list)
    ):
        items = value.get("items")
        if items is None:
            return
        if not isinstance(items, list):
            errors.append(InputError(f"line {line}: items of a List must be a list", name, index))
            return
        base = line - 1
        if isinstance(lines, TextLines):
            for i, item in enumerate(items):
                at = lines.item(i)
                item_line = at.line_of(()) + 1
                problem = _object_problem(item)
                if problem:
                    errors.append(
                        InputError(f"line {item_line}: items[{i}]: {problem}", name, index)
                    )
                    continue
                docs.append(Document(name, index, item, item_line, i, source, at, base))
            return
        entry = lines.get("items") if isinstance(lines, dict) else None
        item_marks = entry[1] if isinstance(entry, tuple) and isinstance(entry[1], list) else []
        for i, item in enumerate(items):
            mark = item_marks[i] if i < len(item_marks) else None
            item_line, item_lines = mark if isinstance(mark, tuple) else (mark, None)
            item_line = line if item_line is None else base + item_line + 1
            problem = _object_problem(item)
            if problem:
                errors.append(InputError(f"line {item_line}: items[{i}]: {problem}", name, index))
                continue
            docs.append(Document(name, index, item, item_line, i, source, item_lines, base))
        return
    docs.append(Document(name, index, value, line, None, source, lines, line - 1))


def _object_problem(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        what = "a list" if isinstance(value, list) else f"a {type(value).__name__}"
        return f"expected a Kubernetes object (a mapping), found {what}"
    for key in ("apiVersion", "kind"):
        field_value = value.get(key)
        if field_value is None or field_value == "":
            return f"missing {key}"
        if not isinstance(field_value, str):
            return f"{key} must be a string"
    return None


def _source_comments(text: str) -> tuple[list[int], list[str]]:
    """0-based line numbers and paths of helm's ``# Source:`` comments, in order."""
    lines: list[int] = []
    paths: list[str] = []
    line = 0
    last = 0
    for m in _SOURCE_COMMENT.finditer(text):
        line += text.count("\n", last, m.start())
        last = m.start()
        lines.append(line)
        paths.append(m.group(1))
    return lines, paths


def _source_for(sources: tuple[list[int], list[str]], after: int, before: int) -> str | None:
    """The last Source comment between the previous document's end and this one's start."""
    lines, paths = sources
    i = bisect.bisect_left(lines, before) - 1
    if i >= 0 and lines[i] >= after:
        return paths[i]
    return None
