"""Airlock's credential detectors scored on another project's test cases, fetched at run time.

    make eval-detectors-external      # or: .venv/bin/python bench/eval_external.py [--verbose]

The shared corpora (``make eval-detectors``) measure the detectors on three projects' cases;
this measures them out of sample, on gitleaks' rule tests (MIT licence), which no rule was
written from. The module is fetched through the Go module proxy (``go mod download``, the one
code host this machine reaches) into a cache outside the repository, keyed by its version; its
cases are read from the rule files' ``tps``/``fps`` slices (true and false positives), keeping
the entries written as plain string literals (the generated ones, ``utils.GenerateSampleSecrets``
and ``fmt.Sprintf`` calls, are skipped), and each is placed three ways as in ``make
eval-detectors``. Nothing of gitleaks is copied into the repository; the output names rules and
case numbers, never values.

Read the result with care: a gitleaks false positive is a string that one gitleaks rule must not
match (an x-run placeholder, a lookalike of that rule's format), which may still be a
credential to a detector of every format.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from eval_detectors import main as eval_main  # bench/ is on sys.path when run as a script

MODULE = "github.com/zricethezav/gitleaks/v8"
VERSION = "v8.30.1"
RULES_DIR = "cmd/generate/config/rules"
SLICES = {"tps": True, "truePositives": True, "fps": False, "falsePositives": False}

# Go source, token by token: comments, raw and interpreted strings, runes, words, punctuation.
_TOKEN = re.compile(
    r"(?P<comment>//[^\n]*|/\*.*?\*/)"
    r"|(?P<raw>`[^`]*`)"
    r"|(?P<str>\"(?:[^\"\\\n]|\\.)*\")"
    r"|(?P<rune>'(?:[^'\\\n]|\\.)+')"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*)"
    r"|(?P<op>:=|[{}()\[\],+=])"
    r"|(?P<other>\S)",
    re.DOTALL,
)
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}


def _unescape(body: str) -> str:
    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] in "xuU":
            return chr(int(e[1:], 16))
        if e[0].isdigit():
            return chr(int(e, 8))
        return _SIMPLE_ESCAPES.get(e, e)

    return _ESCAPE.sub(one, body)


def tokens(source: str) -> list[tuple[str, str]]:
    """(kind, text) of each token; a string's text is its value."""
    out = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "other"
        if kind == "comment":
            continue
        text = m.group()
        if kind == "raw":
            out.append(("str", text[1:-1]))
        elif kind == "str":
            out.append(("str", _unescape(text[1:-1])))
        else:
            out.append((kind, text))
    return out


def _elements(
    toks: list[tuple[str, str]], start: int, close: str
) -> tuple[list[list[tuple[str, str]]], int]:
    """The comma-separated elements from ``start`` up to the bracket ``close`` at depth 0."""
    elements: list[list[tuple[str, str]]] = [[]]
    depth, i = 0, start
    while i < len(toks):
        kind, text = toks[i]
        if text in "({[" and kind == "op":
            depth += 1
        elif text in ")}]" and kind == "op":
            if depth == 0 and text == close:
                return [e for e in elements if e], i
            depth -= 1
        elif text == "," and depth == 0:
            elements.append([])
            i += 1
            continue
        elements[-1].append((kind, text))
        i += 1
    return [e for e in elements if e], i


def _literal(element: list[tuple[str, str]]) -> str | None:
    """An element made only of string literals joined by ``+``; anything else (a call, a
    variable, a spread) is generated at test time and skipped."""
    parts = []
    for n, (kind, text) in enumerate(element):
        if n % 2 == 0 and kind == "str":
            parts.append(text)
        elif n % 2 == 1 and text == "+":
            continue
        else:
            return None
    return "".join(parts) if parts and len(element) % 2 == 1 else None


def cases(source: str) -> Iterator[tuple[str, bool]]:
    """(value, expected) of each literal test case in one rule file."""
    toks = tokens(source)
    for i, (kind, text) in enumerate(toks):
        if kind != "word" or text not in SLICES or i + 5 >= len(toks):
            continue  # (not a slice, or a file cut short)
        if toks[i + 1][1] not in {":=", "="}:
            continue
        j = i + 2
        if toks[j][1] == "[" and toks[j + 1][1] == "]" and toks[j + 2][1] == "string":
            if toks[j + 3][1] != "{":
                continue
            elements, _ = _elements(toks, j + 4, "}")
        elif toks[j][1] == "append" and toks[j + 1][1] == "(":
            elements, _ = _elements(toks, j + 2, ")")
            elements = elements[1:]  # the slice appended to
        else:
            continue
        for element in elements:
            value = _literal(element)
            if value:
                yield value, SLICES[text]


