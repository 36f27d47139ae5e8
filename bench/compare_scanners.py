"""`airlock scan` against kube-score and checkov, side by side in one run.

Each tool runs as a whole process (start-up, parsing, checks, JSON report written to a file),
the tools alternating within every round (the order rotates each round), one untimed warm-up
each, the median of N rounds reported. Peak memory is the child's maximum resident set size
from wait4(2) (the largest process of its tree).

Inputs:
  start-up    one small Pod manifest
  AI corpus   the YAML files of ../shared/corpus/ai-workloads that parse (copied to a scratch
              directory, so every tool sees exactly the same files); skipped when absent
  generated   bench/gen_corpus.py: 1,000 files, 5,000 objects, ~88 MB, 20–160 env vars per
              container (written once to ~/.cache/airlock/bench-corpus/)

The tools:
  airlock     `.venv/bin/airlock scan -o json DIR|FILE` (exit 1 on findings is normal)
  kube-score  `kube-score score -o json FILES...`, v1.20.0 built with `go install` into
              ~/.cache/airlock/bin/bench-tools-kube-score-v1.20.0/ the first time
  checkov     `checkov -d DIR|-f FILE --framework kubernetes --quiet --compact -o json
              --skip-download`, 3.3.30 installed with pip into the bench-only venv
              ~/.cache/airlock/bench-venv-checkov-3.3.30/ the first time. On the generated
              corpus it runs once (not N times), under a timeout and a memory cap: a run
              stopped by either is recorded as "did not finish".
A tool that cannot be built or installed is reported as such and the others still run.

Prints the table and replaces the `scan-compare` section of bench/RESULTS.md.
Usage: .venv/bin/python bench/compare_scanners.py [--runs 5] [--timeout 300]
       [--checkov-mem-gb 8] [--no-checkov-generated] [--only airlock,kube-score] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).parent))
from gen_corpus import cache_root, ensure_corpus
from results import machine, replace_section

ROOT = Path(__file__).resolve().parent.parent
AI_CORPUS = Path(os.environ.get("AIRLOCK_AI_CORPUS", ROOT.parent / "shared/corpus/ai-workloads"))
AIRLOCK = Path(sys.executable).parent / "airlock"
SECTION = "scan-compare"

KUBE_SCORE_VERSION = "v1.20.0"
KUBE_SCORE_MODULE = "github.com/zegl/kube-score/cmd/kube-score"
CHECKOV_VERSION = "3.3.30"
INSTALL_TIMEOUT = 1200

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def say(msg: str) -> None:
    print(msg, flush=True)


def load_avg() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


# ------------------------------------------------------------------------------ the tools


@dataclass
class Tool:
    name: str
    label: str  # with version, for the tables
    # input -> argv; `directory` and `files` describe the same input
    argv: Callable[[Path, Sequence[str]], list[str]]
    single: Callable[[Path], list[str]]  # one file (start-up)
    ok_codes: tuple[int, ...] = (0, 1)


def _run_quiet(argv: list[str], timeout: float, env: dict[str, str] | None = None) -> str | None:
    """Run an install step; None when it worked, else the reason (last lines of its output)."""
    try:
        r = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, env=env
        )
    except subprocess.TimeoutExpired:
        return f"`{' '.join(argv[:3])} …` timed out after {timeout:.0f} s"
    except OSError as exc:
        return f"`{argv[0]}`: {exc.strerror}"
    if r.returncode != 0:
        tail = " | ".join((r.stderr or r.stdout).strip().splitlines()[-3:]) or "no output"
        return f"`{' '.join(argv[:3])} …` failed (exit {r.returncode}): {tail[:400]}"
    return None


def kube_score() -> Tool | str:
    """kube-score from the binaries cache, built with `go install` when missing."""
    gobin = cache_root() / "bin" / f"bench-tools-kube-score-{KUBE_SCORE_VERSION}"
    binary = gobin / "kube-score"
    if not binary.is_file():
        go = shutil.which("go")
        if go is None:
            return "kube-score: not built (no `go` on PATH; Go ≥ 1.22 builds it)"
        say(f"building kube-score {KUBE_SCORE_VERSION} with go install into {gobin} (once) …")
        started = time.monotonic()
        env = {**os.environ, "GOBIN": str(gobin), "CGO_ENABLED": "0"}
        why = _run_quiet(
            [go, "install", "-trimpath", f"{KUBE_SCORE_MODULE}@{KUBE_SCORE_VERSION}"],
            INSTALL_TIMEOUT,
            env,
        )
        if why is not None or not binary.is_file():
            return f"kube-score: could not be built: {why or 'no binary produced'}"
        say(f"  built in {time.monotonic() - started:.0f} s")
    return Tool(
        name="kube-score",
        label=f"kube-score {KUBE_SCORE_VERSION}",
        argv=lambda _d, files: [str(binary), "score", "-o", "json", *files],
        single=lambda f: [str(binary), "score", "-o", "json", str(f)],
    )


def checkov() -> Tool | str:
    """checkov from its bench-only venv, installed with pip when missing."""
    venv = cache_root() / f"bench-venv-checkov-{CHECKOV_VERSION}"
    binary = venv / "bin" / "checkov"
    marker = venv / ".installed"
    if not (binary.is_file() and marker.is_file()):
        say(f"installing checkov=={CHECKOV_VERSION} with pip into {venv} (once, about a minute) …")
        started = time.monotonic()
        shutil.rmtree(venv, ignore_errors=True)
        why = _run_quiet([sys.executable, "-m", "venv", str(venv)], 300) or _run_quiet(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"checkov=={CHECKOV_VERSION}",
            ],
            INSTALL_TIMEOUT,
        )
        if why is not None or not binary.is_file():
            shutil.rmtree(venv, ignore_errors=True)
            return f"checkov: could not be installed: {why or 'no checkov script'}"
        marker.touch()
        say(f"  installed in {time.monotonic() - started:.0f} s")
    common = ["--framework", "kubernetes", "--quiet", "--compact", "-o", "json", "--skip-download"]
    return Tool(
        name="checkov",
        label=f"checkov {CHECKOV_VERSION}",
        argv=lambda d, _files: [str(binary), "-d", str(d), *common],
        single=lambda f: [str(binary), "-f", str(f), *common],
    )


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        return "go not on PATH now"
    r = subprocess.run([go, "version"], capture_output=True, text=True, check=False)
    return r.stdout.strip().removeprefix("go version ") or "go version unknown"


def airlock_revision() -> str:
    """The commit the measured airlock is at, and whether its source has local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "operator"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "airlock: revision unknown (not a git checkout)"
    return f"airlock at {head}" + (" with uncommitted changes under operator/" if dirty else "")


