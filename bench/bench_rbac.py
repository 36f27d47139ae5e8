"""RBAC facts: what 5,000 RoleBindings cost the context build and a Pod's evaluation.

    .venv/bin/python bench/bench_rbac.py

500 namespaces in two environments, 5,000 RoleBindings (a third to cluster-admin, the rest to
edit) whose ServiceAccounts live in other namespaces. Prints the context build time without and
with the bindings, and evaluate(Pod) median / p99 for a Pod running as one of the bound accounts.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from airlock.engine import evaluate
from airlock.model import load_policy
from airlock.rbac import read_binding
from airlock.state import EvalContext

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.builders import clean_pod

N = 5000
POLICY = load_policy(
    {
        "defaultEnvironment": "dev",
        "environments": [{"name": "dev", "mode": "warn"}, {"name": "prod", "mode": "enforce"}],
    }
)
NS_ENV = {f"team-{i}": ("dev" if i % 2 else "prod") for i in range(500)}


def role_binding(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": f"rb-{i}", "namespace": f"team-{i % 500}"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "edit" if i % 3 else "cluster-admin",
        },
        "subjects": [
            {"kind": "ServiceAccount", "name": f"sa-{i}", "namespace": f"team-{i * 7 % 500}"}
        ],
    }


def main() -> int:
    bindings = [b for b in (read_binding(role_binding(i)) for i in range(N)) if b is not None]
    t = time.perf_counter()
    bare = EvalContext.build(POLICY, namespace_env=NS_ENV)
    t0 = time.perf_counter() - t
    t = time.perf_counter()
    bound = EvalContext.build(POLICY, namespace_env=NS_ENV, bindings=bindings)
    t1 = time.perf_counter() - t
    print(f"context build: {t0 * 1e3:.2f} ms without bindings, {t1 * 1e3:.2f} ms with {N}")
    pod = clean_pod("team-1")
    pod["spec"]["serviceAccountName"] = "sa-1"
    for name, ctx in (("no RBAC facts", bare), (f"{N} RoleBindings", bound)):
        for _ in range(2000):
            evaluate(pod, ctx)
        times = []
        for _ in range(20000):
            s = time.perf_counter()
            evaluate(pod, ctx)
            times.append(time.perf_counter() - s)
        times.sort()
        median, p99 = statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6
        print(f"evaluate(Pod), {name}: median {median:.1f} µs, p99 {p99:.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