def _rule_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / RULES_DIR).glob("*.go") if not p.name.endswith("_test.go"))


def fetch(version: str, cache: Path) -> Path:
    """The module's source, downloaded once per version."""
    target = cache / f"gitleaks-{version}"
    if (target / RULES_DIR).is_dir():
        return target
    go = shutil.which("go")
    if go is None:
        raise SystemExit(
            "eval_external: needs the go command (to fetch the module through the Go module proxy)"
        )
    gopath = cache / "gopath"
    env = dict(os.environ, GOPATH=str(gopath), GOFLAGS="-modcacherw", GO111MODULE="on")
    print(
        f"eval_external: fetching {MODULE}@{version} through the Go module proxy", file=sys.stderr
    )
    out = subprocess.run(
        [go, "mod", "download", "-json", f"{MODULE}@{version}"],
        env=env, capture_output=True, text=True, check=False, cwd=cache,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(
            f"eval_external: go mod download failed: {out.stderr.strip() or out.stdout.strip()}"
        )
    src = Path(json.loads(out.stdout)["Dir"])
    partial = cache / f".gitleaks-{version}.partial"
    shutil.rmtree(partial, ignore_errors=True)  # an interrupted copy of an earlier run
    shutil.copytree(src, partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def build(root: Path, out: Path) -> tuple[int, int]:
    """Write the cases as the labelled-set JSON lines ``eval_detectors --cases`` reads."""
    seen: dict[tuple[str, str], bool] = {}
    conflicting: set[tuple[str, str]] = set()
    for path in _rule_files(root):
        for value, expected in cases(path.read_text(encoding="utf-8")):
            key = (path.stem, value)
            if key in seen and seen[key] != expected:
                conflicting.add(key)  # one rule's positive and negative both: neither
            seen[key] = expected
    positives = negatives = 0
    with out.open("w", encoding="utf-8") as f:
        for (stem, value), expected in seen.items():
            if (stem, value) in conflicting:
                continue
            positives += expected
            negatives += not expected
            f.write(
                json.dumps({"provider": f"gitleaks.{stem}", "value": value, "expect": expected})
                + "\n"
            )
    return positives, negatives


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--version", default=VERSION, help=f"gitleaks module version (default {VERSION})"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        / "airlock"
        / "external",
        help="where the module is kept between runs (default ~/.cache/airlock/external)",
    )
    parser.add_argument("--verbose", action="store_true", help="list every missed or false case")
    parser.add_argument("--record", action="store_true", help="write the summary to RESULTS.md")
    opts = parser.parse_args(argv)
    opts.cache.mkdir(parents=True, exist_ok=True)
    root = fetch(opts.version, opts.cache)
    jsonl = opts.cache / f"gitleaks-{opts.version}.jsonl"
    positives, negatives = build(root, jsonl)
    head = (
        f"gitleaks {opts.version} rule tests: {positives} positives, {negatives} negatives"
        " (literal cases)"
    )
    print(f"== {head}")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = eval_main(
            ["--no-timing", "--cases", str(jsonl), *(["--verbose"] if opts.verbose else [])]
        )
    print(out.getvalue(), end="")
    if opts.record and code == 0:
        from results import machine, replace_section  # noqa: PLC0415 - only when recording

        summary = [line for line in out.getvalue().splitlines() if line.startswith("gitleaks")]
        replace_section(
            "eval-external",
            "\n".join([
                "## Credential detectors out of sample (`make eval-detectors-external`)",
                "",
                machine(),
                "",
                f"{head}; each value placed as in `make eval-detectors`. A gitleaks false "
                "positive is a string one gitleaks rule must not match (x-run placeholders, "
                "lookalikes of its format), which may still be a credential to a detector of "
                "every format.",
                "",
                "```",
                *summary,
                "```",
            ]),
        )  # fmt: skip
    return code


if __name__ == "__main__":
    raise SystemExit(main())
