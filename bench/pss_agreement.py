"""Agreement of `airlock scan` with upstream Pod Security Admission, every level and version.

    .venv/bin/python bench/pss_agreement.py [--corpus DIR] [--airlock CMD] [--record]

Reads ``../shared/corpus/pod-security-all/index.json`` (upstream's generated fixtures for every
version v1.0 … v1.37; one case per level, version, verdict and name) and, for each level and
version, runs ``airlock scan`` once over that version's fixtures with a policy whose only
environment is judged at that level and version (``podSecurity: {level, version}``). A case
agrees when:

- ``fail/<check><n>``: the scan raises the rule mapped to the control (``RULE_OF`` below);
- ``pass/<name>``: the scan raises none of the Pod Security rules.

The scan is the one CI and developers run, end to end (YAML loading, discovery, engine, JSON
output). Disagreements are listed by file; ``--record`` writes the summary to bench/RESULTS.md.
Exit status: 0 when every case agrees, 1 otherwise, 2 when the corpus or the scan is unusable.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, replace_section

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "pod-security-all"

# upstream check (fixture name less its digits) -> the Airlock rule for that control
RULE_OF = {
    "privileged": "privileged-container",
    "hostnamespaces": "host-namespaces",
    "hostpathvolumes": "host-path-volume",
    "hostports": "host-ports",
    "apparmorprofile": "apparmor-profile",
    "selinuxoptions": "selinux-options",
    "procmount": "proc-mount",
    "procmount_restricted": "proc-mount",
    "sysctls": "unsafe-sysctls",
    "windowshostprocess": "windows-host-process",
    "hostprobesandhostlifecycle": "host-probes",
    "capabilities_baseline": "dangerous-capabilities",
    "capabilities_restricted": "dangerous-capabilities",
    "seccompprofile_baseline": "seccomp-unconfined",
    "seccompprofile_restricted": "seccomp-unconfined",
    "restrictedvolumes": "restricted-volume-types",
    "runasnonroot": "run-as-root",
    "runasuser": "run-as-root",
    "allowprivilegeescalation": "privilege-escalation",
}
PSS_RULES = frozenset(RULE_OF.values())
ENV = "pss"


def version_key(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")
    return int(major), int(minor)


def scan(airlock: list[str], level: str, version: str, files: list[Path]) -> dict[str, set[str]]:
    """Rule ids raised per file (resolved path) by one scan at ``level`` and ``version``."""
    policy = (
        "apiVersion: airlock.dev/v1alpha1\nkind: BaselinePolicy\nmetadata: {name: pss}\nspec:\n"
        f"  environments:\n  - name: {ENV}\n"
        f"    podSecurity: {{level: {level}, version: {version}}}\n"
    )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        fh.write(policy)
    try:
        cmd = [*airlock, "scan", "--policy", fh.name, "--environment", ENV, "-o", "json"]
        run = subprocess.run(
            [*cmd, *map(str, files)], capture_output=True, text=True, timeout=600, check=False
        )
    finally:
        Path(fh.name).unlink()
    if run.returncode not in (0, 1):
        raise SystemExit(f"airlock scan at {level} {version} failed ({run.returncode}): "
                         f"{run.stderr.strip()[:500]}")  # fmt: skip
    hits: dict[str, set[str]] = defaultdict(set)
    for finding in json.loads(run.stdout)["findings"]:
        hits[str(Path(finding["file"]).resolve())].add(finding["rule"])
    return hits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="pod-security-all folder")
    parser.add_argument(
        "--airlock", default=str(REPO / ".venv" / "bin" / "airlock"), help="airlock command"
    )
    parser.add_argument("--record", action="store_true", help="write to bench/RESULTS.md")
    args = parser.parse_args(argv)
    index_file = args.corpus / "index.json"
    try:
        cases: list[dict[str, Any]] = json.loads(index_file.read_text())["cases"]
    except (OSError, ValueError, KeyError) as exc:
        print(f"{index_file}: cannot read the case index ({exc})", file=sys.stderr)
        return 2
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for case in cases:
        groups[case["level"], case["version"]].append(case)
    unknown = {c["check"] for c in cases if c["verdict"] == "fail"} - set(RULE_OF)
    if unknown:
        print(f"{index_file}: checks with no rule mapping: {sorted(unknown)}", file=sys.stderr)
        return 2

    def judge(key: tuple[str, str]) -> list[tuple[dict[str, Any], bool, set[str]]]:
        level, version = key
        files = sorted({args.corpus / c["file"] for c in groups[key]})
        hits = scan(args.airlock.split(), level, version, files)
        out = []
        for case in groups[key]:
            got = hits[str((args.corpus / case["file"]).resolve())] & PSS_RULES
            ok = RULE_OF[case["check"]] in got if case["verdict"] == "fail" else not got
            out.append((case, ok, got))
        return out

    order = sorted(groups, key=lambda k: (k[0], version_key(k[1])))
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = [r for batch in pool.map(judge, order) for r in batch]

    agree: Counter[tuple[str, str]] = Counter()
    total: Counter[tuple[str, str]] = Counter()
    per_check: Counter[str] = Counter()
    per_check_ok: Counter[str] = Counter()
    misses = []
    for case, ok, got in results:
        key = (case["level"], case["verdict"])
        total[key] += 1
        per_check[case["check"]] += 1
        if ok:
            agree[key] += 1
            per_check_ok[case["check"]] += 1
        else:
            want = RULE_OF[case["check"]] if case["verdict"] == "fail" else "no PSS rule"
            misses.append(
                f"{case['level']} {case['version']} {case['verdict']}/{case['name']} "
                f"({case['file']}): expected {want}, got {sorted(got) or 'nothing'}"
            )
    for line in misses:
        print(line)
    good, count = sum(agree.values()), sum(total.values())
    versions = sorted({c["version"] for c in cases}, key=version_key)
    lines = [
        f"{good}/{count} upstream Pod Security cases agree "
        f"({len(versions)} versions {versions[0]}–{versions[-1]}, both levels):",
        "",
        "| level | verdict | agree |",
        "|---|---|---|",
        *(f"| {lv} | {vd} | {agree[lv, vd]}/{total[lv, vd]} |" for lv, vd in sorted(total)),
        "",
        "| upstream check | Airlock rule | agree |",
        "|---|---|---|",
        *(
            f"| {chk} | {RULE_OF.get(chk, '(none: pass fixture)')} | "
            f"{per_check_ok[chk]}/{per_check[chk]} |"
            for chk in sorted(per_check, key=lambda c: re.sub(r"_", "~", c))
        ),
    ]
    print("\n".join(lines))
    if args.record:
        body = "\n".join(
            [
                "## Pod Security Standards agreement (`make pss-agreement`)",
                "",
                machine(),
                "",
                *lines,
            ]
        )
        replace_section("pss-agreement", body)
    return 0 if good == count else 1


if __name__ == "__main__":
    sys.exit(main())