def airlock() -> Tool | str:
    if not AIRLOCK.is_file():
        return f"airlock: {AIRLOCK} not found (run `make venv`)"
    return Tool(
        name="airlock",
        label="airlock scan",
        argv=lambda d, _files: [str(AIRLOCK), "scan", "-o", "json", str(d)],
        single=lambda f: [str(AIRLOCK), "scan", "-o", "json", str(f)],
    )


def airlock_serial() -> Tool | str:
    """The same scan in one process (``-j 1``): what one core does."""
    if not AIRLOCK.is_file():
        return f"airlock: {AIRLOCK} not found (run `make venv`)"
    return Tool(
        name="airlock-serial",
        label="airlock scan -j 1",
        argv=lambda d, _files: [str(AIRLOCK), "scan", "-j", "1", "-o", "json", str(d)],
        single=lambda f: [str(AIRLOCK), "scan", "-j", "1", "-o", "json", str(f)],
    )


# ------------------------------------------------------------------------------ one run


@dataclass
class Sample:
    seconds: float
    max_rss_mb: float  # wait4: the largest process of the tree
    code: int | None  # exit code, None when killed by us
    stopped: str = ""  # why we killed it ("" when it finished)
    group_rss_mb: float = 0.0  # the sampled peak of the whole process group (memory-capped runs)
    output: Path | None = None
    report: str = ""  # what its report says (objects, findings)
    invalid: str = ""  # why this run does not count (bad exit, no report, other object count)


