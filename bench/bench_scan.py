"""Throughput of `airlock scan` (manifests per second), in-process and end to end.

Inputs:
  (a) the AI corpus at ../shared/corpus/ai-workloads (every document), the file list repeated
      until at least 2,000 documents are scanned;
  (b) 5,000 generated, realistic manifests (Deployments, Jobs, PyTorchJobs, InferenceServices,
      RayClusters, Pods, ConfigMaps, Services; a third with violations) in a temporary directory.

Measured:
  in-process   load_paths + run_scan(engine.evaluate) + JSON report, best of N runs
  end to end   the console script `airlock scan --format json` in a fresh interpreter
               (start-up, imports, parsing, evaluation, report), best of N runs
  checkov      on the same files, when it installs into a throw-away venv (never the project's)

Prints a table and replaces the "## airlock scan" section of bench/RESULTS.md.
Usage: .venv/bin/python bench/bench_scan.py [--runs N] [--no-checkov]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml
from airlock.engine import evaluate
from airlock.scan import format_json, load_paths, paused_gc, run_scan
from airlock.scan.loader import iter_manifest_files

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "ai-workloads"
RESULTS = ROOT / "bench" / "RESULTS.md"
AIRLOCK = Path(sys.executable).parent / "airlock"
SECTION = "## airlock scan"
GENERATED = 5_000
PER_FILE = 5
CORPUS_MIN_DOCS = 2_000


# ------------------------------------------------------------------------------ the inputs


def corpus_files() -> tuple[list[str], int]:
    """The corpus files that load cleanly (a few upstream samples are not valid YAML), and how
    many were left out."""
    if not CORPUS.is_dir():
        return [], 0
    every = list(iter_manifest_files(str(CORPUS)))
    good = [f for f in every if not load_paths([f]).errors]
    return good, len(every) - len(good)


def _env(rng: random.Random, n: int, leak: bool) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": f"SETTING_{i}", "value": rng.choice(["1", "true", "info", "/data", "0.5"])}
        for i in range(n)
    ]
    env.append({"name": "MODEL_URI", "value": f"s3://models-prod/llm/{rng.randint(1, 99)}"})
    env.append({"name": "RANK_SVC", "value": "ranker.ml-prod.svc.cluster.local:8080"})
    env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "t"}}})
    if leak:
        # generated at run time, random letters: the shape of a token, not a real one
        fake = "".join(
            rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(34)
        )
        env.append({"name": "WANDB_API_KEY", "value": "hf_" + fake})
    return env


def _container(rng: random.Random, name: str, bad: bool) -> dict[str, Any]:
    digest = "sha256:" + "".join(rng.choice("0123456789abcdef") for _ in range(64))
    image = (
        "pytorch/pytorch:latest"
        if bad and rng.random() < 0.5
        else f"registry.corp.example/prod/{name}:1.{rng.randint(0, 9)}@{digest}"
    )
    sc: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if bad:
        sc = {"privileged": rng.random() < 0.3}
    return {
        "name": name,
        "image": image,
        "args": ["--port=8080", f"--workers={rng.randint(1, 8)}"],
        "env": _env(rng, rng.randint(3, 14), bad and rng.random() < 0.3),
        "resources": {"limits": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": "1"}},
        "securityContext": sc,
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
    }


def _pod_spec(rng: random.Random, bad: bool, containers: int) -> dict[str, Any]:
    return {
        "automountServiceAccountToken": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [
            _container(rng, n, bad) for n in ("main", "sidecar", "metrics")[:containers]
        ],
        "volumes": [{"name": "cache", "emptyDir": {}}],
        "nodeSelector": {"airlock.dev/environment": "prod"},
    }


def _meta(name: str, ns: str) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "labels": {"app": name, "airlock.dev/owner": "ml"}}


def generated_object(i: int, rng: random.Random) -> dict[str, Any]:
    bad = i % 3 == 0
    ns = rng.choice(["ml-prod", "ml-dev", "serving"])
    name = f"w{i}"
    kind = i % 8
    template = {"metadata": {"labels": {"app": name}}, "spec": _pod_spec(rng, bad, 1)}
    if kind == 0:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta(name, ns),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": name}},
                "template": template,
            },
        }
    if kind == 1:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta(name, ns),
            "spec": {"backoffLimit": 2, "template": template},
        }
    if kind == 2:
        replica = {"replicas": 1, "restartPolicy": "OnFailure", "template": template}
        return {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": _meta(name, ns),
            "spec": {"pytorchReplicaSpecs": {"Master": replica, "Worker": replica}},
        }
    if kind == 3:
        predictor = {
            "model": {"modelFormat": {"name": "pytorch"}, "storageUri": "s3://models-prod/bert"},
            "containers": _pod_spec(rng, bad, 1)["containers"],
        }
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": "InferenceService",
            "metadata": _meta(name, ns),
            "spec": {"predictor": predictor},
        }
    if kind == 4:
        group = {"rayStartParams": {}, "template": template}
        return {
            "apiVersion": "ray.io/v1",
            "kind": "RayCluster",
            "metadata": _meta(name, ns),
            "spec": {
                "headGroupSpec": group,
                "workerGroupSpecs": [{**group, "groupName": "gpu", "replicas": 2}],
            },
        }
    if kind == 5:
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": _meta(name, ns),
            "spec": _pod_spec(rng, bad, 2),
        }
    if kind == 6:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(name, ns),
            "data": {f"key{k}": f"value-{rng.randint(0, 10**6)}" for k in range(10)},
        }
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, ns),
        "spec": {"selector": {"app": name}, "ports": [{"port": 8080}]},
    }


class _NoAnchors(yaml.SafeDumper):
    """Hand-written manifests repeat themselves instead of using YAML anchors; so do these."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_generated(directory: Path) -> list[str]:
    rng = random.Random(20260509)  # noqa: S311 - fixed seed: the same 5,000 manifests on every run
    files: list[str] = []
    for f in range(GENERATED // PER_FILE):
        objs = [generated_object(f * PER_FILE + k, rng) for k in range(PER_FILE)]
        path = directory / f"team{f % 20:02d}" / f"app{f:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.dump_all(objs, Dumper=_NoAnchors, sort_keys=False))
        files.append(str(path))
    return files


# ------------------------------------------------------------------------------ measuring


def best_of(runs: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    best = float("inf")
    out: Any = None
    for _ in range(runs):
        started = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - started)
    return best, out


def in_process(paths: Sequence[str]) -> tuple[int, int]:
    with paused_gc():  # as `airlock scan` does
        loaded = load_paths(paths)
        result = run_scan(loaded, evaluate)
        format_json(result)
        return len(result.entries), sum(len(e.verdict.findings) for e in result.entries)


def end_to_end(paths: Sequence[str]) -> int:
    r = subprocess.run(
        [str(AIRLOCK), "scan", "--format", "json", *paths],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode not in (0, 1):
        raise SystemExit(f"airlock scan failed ({r.returncode}): {r.stderr[:500]}")
    return len(json.loads(r.stdout)["findings"])


def startup(runs: int) -> float:
    return best_of(
        runs, lambda: subprocess.run([str(AIRLOCK), "version"], check=True, capture_output=True)
    )[0]


def checkov_install(venv: Path) -> tuple[Path | None, str]:
    """Install checkov into a throw-away venv; ``(None, reason)`` when that fails or is slow."""
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120
        )
        pip = venv / "bin" / "pip"
        started = time.perf_counter()
        r = subprocess.run(
            [str(pip), "install", "--quiet", "checkov"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not install checkov: {type(exc).__name__}"
    if r.returncode != 0:
        tail = r.stderr.strip().splitlines()[-1:] or ["no output"]
        return None, f"pip install checkov failed: {tail[0][:200]}"
    took = time.perf_counter() - started
    binary = venv / "bin" / "checkov"
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return binary, f"checkov {version} (installed in {took:.0f} s into a temporary venv)"


def checkov_run(binary: Path, directory: Path) -> tuple[float, str]:
    """Wall time of ``checkov -d`` and what it reported (resources, checks passed/failed)."""
    started = time.perf_counter()
    r = subprocess.run(
        [
            str(binary),
            "-d",
            str(directory),
            "--framework",
            "kubernetes",
            "--quiet",
            "--compact",
            "-o",
            "json",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    seconds = time.perf_counter() - started
    try:
        report = json.loads(r.stdout)
        runs = report if isinstance(report, list) else [report]
        summary = runs[0]["summary"]
        what = (
            f"{summary['resource_count']} resources, {summary['passed']} checks passed, "
            f"{summary['failed']} failed"
        )
    except (ValueError, KeyError, IndexError, TypeError):
        what = f"no JSON summary (exit {r.returncode})"
    return seconds, what


def copy_files(files: Sequence[str], target: Path) -> None:
    """The same corpus files in a scratch directory, for tools that only take a directory."""
    for f in files:
        dest = target / Path(f).relative_to(CORPUS)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dest)


# ------------------------------------------------------------------------------ reporting


def machine() -> str:
    cpu = "unknown CPU"
    try:
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu}; "
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}; "
        f"PyYAML {yaml.__version__} with libyaml: {yaml.__with_libyaml__}"
    )


def write_results(section: str) -> None:
    old = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _m: section.rstrip("\n") + "\n\n", old)
    else:
        new = old.rstrip("\n") + "\n\n" + section
    RESULTS.write_text(new.rstrip("\n") + "\n")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-checkov", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()
    rows: list[tuple[str, int, float, float]] = []  # (input, docs, seconds, docs/s)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp:
        gen_dir = Path(tmp) / "generated"
        gen_files = write_generated(gen_dir)
        inputs: list[tuple[str, list[str], Path | None]] = []
        files, left_out = corpus_files()
        if left_out:
            notes.append(f"AI corpus: {left_out} files that do not parse upstream left out")
        if files:
            per_pass = len(load_paths(files).documents)
            repeat = max(1, -(-CORPUS_MIN_DOCS // max(per_pass, 1)))
            inputs.append((f"AI corpus ({len(files)} files x{repeat})", files * repeat, CORPUS))
        else:
            notes.append(f"AI corpus not found at {CORPUS}: skipped")
        inputs.append((f"generated ({len(gen_files)} files)", gen_files, gen_dir))
        lines = sum(Path(f).read_text().count("\n") for f in gen_files)
        notes.append(
            f"generated manifests: {lines / GENERATED:.0f} YAML lines per object on average"
        )

        for label, paths, _ in inputs:
            seconds, (objects, findings) = best_of(args.runs, lambda p=paths: in_process(p))
            rows.append((f"{label}, in-process", objects, seconds, objects / seconds))
            seconds, _ = best_of(args.runs, lambda p=paths: end_to_end(p))
            rows.append((f"{label}, end to end", objects, seconds, objects / seconds))
            notes.append(f"{label}: {objects} objects, {findings} findings")
        start = startup(args.runs)
        notes.append(f"`airlock version` (interpreter start-up + imports): {start * 1000:.0f} ms")

        checkov_rows: list[tuple[str, int, float, float]] = []
        if args.no_checkov:
            notes.append(
                "checkov: not run here (--no-checkov); `make bench-compare` runs it "
                "(section scan-compare)"
            )
        else:
            binary, what = checkov_install(Path(tmp) / "checkov-venv")
            notes.append(what)
            if binary is not None:
                seconds, what = checkov_run(binary, gen_dir)
                checkov_rows.append(
                    ("generated, checkov -d", GENERATED, seconds, GENERATED / seconds)
                )
                notes.append(f"checkov on the generated set: {what}")
                if files:
                    per_pass = len(load_paths(files).documents)
                    corpus_copy = Path(tmp) / "corpus"
                    copy_files(files, corpus_copy)
                    seconds, what = checkov_run(binary, corpus_copy)
                    checkov_rows.append(
                        ("AI corpus x1, checkov -d", per_pass, seconds, per_pass / seconds)
                    )
                    notes.append(f"checkov on the AI corpus: {what}")
                    ours = best_of(args.runs, lambda: end_to_end(files))[0]
                    checkov_rows.append(
                        ("AI corpus x1, airlock end to end", per_pass, ours, per_pass / ours)
                    )
        rows += checkov_rows

    width = max(len(r[0]) for r in rows)
    table = [
        f"| {'input, method':<{width}} | objects | seconds | objects/s |",
        f"|{'-' * (width + 2)}|--------:|--------:|----------:|",
    ]
    table += [f"| {r[0]:<{width}} | {r[1]:>7} | {r[2]:>7.3f} | {r[3]:>9,.0f} |" for r in rows]
    print("\n".join(table))
    for n in notes:
        print(f"- {n}")
    section = "\n".join(
        [
            SECTION,
            "",
            f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} by `bench/bench_scan.py` "
            f"(best of {args.runs} runs).",
            f"Machine: {machine()}; load average before the run "
            f"{' / '.join(f'{x:.2f}' for x in load_before)} (1/5/15 min; other work on a "
            "shared machine lowers the figures).",
            "",
            "Method: *in-process* = `load_paths` + `run_scan(engine.evaluate)` + JSON report in "
            "one interpreter; *end to end* = the console script `airlock scan --format json "
            "FILES…` in a fresh process, start-up included. Objects = Kubernetes objects "
            "evaluated (List items count one each). Target: ≥ 2,000 manifests/s.",
            "",
            *table,
            "",
            *(f"- {n}" for n in notes),
            "",
        ]
    )
    if not args.no_write:
        write_results(section)
        print(f"updated {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
