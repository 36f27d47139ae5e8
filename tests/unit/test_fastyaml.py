"""The scan's YAML fast path gives what the exact (PyYAML) path gives: values, documents, lines.

Whatever the fast path reads, it must read as PyYAML (YAML 1.1, like the Kubernetes tools) does,
and every field's line must be the one the exact path's line shadow gives; what it cannot read
the same way must go to the exact path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.errors import InputError
from airlock.scan import fastyaml, loader
from airlock.scan.exactyaml import Loader
from airlock.scan.fastyaml import TextLines, load_documents
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
FIXTURES = sorted(
    p
    for base in ("tests/fixtures", "manifests")
    for p in (REPO / base).rglob("*")
    if p.suffix in (".yaml", ".yml")
)


def exact(text: str, name: str = "f.yaml") -> tuple[list[loader.Document], list[InputError]]:
    return loader.load_yaml_exact(text, name)


def field_paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict):
        for key, sub in value.items():
            if not isinstance(key, str):
                continue
            simple = key.replace("_", "a").replace("-", "a").isalnum()
            path = (f"{prefix}.{key}" if prefix else key) if simple else f'{prefix}["{key}"]'
            yield path
            yield from field_paths(sub, path)
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield f"{prefix}[{i}]"
            yield from field_paths(sub, f"{prefix}[{i}]")


def assert_same(text: str) -> int:
    """Both paths agree on ``text``; returns how many field lines were compared."""
    fast, fast_errors = loader._load_yaml(text, "f.yaml")
    slow, slow_errors = exact(text)
    assert [(e.detail, e.document) for e in fast_errors] == [
        (e.detail, e.document) for e in slow_errors
    ]
    assert len(fast) == len(slow)
    compared = 0
    for a, b in zip(fast, slow, strict=True):
        assert (a.obj, a.line, a.index, a.item, a.source) == (
            b.obj,
            b.line,
            b.index,
            b.item,
            b.source,
        )
        for path in field_paths(a.obj):
            assert a.line_of(path) == b.line_of(path), path
            compared += 1
    return compared


@pytest.mark.parametrize("path", FIXTURES, ids=[str(p.relative_to(REPO)) for p in FIXTURES])
def test_every_fixture_reads_the_same_on_both_paths(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    if text.lstrip()[:1] in ("{", "["):
        pytest.skip("JSON: read by the JSON parser, not YAML")
    assert_same(text)


def test_most_fixtures_take_the_fast_path() -> None:
    texts = [p.read_text(encoding="utf-8-sig") for p in FIXTURES]
    fast = sum(load_documents(t) is not None for t in texts)
    assert fast >= 0.7 * len(texts)  # the rest are deliberate edge cases


MULTI = """\
# Source: chart/templates/a.yaml
apiVersion: v1
kind: Pod
metadata:
  name: a
  labels: {app: a}
spec:
  containers:
  - name: main
    image: "x:1"
    args: ["--port", "80"]
    command:
      - sh
      -   -c
    env:
    -
      name: A
      value: |
        multi
        line
    - name: "B.C"
      value: 'it''s'
---
---
# Source: chart/templates/b.yaml

apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: c}
  data:
    "a.b": x
    k: >-
      folded
- apiVersion: v1
  kind: Secret
  metadata:
    name: s