def _group_rss_mb(pgid: int) -> float:
    """Sum of VmRSS over the processes of one process group."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # pgrp, then rss at index 21
            total += int(fields[21]) * page
    return total / 2**20


# Python tools run as installed ones do: with their bytecode cached (pip compiles on install, the
# image at build time); a shell that sets PYTHONDONTWRITEBYTECODE would otherwise make every run
# recompile every module (about 40 ms of airlock's start-up). The untimed warm-up writes it.
_TOOL_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(argv: list[str], out: Path, timeout: float, mem_cap_mb: float | None) -> Sample:
    """Run one command as a whole process in its own process group; kill the group on timeout
    or (when capped) when its resident memory exceeds the cap."""
    err = out.with_suffix(".stderr")
    with out.open("wb") as so, err.open("wb") as se:
        started = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            stdout=so,
            stderr=se,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=_TOOL_ENV,
        )
        done = threading.Event()
        stopped: list[str] = []
        peak = [0.0]

        def watchdog() -> None:
            interval = 0.25 if mem_cap_mb else min(timeout, 1.0)
            while not done.wait(interval):
                elapsed = time.perf_counter() - started
                if mem_cap_mb:
                    rss = _group_rss_mb(proc.pid)
                    peak[0] = max(peak[0], rss)
                    if rss > mem_cap_mb:
                        stopped.append(f"killed at the {mem_cap_mb / 1024:.1f} GB memory cap")
                if elapsed > timeout:
                    stopped.append(f"killed at the {timeout:.0f} s timeout")
                if stopped:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    return

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        done.set()
        guard.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    # whatever the group left behind (checkov's workers) goes too
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return Sample(
        seconds=seconds,
        max_rss_mb=usage.ru_maxrss / 1024,
        code=None if stopped else proc.returncode,
        stopped=stopped[0] if stopped else "",
        group_rss_mb=peak[0],
        output=out,
    )


# ------------------------------------------------------------------------------ inputs


@dataclass
class Input:
    key: str
    label: str
    directory: Path
    files: list[str]
    objects: int
    # the same directory under a path without dot-directories: checkov skips hidden
    # directories, the whole input when it sits under ~/.cache
    visible: Path | None = None


def _is_manifest(path: Path) -> bool:
    return path.is_file() and path.suffix in MANIFEST_SUFFIXES


def count_objects(files: Sequence[str]) -> tuple[int, list[str]]:
    """Kubernetes objects in the files (List items count one each) and the files that do not
    parse as YAML."""
    objects, bad = 0, []
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                docs = list(yaml.load_all(fh, Loader=_SAFE_LOADER))
        except (yaml.YAMLError, UnicodeDecodeError):
            bad.append(f)
            continue
        for d in docs:
            if isinstance(d, dict) and d.get("kind"):
                items = d.get("items") if str(d["kind"]).endswith("List") else None
                objects += len(items) if isinstance(items, list) else 1
    return objects, bad


def ai_corpus(scratch: Path, notes: list[str]) -> Input | None:
    if not AI_CORPUS.is_dir():
        msg = f"AI corpus not found at {AI_CORPUS}: that part of the comparison is skipped"
        say(msg)
        notes.append(msg)
        return None
    every = sorted(str(p) for p in AI_CORPUS.rglob("*") if _is_manifest(p))
    objects, bad = count_objects(every)
    target = scratch / "ai-workloads"
    files = []
    for f in every:
        if f in bad:
            continue
        dest = target / Path(f).relative_to(AI_CORPUS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)
        files.append(str(dest))
    if bad:
        notes.append(
            f"AI corpus: {len(bad)} of {len(every)} files are not valid YAML upstream and are "
            "left out (kube-score stops at the first unparsable file)"
        )
    return Input("ai", f"AI corpus ({len(files)} files, {objects} objects)", target, files, objects)


def generated() -> tuple[Input, Input]:
    """The generated corpus, and its one small Pod (start-up)."""
    c = ensure_corpus(progress=say)
    small = Input("small", "start-up: one small Pod", c.small.parent, [str(c.small)], 1)
    return small, Input(
        "generated",
        f"generated ({len(c.files):,} files, {c.objects:,} objects, {c.megabytes:.0f} MB, "
        "20–160 env vars per container)",
        c.directory,
        c.files,
        c.objects,
    )


# ------------------------------------------------------------------------------ what the tools said


_CHECKOV_FIELD = re.compile(rb'"(passed|failed|resource_count)":\s*(\d+)')


def _checkov_summary(out: Path) -> tuple[str, int | None]:
    """checkov's JSON report ends with its summary (a report on the generated corpus runs to
    hundreds of MB: only the tail is read)."""
    try:
        with out.open("rb") as fh:
            fh.seek(max(0, out.stat().st_size - 4096))
            tail = fh.read()
    except OSError:
        return "no JSON report", None
    fields = {k.decode(): int(v) for k, v in _CHECKOV_FIELD.findall(tail)}
    if "resource_count" not in fields or not tail.rstrip().endswith((b"}", b"]")):
        return "no JSON report", None
    n = fields["resource_count"]
    return f"{n} resources, {fields.get('passed')} passed, {fields.get('failed')} failed", n


def describe_output(tool: str, out: Path) -> tuple[str, int | None]:
    """A one-line summary of a report and how many objects it covers, to check that every
    tool read the input (None: no report)."""
    if tool == "checkov":
        return _checkov_summary(out)
    try:
        data = json.loads(out.read_bytes())
    except (OSError, ValueError):
        return "no JSON report", None
    try:
        if tool.startswith("airlock"):
            s = data["summary"]
            n = sum(v for k, v in s["findings"].items() if k != "exempted")
            return f"{s['objects']} objects, {n} findings", int(s["objects"])
        if tool == "kube-score":
            crit = sum(
                1 for o in data for c in o.get("checks", []) if c.get("grade") == 1
            )  # grade 1 = CRITICAL in kube-score's JSON v2
            return f"{len(data)} objects scored, {crit} critical check results", len(data)
    except (KeyError, TypeError, IndexError, ValueError):
        pass
    return "unrecognised JSON report", None


# ------------------------------------------------------------------------------ the comparison


@dataclass
class Result:
    tool: str
    label: str
    inp: Input
    samples: list[Sample] = field(default_factory=list)
    warmup: Sample | None = None
    failed: str = ""  # no run counted: the first reason
    expected: int | None = None  # objects in its first good report; every run must match

    @property
    def finished(self) -> list[Sample]:
        return [s for s in self.samples if not s.stopped and not s.invalid]

    @property
    def median(self) -> float | None:
        ok = self.finished
        return statistics.median(s.seconds for s in ok) if ok and not self.failed else None

    @property
    def peak_mb(self) -> float:
        return max((s.max_rss_mb for s in self.finished or self.samples), default=0.0)


def compare(
    tools: list[Tool],
    *,
    inputs: list[tuple[Input, bool]],  # (input, one file: start-up)
    runs: int,
    timeout: float,
    checkov_mem_mb: float,
    checkov_generated: bool,
    scratch: Path,
) -> tuple[list[Result], list[str]]:
    results: list[Result] = []
    notes: list[str] = []
    for inp, single in inputs:
        say(f"\n== {inp.label}  (load average {load_avg()})")
        todo: list[tuple[Tool, int]] = []
        for tool in tools:
            if tool.name == "checkov" and inp.key == "generated":
                if not checkov_generated:
                    notes.append(
                        "checkov on the generated corpus: not run (--no-checkov-generated)"
                    )
                    continue
                todo.append((tool, 1))  # minutes per run: once, under timeout and memory cap
            else:
                todo.append((tool, runs))
        by_tool = {t.name: Result(t.name, t.label, inp) for t, _ in todo}
        results += by_tool.values()

        def one(
            tool: Tool,
            tag: str,
            inp: Input = inp,
            single: bool = single,
            by_tool: dict[str, Result] = by_tool,
        ) -> Sample:
            argv = (
                tool.single(Path(inp.files[0]))
                if single
                else tool.argv(
                    inp.visible if tool.name == "checkov" and inp.visible else inp.directory,
                    inp.files,
                )
            )
            capped = tool.name == "checkov" and inp.key == "generated"
            out = scratch / f"{inp.key}-{tool.name}-{tag}.json"
            s = run_once(argv, out, timeout, checkov_mem_mb if capped else None)
            r = by_tool[tool.name]
            if s.stopped:
                return s
            # an accepted exit code is not enough (kube-score exits 1 on findings and on
            # errors alike; checkov reports 0 resources for a directory it skipped; the code
            # under test may change between runs): every run must leave a JSON report that
            # covers as many objects as the first good one
            s.report, n = describe_output(tool.name, out)
            if s.code not in tool.ok_codes:
                s.invalid = f"exit {s.code}"
            elif n is None:
                s.invalid = f"{s.report} (exit {s.code})"
            elif n == 0:
                s.invalid = "its report covers no objects"
            elif r.expected is None:
                r.expected = n
            elif n != r.expected:
                s.invalid = f"its report covers {n} objects, the first good one {r.expected}"
            if s.invalid:
                err = out.with_suffix(".stderr").read_text(errors="replace").strip()
                tail = " | ".join(err.splitlines()[-3:])[:300]
                s.invalid += f"; stderr: {tail}" if tail else ""
                say(f"  {tool.name}: run {tag} does not count: {s.invalid}")
            return s

        # warm-up: page cache, .pyc files; not counted (skipped for single-shot runs)
        for tool, n in todo:
            if n > 1:
                say(f"  warm-up {tool.name} …")
                by_tool[tool.name].warmup = one(tool, "warmup")
        rounds = max(n for _, n in todo) if todo else 0
        for rnd in range(rounds):
            order = todo[rnd % len(todo) :] + todo[: rnd % len(todo)]
            line = []
            for tool, n in order:
                if rnd >= n:
                    continue
                if n == 1 and rounds > 1:
                    say(
                        f"  {tool.name}: one run, up to {timeout:.0f} s and "
                        f"{checkov_mem_mb / 1024:.1f} GB …"
                    )
                s = one(tool, str(rnd))
                by_tool[tool.name].samples.append(s)
                line.append(
                    f"{tool.name} {s.seconds:.3f} s {s.max_rss_mb:.0f} MB"
                    + (f" ({s.stopped})" if s.stopped else "")
                )
            say(f"  round {rnd + 1}/{rounds}: " + ", ".join(line))
        for r in by_tool.values():
            bad = [x for x in r.samples if x.invalid]
            if bad and not r.finished and not any(x.stopped for x in r.samples):
                r.failed = bad[0].invalid
                notes.append(f"{r.label} on {inp.label.split(' (')[0]}: **failed**: {r.failed}")
                continue
            if bad:
                notes.append(
                    f"{r.label} on {inp.label.split(' (')[0]}: {len(bad)} of {len(r.samples)} "
                    f"runs left out of the median ({bad[0].invalid})"
                )
            good = r.finished
            what = good[-1].report if good else "did not finish"
            notes.append(f"{r.label} on {inp.label.split(' (')[0]}: {what}")
    return results, notes


# ------------------------------------------------------------------------------ reporting


def fmt_s(x: float) -> str:
    return f"{x:.3f} s" if x < 10 else f"{x:.1f} s"


def cell(r: Result | None, with_rate: bool) -> str:
    if r is None:
        return "not run"
    if r.failed:
        return f"failed ({r.failed.split(':')[0].split(';')[0]}; see below)"
    if not r.finished:
        s = next(x for x in r.samples if x.stopped)
        peak = max(s.group_rss_mb, s.max_rss_mb)
        return f"did not finish ({s.stopped} after {s.seconds:.0f} s; {peak:,.0f} MB)"
    med = r.median
    assert med is not None
    lo, hi = min(s.seconds for s in r.finished), max(s.seconds for s in r.finished)
    spread = f" ({fmt_s(lo)[:-2]}–{fmt_s(hi)})" if len(r.finished) > 1 else ""
    parts = [f"**{fmt_s(med)}**{spread}"]
    parts.append(f"{r.peak_mb:,.0f} MB")
    if with_rate:
        parts.append(f"{r.inp.objects / med:,.0f} obj/s")
    if len(r.samples) == 1 and r.samples[0].group_rss_mb:
        parts.append(f"group {r.samples[0].group_rss_mb:,.0f} MB, 1 run")
    return ", ".join(parts)


def ratios(results: list[Result]) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, met) for the issue's "done when"."""
    get = {(r.tool, r.inp.key): r for r in results}

    def med(tool: str, key: str) -> float | None:
        r = get.get((tool, key))
        return r.median if r else None

    rows: list[tuple[str, str, str, str]] = []

    def ratio(
        what: str, a: float | None, b: float | None, target: str, ok: Callable[[float], bool]
    ) -> None:
        if a is None or b is None:
            rows.append((what, "n/a (not measured)", target, "–"))
            return
        x = a / b
        rows.append((what, f"{x:.2f}×", target, "yes" if ok(x) else "**no**"))

    ratio(
        "airlock ÷ kube-score wall, generated corpus",
        med("airlock", "generated"),
        med("kube-score", "generated"),
        "≤ 1×",
        lambda x: x <= 1.0,
    )
    ratio(
        "airlock ÷ kube-score wall, AI corpus",
        med("airlock", "ai"),
        med("kube-score", "ai"),
        "≤ 2×",
        lambda x: x <= 2.0,
    )
    ratio(
        "checkov ÷ airlock wall, AI corpus (how much faster airlock is)",
        med("checkov", "ai"),
        med("airlock", "ai"),
        "≥ 20×",
        lambda x: x >= 20.0,
    )
    for key, what in (("generated", "generated corpus"), ("ai", "AI corpus")):
        one, ks = med("airlock-serial", key), med("kube-score", key)
        if one is not None and ks:
            label = f"airlock -j 1 ÷ kube-score wall, {what} (one process)"
            rows.append((label, f"{one / ks:.2f}×", "", ""))
    ck_gen = get.get(("checkov", "generated"))
    a_gen = med("airlock", "generated")
    if ck_gen and ck_gen.samples and a_gen:
        if ck_gen.median is not None:
            rows.append(
                (
                    "checkov ÷ airlock wall, generated corpus",
                    f"{ck_gen.median / a_gen:.1f}×",
                    "",
                    "",
                )
            )
        elif not ck_gen.failed:
            s = ck_gen.samples[0]
            rows.append(
                ("checkov ÷ airlock wall, generated corpus", f"> {s.seconds / a_gen:.0f}× "
                 "(checkov did not finish)", "", "")
            )  # fmt: skip
    start = med("airlock", "small")
    rows.append(
        (
            "airlock start-up, one small file",
            f"{start * 1000:.0f} ms" if start is not None else "n/a",
            "≤ 80 ms",
            "–" if start is None else ("yes" if start <= 0.080 else "**no**"),
        )
    )
    ks = med("kube-score", "small")
    if start is not None and ks:
        rows.append(("airlock ÷ kube-score start-up", f"{start / ks:.1f}×", "", ""))
    mem = get.get(("airlock", "generated"))
    rows.append(
        (
            "airlock peak memory, generated corpus",
            f"{mem.peak_mb:,.0f} MB" if mem and mem.samples else "n/a",
            "≤ 200 MB",
            "–" if not (mem and mem.samples) else ("yes" if mem.peak_mb <= 200 else "**no**"),
        )
    )
    return rows


