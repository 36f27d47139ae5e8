"""The exact YAML path of ``airlock scan``: PyYAML with libyaml, as the Kubernetes tools read YAML.

Imported only when a file needs it (the fast path of :mod:`airlock.scan.fastyaml` declined it, or
a policy file is read), so a scan of ordinary manifests starts without PyYAML. Plain maps, lists
and scalars are built by a direct walk of libyaml's nodes instead of PyYAML's generator-based
constructor, tag resolution of repeated scalars is memoised, and a line "shadow" is kept beside
each object. Alias bombs and recursive aliases are refused before anything walks the data.
Timestamps stay strings, as the API server sees them after kubectl converts YAML to JSON.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import Any

import yaml

from airlock.errors import InputError
from airlock.scan.loader import (
    MAX_ALIAS_EXPANSION,
    RawDocument,
    Shadow,
    _source_comments,
    _source_for,
)

__all__ = ["Loader", "parse"]

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_RESOLVED: dict[str, str] = {}  # plain scalar -> tag; manifests repeat the same few thousand
_RESOLVED_MAX = 200_000


class Loader(_BaseLoader):  # type: ignore[misc]
    """Safe loader that keeps timestamps as strings, like the API server's JSON does.

    Tag resolution of plain scalars (a handful of regexes per scalar) is memoised: keys and most
    values repeat across manifests, and resolution depends on nothing but the text.
    """

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if not implicit[0]:
                return _STR  # quoted: always a string (explicit tags never reach resolve)
            tag = _RESOLVED.get(value)
            if tag is None:
                tag = super().resolve(kind, value, implicit)
                if len(_RESOLVED) < _RESOLVED_MAX:
                    _RESOLVED[value] = tag
            return tag
        return _MAP if kind is yaml.MappingNode else _SEQ

    # Path resolvers are never registered, so the per-node hooks have nothing to do: a C no-op
    # (two arguments, no effect) spares a Python call per node.
    descend_resolver = staticmethod(operator.is_)
    ascend_resolver = staticmethod(tuple)


Loader.add_constructor("tag:yaml.org,2002:timestamp", Loader.construct_yaml_str)


class _Unusual(Exception):  # noqa: N818 - control flow, never escapes this module
    """A node the fast constructor leaves to PyYAML's own (merge keys, odd tags, odd keys)."""


def _construct(loader: Any, root: yaml.Node, shared: bool) -> tuple[Any, Shadow | None]:
    """Build plain dicts, lists and scalars from a node tree, and the tree's line shadow.

    PyYAML's constructor goes through generators and per-node bookkeeping; manifests are plain
    maps, lists and scalars, for which a direct walk is several times faster. Anything else
    (merge keys, unusual tags or keys) falls back to ``construct_document``. With ``shared``
    (the text has anchors) an aliased node is built once, as PyYAML does.
    """
    constructors = loader.yaml_constructors
    memo: dict[int, tuple[Any, Shadow | None]] = {}
    base = root.start_mark.line
    scalar, mapping, sequence = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode

    def build(node: yaml.Node) -> tuple[Any, Shadow | None]:
        tag = node.tag
        kind = type(node)
        if kind is scalar:
            if tag == _STR:
                return node.value, None
            make = constructors.get(tag)
            if make is None:
                raise _Unusual
            return make(loader, node), None
        if shared:
            key = id(node)
            if key in memo:
                return memo[key]
        if tag == _MAP and kind is mapping:
            out: dict[Any, Any] = {}
            lines: dict[Any, Any] = {}
            if shared:
                memo[id(node)] = (out, lines)
            for k, v in node.value:
                if type(k) is not scalar or k.tag != _STR:
                    if k.tag == _MERGE or type(k) is not scalar:
                        raise _Unusual
                    name = build(k)[0]
                else:
                    name = k.value
                line = k.start_mark.line - base
                if type(v) is scalar and v.tag == _STR:
                    out[name] = v.value
                    lines[name] = line
                else:
                    value, sub = build(v)
                    out[name] = value
                    lines[name] = line if sub is None else (line, sub)
            return out, lines
        if tag == _SEQ and kind is sequence:
            seq: list[Any] = []
            marks: list[Any] = []
            if shared:
                memo[id(node)] = (seq, marks)
            for child in node.value:
                value, sub = build(child)
                seq.append(value)
                line = child.start_mark.line - base
                marks.append(line if sub is None else (line, sub))
            return seq, marks
        raise _Unusual

    try:
        return build(root)
    except _Unusual:
        return loader.construct_document(root), _shadow_of(root, base)


