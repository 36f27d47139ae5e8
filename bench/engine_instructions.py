"""Instructions per evaluation of the engine benchmark's pod, counted by valgrind (callgrind).

Wall-clock medians on a shared machine move by several percent from run to run; an instruction
count does not (with a fixed hash seed), so it tells a small change of the hot path from noise.
It does not see memory stalls: ``bench_engine.py`` remains the measure of time.

Each case runs twice under callgrind, once to build its pods and once to build them and evaluate
N of them; the difference divided by N is the cost of one evaluation. Cases: ``fresh`` (every env
value new, as bench_engine's second row) and ``same`` (the same values in new objects).

Needs valgrind (Debian: ``apt-get install valgrind``). Run:
``.venv/bin/python bench/engine_instructions.py [--cases fresh same] [-n 2000]``; compare two
trees with ``PYTHONPATH=<tree>/operator``. Nothing is recorded.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from airlock.engine import evaluate

sys.path.insert(0, str(Path(__file__).parent))
import bench_engine as bench

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")
_WARM = 1000  # evaluations before counting: memos and lazy patterns built


def _child(case: str, n: int, evaluate_them: bool) -> None:
    ctx = bench.context()
    pods = []
    for i in range(_WARM + n):
        pod = bench.realistic_pod()
        if case == "fresh":
            for c in (*pod["spec"]["containers"], *pod["spec"]["initContainers"]):
                for e in c["env"]:
                    e["value"] = f"{e['value']}-{i}"
        pods.append(pod)
    for pod in pods[:_WARM]:
        evaluate(pod, ctx)
    if evaluate_them:
        gc.disable()
        for pod in pods[_WARM:]:
            evaluate(pod, ctx)


def _count(case: str, n: int, evaluate_them: bool) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--child",
        case,
        "-n",
        str(n),
        *(["--evaluate"] if evaluate_them else []),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    found = _REFS.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.exit(f"valgrind failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="+", choices=("fresh", "same"), default=["fresh", "same"])
    parser.add_argument("-n", type=int, default=2000, help="evaluations counted (default 2000)")
    parser.add_argument("--child", choices=("fresh", "same"), help=argparse.SUPPRESS)
    parser.add_argument("--evaluate", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n, args.evaluate)
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    for case in args.cases:
        print(f"counting {case} ({args.n} evaluations, two runs under callgrind) …", flush=True)
        base = _count(case, args.n, evaluate_them=False)
        total = _count(case, args.n, evaluate_them=True)
        print(f"{case}: {(total - base) / args.n:,.0f} instructions per evaluation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