def render(
    tools: list[Tool],
    *,
    results: list[Result],
    inputs: list[Input],
    notes: list[str],
    args: argparse.Namespace,
    load_before: str,
    load_after: str,
    took: float,
) -> str:
    get = {(r.tool, r.inp.key): r for r in results}
    head = "| input | " + " | ".join(t.label for t in tools) + " |"
    lines = [head, "|---|" + "---|" * len(tools)]
    for inp in inputs:
        cells = [cell(get.get((t.name, inp.key)), inp.key != "small") for t in tools]
        lines.append(f"| {inp.label} | " + " | ".join(cells) + " |")
    rat = ["| check | measured | target | met |", "|---|---:|---|---|"]
    rat += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in ratios(results)]
    return "\n".join(
        [
            "## Scanners side by side: airlock scan, kube-score, checkov "
            "(bench/compare_scanners.py)",
            "",
            machine(),
            f"Load average (1/5/15 min) before the run {load_before}, after {load_after}: other "
            "work shares the 2 cores, so the figures are noisy; the tools alternate within each "
            f"round, so they share the noise. {airlock_revision()}; the whole comparison took "
            f"{took / 60:.1f} min.",
            "",
            f"Method: `make bench-compare`. Whole process per run (start-up, parsing, checks, JSON "
            f"report to a file); one untimed warm-up per tool and input, then {args.runs} round(s) "
            "with the tools alternating (the order rotates each round); **median** wall time "
            "(min–max), peak RSS (the largest process, from wait4), objects/s = objects ÷ median. "
            f"checkov on the generated corpus: a single run, stopped at {args.timeout:.0f} s or "
            f"{args.checkov_mem_gb:g} GB of resident memory (its whole process group). "
            "Exit 1 (findings) is success for every tool.",
            "",
            *lines,
            "",
            "Against the targets of issue 13:",
            "",
            *rat,
            "",
            *(f"- {n}" for n in notes),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=5, help="timed rounds per input (median)")
    ap.add_argument("--timeout", type=float, default=300, help="seconds per run, every tool")
    ap.add_argument("--checkov-mem-gb", type=float, default=8.0, help="checkov's cap, generated")
    ap.add_argument(
        "--no-checkov-generated", action="store_true", help="skip checkov on the generated corpus"
    )
    ap.add_argument(
        "--only", help="comma-separated tools (airlock,airlock-serial,kube-score,checkov)"
    )
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args(argv)
    wanted = (
        set(args.only.split(","))
        if args.only
        else {"airlock", "airlock-serial", "kube-score", "checkov"}
    )

    load_before = load_avg()
    started = time.monotonic()
    say(f"load average before the run: {load_before}")
    notes: list[str] = []
    tools: list[Tool] = []
    makers = (
        ("airlock", airlock),
        ("airlock-serial", airlock_serial),
        ("kube-score", kube_score),
        ("checkov", checkov),
    )
    for name, make in makers:
        if name not in wanted:
            continue
        got = make()
        if isinstance(got, str):
            say(f"SKIPPED {got}")
            notes.append(f"**skipped** {got}")
        else:
            tools.append(got)
    if "airlock" in wanted and not any(t.name == "airlock" for t in tools):
        say("airlock itself is not available: nothing to compare")
        return 2
    names = {t.name for t in tools}
    if "airlock" in names:
        notes.append(
            "airlock scan judges its files in one forked process per CPU once the input passes "
            "256 KB (`-j`, default one per CPU); its peak RSS is that of the largest process. "
            "`airlock scan -j 1` is the same scan in one process."
        )
    if "kube-score" in names:
        notes.append(
            f"kube-score {KUBE_SCORE_VERSION}: `go install {KUBE_SCORE_MODULE}@"
            f"{KUBE_SCORE_VERSION}` into ~/.cache/airlock/bin/bench-tools-kube-score-"
            f"{KUBE_SCORE_VERSION}/ ({go_version()}). It scores only the kinds it knows (Pods, "
            "controllers, Services, …): PyTorchJob, RayCluster, InferenceService, JobSet and "
            "ConfigMaps pass through unchecked, so its objects/s counts objects it skipped."
        )
    if "checkov" in names:
        notes.append(
            f"checkov {CHECKOV_VERSION}: pip, in the bench-only venv ~/.cache/airlock/"
            f"bench-venv-checkov-{CHECKOV_VERSION}/; it is given the generated corpus through a "
            "symlink outside ~/.cache (checkov skips hidden directories)"
        )

    with tempfile.TemporaryDirectory(prefix="airlock-compare-") as tmp:
        scratch = Path(tmp)
        small, gen = generated()
        if any(part.startswith(".") for part in gen.directory.parts):
            gen.visible = scratch / "generated"
            gen.visible.symlink_to(gen.directory, target_is_directory=True)
        inputs: list[Input] = [small]
        ai = ai_corpus(scratch, notes)
        if ai is not None:
            inputs.append(ai)
        inputs.append(gen)
        plan = [(i, i.key == "small") for i in inputs]
        results, more = compare(
            tools,
            inputs=plan,
            runs=args.runs,
            timeout=args.timeout,
            checkov_mem_mb=args.checkov_mem_gb * 1024,
            checkov_generated=not args.no_checkov_generated,
            scratch=scratch,
        )
        notes += more

    body = render(
        tools,
        results=results,
        inputs=inputs,
        notes=notes,
        args=args,
        load_before=load_before,
        load_after=load_avg(),
        took=time.monotonic() - started,
    )
    say("\n" + body)
    if not args.no_write:
        replace_section(SECTION, body)
        say(f"\nupdated {(ROOT / 'bench' / 'RESULTS.md').relative_to(ROOT)} (section {SECTION})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