def _shadow_of(node: yaml.Node, base: int) -> Shadow | None:
    """The line shadow of a node tree on its own, for the rare documents built by PyYAML."""
    if isinstance(node, yaml.MappingNode):
        lines: dict[Any, Any] = {}
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                sub = _shadow_of(v, base)
                line = k.start_mark.line - base
                lines[k.value] = line if sub is None else (line, sub)
        return lines
    if isinstance(node, yaml.SequenceNode):
        marks: list[Any] = []
        for child in node.value:
            sub = _shadow_of(child, base)
            line = child.start_mark.line - base
            marks.append(line if sub is None else (line, sub))
        return marks
    return None


def parse(text: str, name: str, errors: list[InputError]) -> Iterator[RawDocument]:
    """Parse a YAML stream lazily, appending unusable documents to ``errors``."""
    sources = _source_comments(text) if "# Source:" in text else None
    check_aliases = "&" in text  # no anchor, no alias: skip the walk for almost every file
    loader = Loader(text)
    index = 0
    previous_end = -1
    try:
        while True:
            index += 1
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
            except yaml.MarkedYAMLError as exc:
                # the stream cannot be resynchronised after a syntax error: stop this file
                errors.append(InputError(_yaml_problem(exc), name, index))
                break
            except yaml.reader.ReaderError as exc:
                errors.append(InputError(_reader_problem(exc, text), name, index))
                break
            except yaml.YAMLError as exc:
                errors.append(InputError(f"invalid YAML: {type(exc).__name__}", name, index))
                break
            start = node.start_mark.line
            source = _source_for(sources, previous_end, start) if sources else None
            previous_end = node.end_mark.line
            if check_aliases:
                problem = _alias_problem(node)
                if problem:
                    errors.append(InputError(f"line {start + 1}: {problem}", name, index))
                    continue
            try:
                value, lines = _construct(loader, node, check_aliases)
            except yaml.MarkedYAMLError as exc:
                errors.append(InputError(_yaml_problem(exc), name, index))
                continue
            except RecursionError:
                errors.append(InputError(f"line {start + 1}: nested too deeply", name, index))
                continue
            yield RawDocument(index, value, start + 1, source, lines)
    except RecursionError:
        errors.append(InputError("nested too deeply", name, index))
    finally:
        loader.dispose()


def _reader_problem(exc: yaml.reader.ReaderError, text: str) -> str:
    """Where the character YAML does not allow is, and its code (never the text around it).
    libyaml counts the position in bytes of the UTF-8 text, PyYAML's reader in characters."""
    at = exc.position if isinstance(exc.position, int) and exc.position > 0 else 0
    data = text.encode("utf-8", "surrogatepass")
    before = (
        data[:at] if _BaseLoader is not yaml.SafeLoader else text[:at].encode("utf-8", "replace")
    )
    line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    code = exc.character
    if isinstance(code, str):
        code = ord(code[0]) if code else -1
    what = f"character U+{code:04X}" if isinstance(code, int) and code >= 0 else "a character"
    return (
        f"line {line}: {what} is not allowed in YAML "
        "(only printable characters, tabs and line breaks are; is this a binary file?)"
    )


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    # only the parser's own words and the line: never str(exc), which may quote the source line
    problem = exc.problem or exc.context or "invalid YAML"
    mark = exc.problem_mark or exc.context_mark
    return f"line {mark.line + 1}: {problem}" if mark is not None else problem


def _children(node: yaml.Node) -> Iterable[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def _alias_problem(root: yaml.Node) -> str | None:
    """Why a document's aliases make it unsafe to walk, or ``None``.

    An alias is the same node object reached twice, so the expanded size is computed once per
    distinct node (memoised, iterative: linear in the document's text, whatever it expands to).
    """
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                return "recursive YAML alias (a node that contains itself)"
            if id(child) not in size:
                stack.append((child, False))
    if size[id(root)] - len(size) > MAX_ALIAS_EXPANSION:
        return (
            f"YAML aliases expand this document by more than {MAX_ALIAS_EXPANSION} nodes "
            "(possible alias bomb); refusing to read it"
        )
    return None
