"""What Airlock adds to a Pod CREATE as the user sees it: client-observed latency through a real
kube-apiserver, with and without Airlock's webhook configurations registered.

The same Pods are created in both phases, one request at a time (so the figures are latencies,
not throughput): half in a ``warn`` namespace and half in an ``enforce`` namespace, in each half
clean Pods and Pods with findings (a plaintext credential, a privileged container, a ``:latest``
image). Without the webhook every Pod is created; with it, the violating Pods of the enforce
namespace are denied (a 403 is as much an answer as a 201, and is timed the same way). Between
phases the Pods are deleted (they have no node, so deletion is immediate).

With the webhook, each Pod CREATE costs the API server two calls to Airlock (mutating, then
validating), each over its own TLS connection pool. Also reported: the webhook's own histogram
``airlock_admission_duration_seconds{kind="Pod",operation="CREATE"}`` (both calls; the phase's
increase, quantiles interpolated inside buckets as PromQL's ``histogram_quantile`` does) and the
API server's ``apiserver_admission_webhook_admission_duration_seconds`` per webhook.

Only ``airlock webhook`` runs (no controller): the controller's audit and PolicyReports would
write to the API server while it is being measured. The control plane is the local one of
``hack/localcluster.py`` (started in .local/bench-apiserver and stopped afterwards, unless
``--kubeconfig`` names a running cluster).

Run: ``.venv/bin/python bench/bench_apiserver_latency.py [--pods 300] [--no-write]``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT / "hack"))
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

import localcluster  # noqa: E402
import yaml  # noqa: E402
from airlock_procs import Airlock, poll_until  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.rest import ApiException  # noqa: E402
from results import machine, replace_section  # noqa: E402

GROUP, VERSION = "airlock.dev", "v1alpha1"
ENV_LABEL = "airlock.dev/environment"
DIGEST = "@sha256:" + "4b1c5d1f8e2a7c9b0d3e6f1a2b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e"
IMAGE = "registry.corp.example/prod/server:2.1.0" + DIGEST
RUN_DIR = ROOT / ".local" / "bench-apiserver"
LOAD_BEFORE = math.nan
POLICY = {
    "environmentLabel": ENV_LABEL,
    "defaultEnvironment": "dev",
    "environments": [
        {
            "name": "dev",
            "mode": "warn",
            "allowedRegistries": ["registry.corp.example/"],
            "allowedStoragePrefixes": ["s3://models-dev/"],
        },
        {
            "name": "prod",
            "mode": "enforce",
            "allowedRegistries": ["registry.corp.example/prod/"],
            "allowedStoragePrefixes": ["s3://models-prod/"],
        },
    ],
}


def _pod(name: str, ns: str, violating: bool) -> dict[str, Any]:
    env = [
        {"name": "MODEL_URI", "value": "s3://models-prod/llama/3.1-8b/"},
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}},
    ]
    sc: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    image = IMAGE
    if violating:
        # a credential-named variable with a literal (not a provider format: nothing real-looking)
        env[2] = {"name": "DB_PASSWORD", "value": "bench-" + uuid.uuid4().hex}
        sc = {"readOnlyRootFilesystem": True, "privileged": True}
        image = "registry.corp.example/prod/server:latest"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": {"airlock.dev/owner": "bench"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {"name": "server", "image": image, "env": env, "securityContext": sc},
                {
                    "name": "metrics",
                    "image": "registry.corp.example/prod/exporter:0.9.1" + DIGEST,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                },
            ],
        },
    }


@dataclass
class Sample:
    category: str  # "<warn|enforce> <clean|violating>"
    seconds: float
    status: int


@dataclass
class Phase:
    name: str
    samples: list[Sample] = field(default_factory=list)

    def latencies(self, category: str | None = None) -> list[float]:
        return [s.seconds for s in self.samples if category is None or s.category == category]


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _series(exposition: str, name: str, labels: Mapping[str, str]) -> dict[str, float]:
    """Bucket counts (key: the ``le`` value), ``sum`` and ``count`` of one histogram, summed over
    the series whose labels include ``labels``."""
    out: dict[str, float] = {}
    for line in exposition.splitlines():
        for suffix in ("_bucket", "_sum", "_count"):
            prefix = f"{name}{suffix}{{"
            if line.startswith(prefix):
                break
        else:
            continue
        head, _, value = line.rpartition(" ")
        body = head[len(prefix) : head.rindex("}")]
        have = {k: v.strip('"') for k, _, v in (p.partition("=") for p in body.split(","))}
        if any(have.get(k) != v for k, v in labels.items()):
            continue
        key = have["le"] if suffix == "_bucket" else suffix[1:]
        out[key] = out.get(key, 0.0) + float(value)
    return out


@dataclass
class Histogram:
    """The increase of one histogram over the measured phases (summed over rounds)."""

    name: str
    labels: Mapping[str, str]
    delta: dict[str, float] = field(default_factory=dict)

    def add(self, before: str, after: str) -> None:
        b, a = _series(before, self.name, self.labels), _series(after, self.name, self.labels)
        for key, value in a.items():
            self.delta[key] = self.delta.get(key, 0.0) + value - b.get(key, 0.0)

    @property
    def count(self) -> float:
        return self.delta.get("count", 0.0)

    def mean(self) -> float:
        return self.delta.get("sum", 0.0) / self.count if self.count else math.nan

    def quantile(self, q: float) -> tuple[float, float, float]:
        """(estimate, lower edge, upper edge): histogram_quantile's linear interpolation, and the
        bucket it falls in (the estimate is only as good as that bucket is narrow)."""
        edges = sorted((float(k), v) for k, v in self.delta.items() if k not in ("sum", "count"))
        total = edges[-1][1] if edges else 0.0
        if total <= 0:
            return math.nan, math.nan, math.nan
        rank = q * total
        prev_edge, prev_count = 0.0, 0.0
        for edge, count in edges:
            if count >= rank:
                if math.isinf(edge):
                    return prev_edge, prev_edge, edge
                width = count - prev_count
                frac = 0.0 if width <= 0 else (rank - prev_count) / width
                return prev_edge + (edge - prev_edge) * frac, prev_edge, edge
            prev_edge, prev_count = edge, count
        return prev_edge, prev_edge, math.inf


def apiserver_metrics(api: client.ApiClient) -> str:
    method, url, headers, body, post = api.param_serialize(
        "GET", "/metrics", auth_settings=["BearerToken"]
    )
    resp = api.call_api(method, url, header_params=headers, body=body, post_params=post)
    resp.read()
    return str(resp.data.decode())


def run_phase(
    name: str,
    core: client.CoreV1Api,
    plan: Iterable[tuple[str, dict[str, Any]]],
) -> Phase:
    phase = Phase(name)
    for category, body in plan:
        ns = body["metadata"]["namespace"]
        started = time.perf_counter()
        try:
            core.create_namespaced_pod(ns, body)
            status = 201
        except ApiException as exc:
            if exc.status != 403:
                raise
            status = 403
        phase.samples.append(Sample(category, time.perf_counter() - started, status))
    return phase


def delete_pods(core: client.CoreV1Api, namespaces: Iterable[str]) -> None:
    for ns in namespaces:
        core.delete_collection_namespaced_pod(ns, grace_period_seconds=0)
    for ns in namespaces:
        poll_until(
            lambda ns=ns: True if not core.list_namespaced_pod(ns, limit=1).items else None,
            f"pods of {ns} to be deleted",
            120,
        )


def ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value * 1000:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=300, help="Pods per phase (default 300)")
    parser.add_argument("--kubeconfig", help="a running cluster (default: start a local one)")
    parser.add_argument("--webhook-ca-cert", help="CA for the serving cert (with --kubeconfig)")
    parser.add_argument("--webhook-ca-key")
    parser.add_argument("--rounds", type=int, default=2, help="(without, with) rounds (2)")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    args = parser.parse_args()
    global LOAD_BEFORE  # noqa: PLW0603 - recorded once, printed with the results
    LOAD_BEFORE = os.getloadavg()[0]

    started_cluster = False
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig)
        bins = Path(os.environ.get("AIRLOCK_BIN") or localcluster.ensure_binaries())
        if args.webhook_ca_cert and args.webhook_ca_key:
            ca_cert, ca_key = Path(args.webhook_ca_cert), Path(args.webhook_ca_key)
        else:
            ca_dir = Path(tempfile.mkdtemp(prefix="airlock-bench-ca-"))
            c, k = localcluster.make_ca(ca_dir, "webhook-ca", "airlock-bench-webhook-ca")
            ca_cert, ca_key = Path(c), Path(k)
    else:
        cluster = localcluster.start(RUN_DIR)
        started_cluster = not cluster.reused
        kubeconfig, bins = cluster.kubeconfig, cluster.bin_dir
        ca_cert, ca_key = cluster.webhook_ca_cert, cluster.webhook_ca_key
    del bins
    api = config.new_client_from_config(config_file=str(kubeconfig))
    core = client.CoreV1Api(api)
    custom = client.CustomObjectsApi(api)
    ext = client.ApiextensionsV1Api(api)
    tag = uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix="airlock-bench-apiserver-"))
    policy_name = f"bench-{tag}"
    namespaces = {"warn": f"bench-warn-{tag}", "enforce": f"bench-enforce-{tag}"}
    airlock: Airlock | None = None
    try:
        for path in sorted((ROOT / "manifests" / "crds").glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                try:
                    ext.create_custom_resource_definition(doc)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
        poll_until(
            lambda: _served(custom),
            "the Airlock CRDs to be served",
            60,
        )
        custom.create_cluster_custom_object(
            GROUP,
            VERSION,
            "baselinepolicies",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BaselinePolicy",
                "metadata": {"name": policy_name},
                "spec": POLICY,
            },
        )
        for mode, ns in namespaces.items():
            env = "dev" if mode == "warn" else "prod"
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=ns, labels={ENV_LABEL: env}))
            )
        for ns in namespaces.values():
            poll_until(lambda ns=ns: _has_default_sa(core, ns), f"the default SA of {ns}", 60)
        cert, key = localcluster.issue_serving_cert(ca_cert, ca_key, work / "tls")
        airlock = Airlock(
            api=api,
            kubeconfig=kubeconfig,
            ca_cert=ca_cert,
            serving_cert=Path(cert),
            serving_key=Path(key),
            workdir=work / "run",
            policy_name=policy_name,
            tag=tag,
            with_controller=False,
        )
        airlock.start()

        plan: list[tuple[str, dict[str, Any]]] = []
        for i in range(args.pods):
            mode = "warn" if i % 2 == 0 else "enforce"
            violating = (i // 2) % 2 == 1
            category = f"{mode} {'violating' if violating else 'clean'}"
            plan.append((category, _pod(f"p-{i:04d}", namespaces[mode], violating)))
        warmup = [
            (c, {**b, "metadata": {**b["metadata"], "name": "w" + b["metadata"]["name"]}})
            for c, b in plan[:20]
        ]
        probe = _pod("probe", namespaces["enforce"], violating=True)
        ours = Histogram(
            "airlock_admission_duration_seconds", {"kind": "Pod", "operation": "CREATE"}
        )
        apiserver_name = "apiserver_admission_webhook_admission_duration_seconds"
        theirs = {
            hook: Histogram(apiserver_name, {"name": hook, "operation": "CREATE", "type": kind})
            for hook, kind in (
                ("pods.mutate.airlock.dev", "admit"),
                ("pods.validate.airlock.dev", "validating"),
            )
        }
        without, with_hook = Phase("without webhook"), Phase("with webhook")
        for _ in range(args.rounds):
            # without: nothing registered (and proven: the probe is admitted)
            airlock.unregister()
            airlock.wait_until(lambda: not _denied(core, probe), "the webhook to be gone")
            run_phase("warm-up", core, warmup)
            delete_pods(core, namespaces.values())
            without.samples += run_phase("without webhook", core, plan).samples
            delete_pods(core, namespaces.values())

            # with: registered (and proven in force: the probe is denied)
            airlock.register()
            airlock.wait_until(lambda: _denied(core, probe), "the webhook to deny the probe")
            run_phase("warm-up", core, warmup)
            delete_pods(core, namespaces.values())
            ours_before, apiserver_before = airlock.webhook_metrics(), apiserver_metrics(api)
            with_hook.samples += run_phase("with webhook", core, plan).samples
            ours.add(ours_before, airlock.webhook_metrics())
            apiserver_after = apiserver_metrics(api)
            for hist in theirs.values():
                hist.add(apiserver_before, apiserver_after)
            delete_pods(core, namespaces.values())

        report = _report(
            args.pods,
            rounds=args.rounds,
            without=without,
            with_hook=with_hook,
            histograms=[ours, *theirs.values()],
        )
        print(report)
        if not args.no_write:
            replace_section("apiserver", report)
            print(f"\nwrote the apiserver section of {Path('bench/RESULTS.md')}")
    finally:
        if airlock is not None:
            airlock.stop()
        for ns in namespaces.values():
            try:
                core.delete_namespace(ns)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        try:
            custom.delete_cluster_custom_object(GROUP, VERSION, "baselinepolicies", policy_name)
        except ApiException as exc:
            if exc.status != 404:
                raise
        api.close()
        if started_cluster:
            localcluster.stop(RUN_DIR)
    return 0


def _served(custom: client.CustomObjectsApi) -> bool | None:
    try:
        custom.list_cluster_custom_object(GROUP, VERSION, "baselinepolicies", limit=1)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return True


def _has_default_sa(core: client.CoreV1Api, ns: str) -> bool | None:
    try:
        core.read_namespaced_service_account("default", ns)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return True


def _denied(core: client.CoreV1Api, body: Mapping[str, Any]) -> bool:
    try:
        core.create_namespaced_pod(body["metadata"]["namespace"], body, dry_run="All")
    except ApiException as exc:
        return exc.status == 403
    return False


def _report(
    pods: int,
    *,
    rounds: int,
    without: Phase,
    with_hook: Phase,
    histograms: list[Histogram],
) -> str:
    def row(label: str, values: list[float]) -> str:
        return (
            f"| {label} | {len(values)} | {ms(quantile(values, 0.5))} | "
            f"{ms(quantile(values, 0.99))} | {ms(statistics.fmean(values))} |"
        )

    def hist_row(h: Histogram) -> str:
        label = ", ".join(f"{k}={v}" for k, v in h.labels.items())
        cells = []
        for q in (0.5, 0.99):
            value, lo, hi = h.quantile(q)
            cells.append(f"{ms(value)} (bucket {ms(lo)}–{ms(hi)})")
        return (
            f"| `{h.name}{{{label}}}` | {h.count:.0f} | {ms(h.mean())} | "
            + " | ".join(cells)
            + " |"
        )

    denied = sum(s.status == 403 for s in with_hook.samples)
    lines = [
        "## Pod CREATE latency through the API server, with and without Airlock "
        "(bench/bench_apiserver_latency.py)",
        "",
        machine() + f" Load average before the run: {LOAD_BEFORE:.2f}.",
        "",
        f"Method: {pods} Pods per phase, {rounds} rounds of (without, with) alternating, created "
        "one at a time with the Python client (client-observed: request built, sent, answered, "
        "decoded); the same Pods in every phase, deleted in between. Half in a warn namespace, "
        "half in an enforce namespace, half of each with findings (a credential-named variable "
        "with a literal, privileged, `:latest`). Local control plane (etcd, kube-apiserver, "
        "kube-controller-manager on loopback); `airlock webhook` as a subprocess on the same "
        "machine, no controller; registration checked with a probe before each phase. 20 "
        f"warm-up requests before each phase. With the webhook, {denied} of "
        f"{len(with_hook.samples)} requests were denied (the violating Pods of the enforce "
        "namespace), the others admitted.",
        "",
        "| phase | requests | p50 ms | p99 ms | mean ms |",
        "|---|---:|---:|---:|---:|",
        row("without webhook, all", without.latencies()),
        row("with webhook, all", with_hook.latencies()),
    ]
    for category in ("warn clean", "warn violating", "enforce clean", "enforce violating"):
        lines.append(row(f"without, {category}", without.latencies(category)))
        lines.append(row(f"with, {category}", with_hook.latencies(category)))
    d50 = quantile(with_hook.latencies(), 0.5) - quantile(without.latencies(), 0.5)
    d99 = quantile(with_hook.latencies(), 0.99) - quantile(without.latencies(), 0.99)
    dmean = statistics.fmean(with_hook.latencies()) - statistics.fmean(without.latencies())
    lines += [
        "",
        f"**Added by Airlock** (with minus without, all requests): p50 +{ms(d50)} ms, "
        f"p99 +{ms(d99)} ms, mean +{ms(dmean)} ms.",
        "",
        "Server-side histograms over the measured phases with the webhook: Airlock's own "
        "(both calls of a Pod CREATE, mutating and validating, from parsed request to encoded "
        "answer) and the API server's per webhook (its call, TLS and network included). Means "
        "are exact (sum/count); quantiles are interpolated inside buckets, so they are only as "
        "fine as the bucket shown.",
        "",
        "| histogram | observations | mean ms | ≈p50 ms | ≈p99 ms |",
        "|---|---:|---:|---:|---:|",
        *(hist_row(h) for h in histograms),
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