"""


def test_documents_lists_sources_and_odd_layouts_agree() -> None:
    assert load_documents(MULTI) is not None
    assert assert_same(MULTI) > 20
    docs, _ = loader._load_yaml(MULTI, "f.yaml")
    assert [(d.index, d.item, d.line, d.source) for d in docs] == [
        (1, None, 2, "chart/templates/a.yaml"),
        (3, 0, 30, "chart/templates/b.yaml"),
        (3, 1, 37, "chart/templates/b.yaml"),
    ]
    assert docs[0].line_of("spec.containers[0].env[0].value") == 18
    assert docs[0].line_of("spec.containers[0].command[1]") == 14
    assert docs[1].line_of('data["a.b"]') == 34


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("privileged: yes", True),
        ("a: on", True),
        ("a: Off", False),
        ("mode: 0644", 420),
        ("mode: -0_644", -420),
        ("a: 0o17", "0o17"),
        ("a: 0b101_1", 11),
        ("a: 0B101", "0B101"),
        ("a: 0x1_F", 31),
        ("a: 1_000", 1000),
        ("a: 1_0.5", 10.5),
        ("a: 1e3", "1e3"),
        ("a: 1.0e3", "1.0e3"),
        ("a: 1.5e+3", 1500.0),
        ("a: 1:20", 80),
        ("a: 1:20.5", 80.5),
        ("a: 1:5:0.03", 3900.0299999999997),  # summed from the last part, as PyYAML does
        ("a: 0:20", "0:20"),
        ("a: +.5", "+.5"),
        ("a: [1, no, 0777]", [1, False, 511]),
        ("a: {m: 0755, b: yes}", {"m": 493, "b": True}),
        ("a:\n- on\n- 1_000  # a comment\n", [True, 1000]),
        ("# mode: 0777 (a comment line)\na: 0600", 384),
    ],
)
def test_what_yaml_1_1_reads_otherwise_is_read_as_yaml_1_1(text: str, value: Any) -> None:
    docs = load_documents(text)
    assert docs is not None
    assert (
        docs[0][0]["a" if text.startswith(("a", "#")) else text.split(":", maxsplit=1)[0]] == value
    )
    assert_same(f"apiVersion: v1\nkind: X\n{text}")


@pytest.mark.parametrize(
    "text",
    [
        "k:\n  off\n",  # a line of its own: it could be the text of a block scalar
        "k: |-\n  0755\n",
        "k: >-\n  yes\n",
        'k: "\n  0755\n  "',
        "k: x, on",  # one plain scalar
        "k: 0755\n  more\n",
        "k: 0755#x",
        "k: 1 # a: 0755",  # a stand-in in a comment does not come back
        "a: &x 1\nb: *x",
        "a: !!binary aGk=",
        "<<: {a: 1}",
        "a: 1\n<<: {b: 2}\n",
        "a: 1\non: 2\n",
        "a: 1\n0755: x\n",
        "a: 1\nyes: 2\n",
        "? 0755\n: x\n",
        "a: =",
        "a: 0b_",  # YAML 1.1 calls it an int its constructor cannot build: the exact path says so
        "a: 0755\nb: \ue0000\ue000",  # the text holds what a stand-in looks like
        "%YAML 1.1\n---\na: 1",
        "a: 1\n...\n---\nb: 2",
        "a: 1\na: 2",
        "--- {a: 1}",
        "args: [\n  a: b,\n  c]\n",
        "a: 'unterminated",
        "a:\n  - 0000:50:00.0\n",  # begins like a PCI address: a YAML 1.1 sexagesimal float
        "a:\n  - 0000:5c: x\n",  # a key after all
        "a: [0000:5c]\n",  # in a flow, ":" ends a plain scalar for PyYAML
    ],
)
def test_what_the_fast_path_cannot_settle_takes_the_exact_path(text: str) -> None:
    assert load_documents(text) is None


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("a: 'yes'", "yes"),
        ('a: "0644"', "0644"),
        ("s: 24 */6 * * *", "24 */6 * * *"),
        ("a: 0b2577", "0b2577"),
        ("url: http://h/p?a=1&b=2", "http://h/p?a=1&b=2"),
        ("a: 8080:80", "8080:80"),
        ("a: 1.5", 1.5),
        ("a: 2026-01-01", "2026-01-01"),
        ("script: |\n  cat <<EOF\n  x\n  EOF\n", "cat <<EOF\nx\nEOF\n"),
        # a PCI address in a block sequence: "0000" would be octal, but the scalar goes on
        ("devices:\n  - 0000:5c:00.0\n  - 0000:bb:00.1 # NIC\n", ["0000:5c:00.0", "0000:bb:00.1"]),
    ],
)
def test_common_scalars_stay_on_the_fast_path_with_the_same_value(text: str, value: Any) -> None:
    docs = load_documents(text)
    assert docs is not None
    assert docs[0][0] == {text.split(":", maxsplit=1)[0]: value} == yaml.load(text, Loader)  # noqa: S506


KEYS = st.text(alphabet="abcXYZ_-.", min_size=1, max_size=8).filter(
    lambda k: k[0] not in "-." and k not in ("yes", "no", "on", "off")
)
SCALARS = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.booleans(),
    st.none(),
    st.text(alphabet="abc xyz:/-_.#'\"0189", max_size=12),
)
TREES = st.recursive(
    SCALARS,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(KEYS, kids, min_size=1, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(
    tree=st.dictionaries(KEYS, TREES, min_size=1, max_size=5),
    indent=st.sampled_from([2, 4]),
    flow=st.booleans(),
)
def test_generated_documents_agree(tree: dict[str, Any], indent: int, flow: bool) -> None:
    body = yaml.safe_dump(tree, indent=indent, default_flow_style=None if flow else False)
    text = "apiVersion: v1\nkind: X\n" + body
    assert_same(text)


def test_a_flow_collection_on_the_line_after_its_key() -> None:
    text = "apiVersion: v1\nkind: Pod\nspec:\n  args:\n    [a, b]\n  c:\n    - {x: 1}\n"
    assert load_documents(text) is not None
    assert assert_same(text) == 9  # apiVersion, kind, spec, args, 2 items, c, c[0], x
    (doc,), _ = loader._load_yaml(text, "f.yaml")
    assert [doc.line_of(p) for p in ("spec.args", "spec.args[1]", "spec.c[0].x")] == [4, 5, 7]


def test_a_lookup_that_is_not_there_falls_back_to_the_deepest_field() -> None:
    lines = ["spec:", "  containers:", "  - name: a", "    image: b"]
    where = TextLines(lines, 0, len(lines))
    assert where.line_of(("spec", "containers", 0, "image")) == 3
    assert where.line_of(("spec", "containers", 5, "image")) == 1
    assert where.line_of(("spec", "volumes")) == 0


@pytest.mark.parametrize(
    "text",
    [
        # a comment that ends in a comma
        "apiVersion: v1\nkind: Pod\n# a, b and c,\nspec:\n  a: 1\n",
        # JSON and code in block scalars, their lines ending in "{", "[" or ","
        'apiVersion: v1\nkind: ConfigMap\ndata:\n  p.json: |\n    {\n      "a": [\n'
        "        1,\n      ]\n    }\n  b: x\n",
        "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - args:\n    - |\n      f(a,\n"
        "        b)\n    - >-\n      [x,\n    name: c\n",
        "apiVersion: v1\nkind: Pod\nspec:\n  a:\n  - - key: |2\n        }\n        [\n"
        "      other: 1\n",
    ],
)
def test_commas_and_brackets_in_comments_and_block_scalars_stay_on_the_fast_path(
    text: str,
) -> None:
    assert load_documents(text) is not None
    assert assert_same(text) > 2


@pytest.mark.parametrize(
    ("text", "fast"),
    [
        # the block scalar ends where a line is no deeper than its key: the flow after is real
        ("apiVersion: v1\nkind: Pod\nspec:\n  s: |\n    a,\n  args: [\n    x]\n", True),
        # a line break inside a flow collection's plain scalar (the folded "0 0")
        ("apiVersion: v1\nkind: X\nk: {a: 0\n    0, b: null}\n", False),
        # a quoted "}" does not close the flow mapping
        ('apiVersion: v1\nkind: X\nk: {a: "x}", b:\n    1}\n', False),
        # a "|" at the end of a comment starts no block scalar
        ("apiVersion: v1\nkind: Pod\nspec:\n  a:  # left |\n    args: [a,\n      b]\n", True),
        ("apiVersion: v1\nkind: Pod\nspec:\n  a:\t# left |\n    args: [a,\n      b]\n", True),
        ("apiVersion: v1\nkind: Pod\nspec:\n- a:\t# c >\n  args: [a,\n    b]\n", True),
        # a key's block scalar in a sequence item: its text must be deeper than the key
        ("apiVersion: v1\nkind: Pod\nspec:\n- k: |\n    t\n  args: [a,\n    b]\n", True),
        # a bracket in a plain key does not balance the flow collection after it
        ("apiVersion: v1\nkind: X\na]: [b,\n  c]\n", True),
        ("apiVersion: v1\nkind: X\na}: {b: 1,\n c: 2}\n", False),
        # an apostrophe or a double quote inside a plain scalar starts no quoted scalar
        ("apiVersion: v1\nkind: X\na: [it's, 'x]',\n  y]\n", True),
        ('apiVersion: v1\nkind: X\na: [b"c, "]",\n  d]\n', True),
        # a quoted scalar over two lines inside a flow collection
        ('apiVersion: v1\nkind: X\na: ["x]\n  y", z]\n', False),
    ],
)
def test_a_flow_collection_over_lines_reads_the_same_on_both_paths(text: str, fast: bool) -> None:
    """A flow sequence of scalars over lines is read by the fast path, its items' lines too;
    other flow collections over lines go to the exact path."""
    assert (load_documents(text) is not None) is fast
    assert assert_same(text) > 2


_COMMAND = (
    "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n"
    "    image: x\n"
)


@pytest.mark.parametrize(
    "flow",
    [
        # the layouts people write a command in
        '    command:\n      [\n        "python",\n        "-m",\n        "serve",\n      ]\n',
        '    command: [\n      "python", "-m",\n      "serve"]\n',
        '    command: [\n      "python",\n      "--token=abc"\n    ]\n',
        "    command: ['python',\n              '-m', serve,\n              x.py]\n",
        '    args:\n    - [\n        "a",\n        "b"]\n    - c\n',
        '    command:\n      [\n\n        "a" ,\n        "b"\n        ,\n        "c"\n      ]\n',
        '    command: [\n      "a",\n      "b",\n    ]\n    env:\n    - name: A\n'
        '      value: "1"\n',
    ],
)
def test_a_command_written_as_a_flow_over_lines_stays_on_the_fast_path(flow: str) -> None:
    text = _COMMAND + flow + "  - name: d\n    image: y\n"
    assert load_documents(text) is not None
    assert assert_same(text) > 10


@pytest.mark.parametrize(
    "flow",
    [
        '    command: [\n    "a",\n    "b"]\n',  # items no deeper than their key
        '    command:\n      [\n     "a"]\n',  # an item left of its "["
        '    args:\n    - [\n      "a",\n    ]\n',  # "]" at its dash's column
        '    command: [\n      "a", # why\n      "b"]\n',  # a comment
        '    command: [\n      ["a"],\n      "b"]\n',  # a nested sequence
        '    command: [\n      {a: 1},\n      "b"]\n',  # a mapping
        '    command: [\n      a: 1,\n      "b"]\n',  # a pair
        "    command: [\n      a\n      b, c]\n",  # a plain scalar over two lines
        '    command: [\n      "a",\n      http://x?y]\n',  # ":" and "?" in a plain one
        '    command: [\n      &a "x",\n      *a]\n',  # an anchor and an alias
        '    command: [\n      "a",,\n      "b"]\n',  # an empty item
        '    command: [\n      "a" "b"]\n',  # two scalars without a comma
        '    command: [\n      x[0],\n      "b"]\n',  # a "[" ends a plain scalar in a flow
        '    command: [\n      x\ty,\n      "b"]\n',  # a tab in a plain one
        '    ? command\n    : [\n      "a",\n      "b"]\n',  # after an explicit key
    ],
)
def test_flows_over_lines_the_fast_path_cannot_place_go_to_the_exact_path(flow: str) -> None:
    text = _COMMAND + flow
    assert load_documents(text) is None
    assert_same(text)  # (the exact path's reading, or its error, whatever the path)


@pytest.mark.parametrize(
    "flow",
    [
        '    command:\n      [\n        "a",\n        "b"\n      ]\n',
        '    command: [\n      "a",\n      "b"]\n',
        "    command:\n      [\n      ]\n",
        '    command:\n      ["a", "b"]\n',
        '    args:\n    - [\n        "a"]\n',
    ],
)
def test_an_item_a_flow_does_not_have_is_placed_as_the_exact_path_places_it(flow: str) -> None:
    """A finding's path may name an item that is not there (``command[7]``): the line is the
    deepest field found, the key's (or the dash's), as on the exact path."""
    text = _COMMAND + flow
    fast, _ = loader._load_yaml(text, "f.yaml")
    slow, _ = exact(text)
    assert isinstance(fast[0].lines, TextLines)
    for path in ("spec.containers[0].command[7]", "spec.containers[0].args[0][5]"):
        assert fast[0].line_of(path) == slow[0].line_of(path), path
    assert_same(text)


_ITEM = st.one_of(
    st.text(alphabet="abc-=./_ ,]'", min_size=0, max_size=6).map(lambda s: '"' + s + '"'),
    st.text(alphabet='abc-=./_ ,]"', min_size=0, max_size=6).map(
        lambda s: "'" + s.replace("'", "''") + "'"
    ),
    st.text(alphabet="abc-=./_", min_size=1, max_size=6).filter(lambda s: s[0] not in "-"),
)


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(_ITEM, max_size=6),
    breaks=st.lists(st.sampled_from(["", "\n", " ", "\n\n"]), min_size=8, max_size=8),
    indent=st.integers(0, 8),
    closing=st.integers(0, 8),
    own_line=st.booleans(),
    dash=st.booleans(),
    trailing=st.booleans(),
)
def test_flow_sequences_over_lines_agree_with_the_exact_path(
    *,
    items: list[str],
    breaks: list[str],
    indent: int,
    closing: int,
    own_line: bool,
    dash: bool,
    trailing: bool,
) -> None:
    """Whatever the layout (line breaks between items, indentations, "]" alone, a trailing
    comma), the fast path reads it as the exact path does, or leaves it to the exact path."""
    pad, end_pad = " " * indent, " " * closing
    body = ""
    for n, item in enumerate(items):
        gap = breaks[n % len(breaks)].replace("\n", "\n" + pad)
        body += gap + item + ("," if n < len(items) - 1 or trailing else "")
    body += breaks[-1].replace("\n", "\n" + end_pad) + "]"
    opener = "\n    [" if own_line else " ["
    head = "    - a\n    - b" + opener if dash else "    args:" + opener
    if dash:
        text = _COMMAND + "    args:\n" + head.replace("    - b", "    -") + body + "\n    x: 1\n"
    else:
        text = _COMMAND + head + body + "\n    x: 1\n"
    assert_same(text)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings as literal block scalars (``|``), as people write scripts and JSON."""


_BlockDumper.add_representer(
    str,
    lambda dumper, s: dumper.represent_scalar(
        "tag:yaml.org,2002:str", s, style="|" if "\n" in s else None
    ),
)
BLOCK_TEXT = st.lists(
    st.text(alphabet="abc {}[],:#-'\"", min_size=1, max_size=10).map(str.strip).filter(bool),
    min_size=2,
    max_size=4,
).map(lambda lines: "\n".join(lines) + "\n")
MIXED = st.recursive(
    st.one_of(SCALARS, BLOCK_TEXT),
    lambda kids: st.one_of(
        st.lists(kids, max_size=4), st.dictionaries(KEYS, kids, min_size=1, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    tree=st.dictionaries(KEYS, MIXED, min_size=1, max_size=5),
    width=st.sampled_from([12, 30, 80]),
    flow=st.booleans(),
)
def test_block_scalars_beside_flow_collections_over_lines_agree(
    tree: dict[str, Any], width: int, flow: bool
) -> None:
    body = yaml.dump(
        tree, Dumper=_BlockDumper, width=width, default_flow_style=None if flow else False
    )
    assert_same("apiVersion: v1\nkind: X\n" + body)


class _Layout:
    """Block YAML written the many ways people write it: comments ending in ',', '|' or '[',
    tabs before '#', block scalars holding brackets and keys, flow collections over lines."""

    WORDS = (
        *("foo", "bar,", "x |", "y >", "a,b", "z", "1", "q#r", "w:", "[a, b]", "{k: v}", "it's"),
        *("0755", "yes", "1_000", "1:20", "[on, 0644]", "{m: 0600}"),  # YAML 1.1 reads otherwise
    )
    COMMENTS = ("", "", " # c", "  # a, b,", "\t# t |", " # x >", " # [", "\t# {")
    TEXT = (
        "{",
        "[",
        "a,",
        "]",
        "}",
        ",x",
        "key: v",
        "- item",
        "# hash",
        "x |",
        "",
        "0755",
        "m: on",
    )

    def __init__(self, rng: Any) -> None:
        self.rng = rng

    def block(self, ind: int) -> tuple[str, list[str]]:
        header = self.rng.choice(["|", ">", "|-", ">+", "|2"])
        inner = ind + (2 if header.endswith("2") else self.rng.randint(1, 3))
        lines = [
            " " * (inner + self.rng.choice([0, 0, 1, 2])) + t if t else ""
            for t in self.rng.choices(self.TEXT, k=self.rng.randint(1, 4))
        ]
        return " " + header + self.rng.choice(self.COMMENTS), lines

    def value(self, ind: int, depth: int) -> tuple[str, list[str]]:
        r = self.rng.random()
        if depth > 2 or r < 0.3:
            return " " + self.rng.choice(self.WORDS) + self.rng.choice(self.COMMENTS), []
        if r < 0.5:
            return self.block(ind)
        if r < 0.6:  # a flow collection over two lines: the break after an item or inside one
            first = self.rng.choice([" [a,", " {k: 0", " [it's, 'x]',", ' ["x]', " [a]"])
            return first + self.rng.choice(self.COMMENTS), [
                " " * (ind + 2) + self.rng.choice(["b]", "0}", 'y"]', "c"])
            ]
        if r < 0.8:
            return self.rng.choice(self.COMMENTS), self.mapping(ind + 2, depth + 1)
        return self.rng.choice(self.COMMENTS), self.sequence(ind + 2, depth + 1)

    def mapping(self, ind: int, depth: int) -> list[str]:
        out: list[str] = []
        for key in self.rng.sample(["a", "b", "name", "a]", "don't"], self.rng.randint(1, 3)):
            if self.rng.random() < 0.15:
                out.append(" " * self.rng.randint(0, ind + 3) + self.rng.choice(["# c,", "# z |"]))
            head, rest = self.value(ind, depth)
            out += [" " * ind + key + ":" + head, *rest]
        return out

    def sequence(self, ind: int, depth: int) -> list[str]:
        out: list[str] = []
        for _ in range(self.rng.randint(1, 3)):
            head, rest = self.value(ind, depth)
            out += [" " * ind + "-" + head, *rest]
        return out


@settings(max_examples=1500, deadline=None)
@given(rng=st.randoms(use_true_random=False))
def test_hand_written_layouts_agree_wherever_the_fast_path_takes_them(rng: Any) -> None:
    text = "apiVersion: v1\nkind: Pod\nspec:\n" + "\n".join(_Layout(rng).mapping(2, 0)) + "\n"
    try:
        yaml.load(text, Loader)  # noqa: S506 - the exact path's own loader
    except yaml.YAMLError:
        return  # not YAML: both paths report it (other tests)
    if load_documents(text) is not None:
        assert_same(text)


@pytest.mark.parametrize(
    "text",
    [
        # line breaks PyYAML (YAML 1.1) knows and the fast path's line lookups do not
        "apiVersion: v1\rkind: X\ra: 1\ryes: 2\r",
        "apiVersion: v1\nkind: X\na: [b,\u2028  c]\n",
        "apiVersion: v1\nkind: X\na: x\x85b\n",
        # the non-specific tag "!" alone
        "apiVersion: v1\nkind: X\na: ! [b, c]\n",
    ],
)
def test_what_only_the_exact_path_reads_right_goes_there(text: str) -> None:
    assert load_documents(text) is None
    exact(text)  # and it reads


def test_a_plain_key_may_hold_a_hash() -> None:
    text = "apiVersion: v1\nkind: X\na:\n  k#: 1\n  b: 2\n"
    assert load_documents(text) is not None
    assert assert_same(text) == 5


# Plain scalars around the ones YAML 1.1 and 1.2 read differently
TOKENS = st.builds(
    "".join,
    st.lists(
        st.sampled_from(
            ["0", "1", "7", "8", "_", ":", ".", "e", "E", "+", "-", "x", "b", "o", "5"]
        ),
        min_size=1,
        max_size=7,
    ),
) | st.sampled_from(["yes", "No", "ON", "off", "y", "n", "true", ".inf", "-.Inf"])


@settings(max_examples=1500, deadline=None)
@given(token=TOKENS)
def test_yaml_1_1_values_are_read_as_pyyaml_reads_them(token: str) -> None:
    try:
        want = yaml.load(f"k: {token}", Loader)["k"]  # noqa: S506 - the exact path's own loader
    except (yaml.YAMLError, ValueError):
        return  # not a scalar PyYAML reads, or one its constructor refuses
    got = fastyaml.yaml11(token)
    if got is fastyaml._UNSETTLED:
        return
    assert type(got) is type(want)
    assert got == want


@settings(max_examples=600, deadline=None)
@given(
    token=TOKENS,
    place=st.sampled_from(
        ["k: {t}", "k: [a, {t}]", "k: {{x: {t}}}", "k:\n- {t}  # c", "k: |-\n  {t}", "# {t}\nk: 1"]
    ),
)
def test_divergent_scalars_read_the_same_wherever_they_are(token: str, place: str) -> None:
    text = "apiVersion: v1\nkind: X\n" + place.format(t=token) + "\n"
    try:
        yaml.load(text, Loader)  # noqa: S506
    except (yaml.YAMLError, ValueError):
        return
    if load_documents(text) is not None:
        assert_same(text)


# Where a node starts (the text's start, or after a line break, "[", "{", ",", ":", "?" or "-",
# blanks aside), an anchor or alias ("&a", "*a") or a tag ("!"): the two regular expressions
# the fast path used before it read the marks with str.find, kept here as the definition.
_NODE_PROPERTY_DEFINED = re.compile(r"[\n\[{,:?\-][ \t]*+(?:[&*][^ \t\r\n,\]}]|!)")
_PROPERTY_HEAD_DEFINED = re.compile(r"[ \t]*+(?:[&*][^ \t\r\n,\]}]|!)")


@given(st.text(alphabet=" \t\r\n&*!-:,[]{}?a#'\"1", max_size=14))
def test_node_properties_are_found_where_a_node_starts(text: str) -> None:
    from airlock.scan.fastyaml import _node_property

    defined = bool(_PROPERTY_HEAD_DEFINED.match(text) or _NODE_PROPERTY_DEFINED.search(text))
    assert _node_property(text) is defined


# The lines that hold a bracket and the lines that start a document are found by searching the
# whole text; each must be what a walk over str.splitlines' lines finds, whatever the breaks.
_LINE_PIECES = st.lists(
    st.sampled_from(
        [
            "a: [1, 2]",
            "b: {c: d}",
            "---",
            "--- ",
            "--- # c",
            "---x",
            "- [",
            "]",
            "{",
            "k: v",
            "",
            " ---",
            "x: '[not'",
            "...",
            "#{",
            "a[0]",
        ]
    ),
    max_size=12,
)


@given(
    pieces=_LINE_PIECES,
    brk=st.sampled_from(["\n", "\r\n", "\n\x0c", "\x0b\n", "\n\x1e"]),
    end=st.sampled_from(["", "\n", "\r\n"]),
)
@settings(max_examples=300, deadline=None)
def test_lines_found_in_the_text_are_the_lines_a_walk_finds(
    pieces: list[str], brk: str, end: str
) -> None:
    text = brk.join(pieces) + end
    lines = text.splitlines()
    assert list(fastyaml._bracket_lines(lines, text)) == [
        line for line in lines if "[" in line or "{" in line
    ]
    assert fastyaml._marker_lines(lines, text) == [
        i for i, line in enumerate(lines) if line.startswith("---") and fastyaml._MARKER.match(line)
    ]


def test_a_document_marker_on_the_first_and_the_last_line_is_found() -> None:
    text = "---\na: 1\n--- # two\nb: 2\n---"
    assert fastyaml._marker_lines(text.splitlines(), text) == [0, 2, 4]
    crlf = text.replace("\n", "\r\n")
    assert fastyaml._marker_lines(crlf.splitlines(), crlf) == [0, 2, 4]
