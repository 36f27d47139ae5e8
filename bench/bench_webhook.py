"""Admission webhook throughput, latency and memory over TLS keep-alive, server on one core.

Three servers answer the same AdmissionReviews (Pods, Deployments, PyTorchJobs; 5–50 KB, as the
API server sends them: defaulted specs, managedFields, last-applied annotations):

* ``airlock`` — Airlock's own server (:class:`airlock.admission.WebhookServer`) with a
  pre-loaded :class:`~airlock.admission.StateStore`, no cluster;
* ``kopf`` — the same engine behind kopf's admission path: ``@kopf.on.validate`` handlers served
  by ``kopf.WebhookServer`` through kopf's ``serve_admission_request``, wired exactly as
  ``kopf.operator()`` wires them. ``kopf.operator()`` itself cannot start without an API server
  (resource discovery, peering), so the insight it would discover (which resources have
  webhooks) is filled in by hand; everything on the request path is kopf's;
* ``bare`` — an aiohttp handler that parses the review and answers allowed (the floor).

Each server runs in a subprocess pinned to one core; the load generator runs in this process,
pinned to another core, over N keep-alive TLS connections to 127.0.0.1 only. Reported: reviews/s
at saturation (closed loop) with the server's CPU use (to tell a server-bound run from a
client-bound one), p50/p99 latency at half that rate (open loop: requests are sent on a fixed
schedule and latency is counted from the scheduled time, so queueing is not hidden), and the
server's RSS (VmRSS) idle after warm-up and at most under load.

Targets (DESIGN.md): >= 3,000 reviews/s on one core, p99 <= 5 ms at half rate, <= 80 MB RSS idle,
<= 120 MB under load. Run: ``make bench-webhook`` or ``.venv/bin/python bench/bench_webhook.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime as dt
import functools
import ipaddress
import json
import os
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from results import machine, replace_section

HOST = "127.0.0.1"
DIGEST = "sha256:" + "7c" * 32
TARGETS = ("airlock", "kopf", "bare")

# -------------------------------------------------------------------------------------------
# The reviews


def _env(n: int, prefix: str) -> list[dict[str, Any]]:
    values = [
        "s3://models-prod/llama/3.1-8b/",
        "http://feast.ml-prod.svc.cluster.local:6566",
        "expandable_segments:True",
        "meta-llama/Llama-3.1-8B",
        "/cache/huggingface",
        "info",
        "16",
        "eth0",
    ]
    return [{"name": f"{prefix}_{i}", "value": values[i % len(values)]} for i in range(n)]


def _container(name: str, image: str, env: int, *, hardened: bool) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": image,
        "command": ["torchrun"],
        "args": ["--nproc-per-node=4", "--config", "/etc/train/config.yaml", "--resume"],
        "env": _env(env, name.upper().replace("-", "_")),
        "ports": [{"containerPort": 23456, "name": "dist", "protocol": "TCP"}],
        "resources": {
            "limits": {"nvidia.com/gpu": "4", "memory": "64Gi", "cpu": "16"},
            "requests": {"nvidia.com/gpu": "4", "memory": "64Gi", "cpu": "16"},
        },
        "volumeMounts": [
            {"name": "cache", "mountPath": "/cache"},
            {"name": "config", "mountPath": "/etc/train", "readOnly": True},
            {"name": "kube-api-access", "mountPath": "/var/run/secrets/kube", "readOnly": True},
        ],
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": 8080, "scheme": "HTTP"},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "timeoutSeconds": 1,
            "successThreshold": 1,
            "failureThreshold": 3,
        },
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }
    if hardened:
        c["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
    return c


def _pod_spec(*, hardened: bool, leaky: bool) -> dict[str, Any]:
    image = f"registry.corp.example/prod/pytorch-train:2.5.1-cuda12@{DIGEST}"
    containers = [
        _container(
            "trainer", image if not leaky else "pytorch/pytorch:latest", 28, hardened=hardened
        ),
        _container(
            "dcgm-exporter",
            f"registry.corp.example/prod/dcgm-exporter:3.3.8@{DIGEST}",
            6,
            hardened=hardened,
        ),
    ]
    if leaky:
        containers[0]["env"][3] = {
            "name": "HF_TOKEN",
            "value": "hf_" + "Qm7Zx2Lk9Pw4Rt6Yb1Nc3Vd8Gh",
        }
    spec: dict[str, Any] = {
        "initContainers": [
            _container(
                "fetch-model",
                f"registry.corp.example/prod/s5cmd:2.2.2@{DIGEST}",
                6,
                hardened=hardened,
            )
        ],
        "containers": containers,
        "volumes": [
            {"name": "cache", "emptyDir": {"sizeLimit": "200Gi"}},
            {"name": "config", "configMap": {"name": "trainer-config", "defaultMode": 420}},
            {
                "name": "kube-api-access",
                "projected": {
                    "defaultMode": 420,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "kube-root-ca.crt",
                                "items": [{"key": "ca.crt", "path": "ca.crt"}],
                            }
                        },
                    ],
                },
            },
        ],
        "nodeSelector": {"airlock.dev/environment": "prod", "nvidia.com/gpu.product": "H100"},
        "tolerations": [
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "trainer",
        "schedulerName": "default-scheduler",
        "priority": 0,
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
    }
    if hardened:
        spec["automountServiceAccountToken"] = False
        spec["securityContext"] = {"seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 1000}
    return spec


def _managed_fields(manager: str, n: int) -> list[dict[str, Any]]:
    fields = {f"f:{k}": {} for k in ("replicas", "selector", "template", "strategy")}
    return [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": "2026-11-26T10:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {f"f:l{i}": {} for i in range(12)}},
                "f:spec": fields,
            },
        }
        for _ in range(n)
    ]


def _meta(name: str, namespace: str, *, owner: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": name,
        "namespace": namespace,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name + namespace)),
        "creationTimestamp": None,
        "labels": {"app": "trainer", "app.kubernetes.io/part-of": "llm-finetune"},
        "managedFields": _managed_fields("kubectl-client-side-apply", 2),
    }
    if owner:
        meta["labels"]["airlock.dev/owner"] = "llm-team"
    return meta


def pod(namespace: str, *, hardened: bool, leaky: bool) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            **_meta("trainer-7f9c6d5b8-x2k4p", namespace),
            "generateName": "trainer-7f9c6d5b8-",
        },
        "spec": _pod_spec(hardened=hardened, leaky=leaky),
    }


def _with_last_applied(obj: dict[str, Any]) -> dict[str, Any]:
    applied = copy.deepcopy(obj)
    applied["metadata"].pop("managedFields", None)
    obj["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)
    }
    return obj


def deployment(namespace: str, *, hardened: bool, leaky: bool) -> dict[str, Any]:
    return _with_last_applied(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("trainer", namespace),
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "trainer"}},
                "template": {
                    "metadata": {"labels": {"app": "trainer"}},
                    "spec": _pod_spec(hardened=hardened, leaky=leaky),
                },
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            },
        }
    )


def pytorchjob(namespace: str, *, hardened: bool, leaky: bool) -> dict[str, Any]:
    template = {
        "metadata": {"labels": {"app": "finetune"}},
        "spec": _pod_spec(hardened=hardened, leaky=leaky),
    }
    for c in template["spec"]["containers"]:
        c["env"].extend(_env(20, "EXTRA"))
    return _with_last_applied(
        {
            "apiVersion": "kubeflow.org/v1",
            "kind": "PyTorchJob",
            "metadata": _meta("finetune", namespace),
            "spec": {
                "pytorchReplicaSpecs": {
                    "Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template},
                    "Worker": {
                        "replicas": 15,
                        "restartPolicy": "OnFailure",
                        "template": copy.deepcopy(template),
                    },
                }
            },
        }
    )


_RESOURCES = {"Pod": "pods", "Deployment": "deployments", "PyTorchJob": "pytorchjobs"}


def review(obj: dict[str, Any]) -> bytes:
    group, _, version = obj["apiVersion"].rpartition("/")
    gvk = {"group": group, "version": version, "kind": obj["kind"]}
    gvr = {"group": group, "version": version, "resource": _RESOURCES[obj["kind"]]}
    request = {
        "uid": str(uuid.uuid4()),
        "kind": gvk,
        "resource": gvr,
        "requestKind": gvk,
        "requestResource": gvr,
        "name": obj["metadata"]["name"],
        "namespace": obj["metadata"]["namespace"],
        "operation": "CREATE",
        "userInfo": {
            "username": "system:serviceaccount:kube-system:replicaset-controller",
            "uid": "0e0b4ab7-3b0f-4a5e-9c34-2f2c8e2d9a11",
            "groups": [
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated",
            ],
        },
        "object": obj,
        "oldObject": None,
        "dryRun": False,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"},
    }
    body = {"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": request}
    return json.dumps(body).encode()


def corpus() -> list[tuple[str, bytes]]:
    """(label, body) in the order they are sent: 50% Pods, 30% Deployments, 20% PyTorchJobs."""
    out: list[tuple[str, bytes]] = []
    for i in range(20):
        ns = "ml-prod" if i % 2 == 0 else "ml-dev"
        hardened, leaky = i % 4 != 3, i % 5 == 4
        if i % 10 < 5:
            obj = pod(ns, hardened=hardened, leaky=leaky)
        elif i % 10 < 8:
            obj = deployment(ns, hardened=hardened, leaky=leaky)
        else:
            obj = pytorchjob(ns, hardened=hardened, leaky=leaky)
        out.append((obj["kind"], review(obj)))
    return out


# -------------------------------------------------------------------------------------------
# The servers (each runs in its own subprocess). Imports happen inside each server, so its RSS
# counts only what that server loads (the bare one never imports Airlock, the kopf one never
# imports Airlock's server).

POLICY = {
    "apiVersion": "airlock.dev/v1alpha1",
    "kind": "BaselinePolicy",
    "metadata": {"name": "default", "generation": 1},
    "spec": {
        "defaultEnvironment": "dev",
        "environments": [
            {"name": "dev", "mode": "warn", "allowedRegistries": ["registry.corp.example/"]},
            {
                "name": "prod",
                "mode": "enforce",
                "allowedRegistries": ["registry.corp.example/prod/"],
                "allowedStoragePrefixes": ["s3://models-prod/"],
            },
        ],
    },
}


def _store() -> Any:
    from airlock.admission import StateStore  # noqa: PLC0415

    store = StateStore()
    store.set_policy(POLICY)
    for i in range(200):
        store.set_namespace(f"team-{i}", {"airlock.dev/environment": "prod" if i % 2 else "dev"})
    store.set_namespace("ml-prod", {"airlock.dev/environment": "prod", "airlock.dev/owner": "llm"})
    store.set_namespace("ml-dev", {"airlock.dev/environment": "dev"})
    for what in ("policy", "namespaces", "exceptions"):
        store.mark_synced(what)
    return store


async def _serve_airlock(port: int, cert: Path, key: Path, ready: Callable[[], None]) -> None:
    from airlock.admission import (  # noqa: PLC0415
        MetricsSettings,
        ServerSettings,
        TLSSettings,
        WebhookServer,
        WebhookSettings,
    )

    settings = WebhookSettings(
        tls=TLSSettings(cert_file=cert, key_file=key),
        server=ServerSettings(host=HOST, port=port, drain_seconds=0),
        metrics=MetricsSettings(host=HOST, port=0),
    )
    server = WebhookServer(settings, _store())
    await server.start()
    ready()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()


async def _serve_bare(port: int, cert: Path, key: Path, ready: Callable[[], None]) -> None:
    import orjson  # noqa: PLC0415 - as Airlock's server decodes and encodes
    from aiohttp import web  # noqa: PLC0415

    async def validate(request: web.Request) -> web.Response:
        data = orjson.loads(await request.read())
        answer = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {"uid": data["request"]["uid"], "allowed": True},
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application(client_max_size=3 * 1024 * 1024)
    app.router.add_post("/validate", validate)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    await web.TCPSite(runner, HOST, port, ssl_context=ctx).start()
    ready()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def _serve_kopf(port: int, cert: Path, key: Path, ready: Callable[[], None]) -> None:
    import kopf  # noqa: PLC0415
    from airlock.engine import evaluate  # noqa: PLC0415
    from kopf._cogs.structs import references  # noqa: PLC0415
    from kopf._core.engines import admission, indexing  # noqa: PLC0415
    from kopf._core.reactor import inventory  # noqa: PLC0415

    store = _store()
    registry = kopf.OperatorRegistry()

    def check(body: kopf.Body, warnings: list[str], **_: Any) -> None:
        verdict = evaluate(body, store.context)
        warnings.extend(f"[{f.rule}] {f.path}: {f.message}"[:256] for f in verdict.warned)
        if verdict.enforced:
            lines = [f"[{f.rule}] {f.path}: {f.message} — fix: {f.fix}" for f in verdict.enforced]
            raise kopf.AdmissionError("\n".join(lines[:30]), code=403)

    resources = []
    for group, version, plural, kind in (
        ("", "v1", "pods", "Pod"),
        ("apps", "v1", "deployments", "Deployment"),
        ("kubeflow.org", "v1", "pytorchjobs", "PyTorchJob"),
    ):
        kopf.on.validate(group, version, plural, id=f"airlock-{plural}", registry=registry)(check)
        resources.append(
            references.Resource(
                group=group,
                version=version,
                plural=plural,
                kind=kind,
                namespaced=True,
                verbs=["create", "update", "get", "list", "watch"],
            )
        )
    settings = kopf.OperatorSettings()
    insights = references.Insights()
    insights.webhook_resources.update(resources)
    fn = functools.partial(
        admission.serve_admission_request,
        settings=settings,
        registry=registry,
        insights=insights,
        memories=inventory.ResourceMemories(),
        memobase=kopf.Memo(),
        indices=indexing.OperatorIndexers().indices,
    )
    server = kopf.WebhookServer(addr=HOST, port=port, certfile=str(cert), pkeyfile=str(key))
    async with server:
        async for _config in server(fn):
            ready()


def serve(target: str, port: int, cert: Path, key: Path, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    impl = {"airlock": _serve_airlock, "bare": _serve_bare, "kopf": _serve_kopf}[target]

    def ready() -> None:
        print("READY", flush=True)

    async def main() -> None:
        task = asyncio.create_task(impl(port, cert, key, ready))
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(main())


# -------------------------------------------------------------------------------------------
# Certificates


def write_certs(tmp: Path) -> tuple[Path, Path, Path]:
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("bench-ca"))
        .issuer_name(name("bench-ca"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name("airlock-bench"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = tmp / "ca.crt", tmp / "tls.crt", tmp / "tls.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


# -------------------------------------------------------------------------------------------
# The load generator


def _proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Conn:
    """One keep-alive HTTP/1.1 connection over TLS, as lean as possible so the client is cheap."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext) -> Conn:
        reader, writer = await asyncio.open_connection(HOST, port, ssl=ctx, limit=1 << 22)
        return cls(reader, writer)

    async def post(self, path: str, body: bytes) -> int:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        status = int(raw[9:12])
        length = 0
        for line in raw.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        else:
            raise RuntimeError("response without Content-Length")
        await self.reader.readexactly(length)
        return status

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            await self.writer.wait_closed()


@dataclass
class Saturation:
    rate: float
    errors: int
    server_cpu: float  # share of one core
    rss_max: float


@dataclass
class Paced:
    rate: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    rss_max: float


async def _with_conns(
    port: int, ctx: ssl.SSLContext, n: int, fn: Callable[[list[Conn]], Awaitable[Any]]
) -> Any:
    conns = [await Conn.open(port, ctx) for _ in range(n)]
    try:
        return await fn(conns)
    finally:
        for c in conns:
            await c.close()


async def _sample_rss(pid: int, stop: asyncio.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(_proc_rss_mb(pid))
        await asyncio.sleep(0.1)


@dataclass
class Target:
    """Where the load goes and what it sends."""

    port: int
    ctx: ssl.SSLContext
    bodies: list[bytes]
    pid: int
    conns: int


async def saturate(t: Target, seconds: float) -> Saturation:
    port, ctx, bodies, pid, conns = t.port, t.ctx, t.bodies, t.pid, t.conns

    async def run(pool: list[Conn]) -> Saturation:
        done = errors = 0
        warm_end = time.perf_counter() + 1.0
        end = warm_end + seconds
        counting = False

        async def worker(c: Conn, offset: int) -> None:
            nonlocal done, errors
            i = offset
            while True:
                now = time.perf_counter()
                if now >= end:
                    return
                status = await c.post("/validate", bodies[i % len(bodies)])
                i += 1
                if counting and time.perf_counter() <= end:
                    done += 1
                    errors += status != 200

        stop = asyncio.Event()
        rss: list[float] = []
        tasks = [asyncio.create_task(worker(c, k * 7)) for k, c in enumerate(pool)]
        await asyncio.sleep(max(0.0, warm_end - time.perf_counter()))
        counting = True
        cpu0, t0 = _proc_cpu_s(pid), time.perf_counter()
        sampler = asyncio.create_task(_sample_rss(pid, stop, rss))
        await asyncio.gather(*tasks)
        cpu1, t1 = _proc_cpu_s(pid), time.perf_counter()
        stop.set()
        await sampler
        return Saturation(done / seconds, errors, (cpu1 - cpu0) / (t1 - t0), max(rss))

    result: Saturation = await _with_conns(port, ctx, conns, run)
    return result


async def paced(t: Target, rate: float, seconds: float) -> Paced:
    port, ctx, bodies, pid, conns = t.port, t.ctx, t.bodies, t.pid, t.conns

    async def run(pool: list[Conn]) -> Paced:
        free: asyncio.Queue[Conn] = asyncio.Queue()
        for c in pool:
            free.put_nowait(c)
        latencies: list[float] = []
        errors = 0
        start = time.perf_counter() + 0.2
        total = int(rate * seconds)

        async def one(i: int) -> None:
            nonlocal errors
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            c = await free.get()
            try:
                status = await c.post("/validate", bodies[i % len(bodies)])
            finally:
                free.put_nowait(c)
            latencies.append(time.perf_counter() - scheduled)
            errors += status != 200

        stop = asyncio.Event()
        rss: list[float] = []
        sampler = asyncio.create_task(_sample_rss(pid, stop, rss))
        # Schedule in slices so the event loop is not flooded with timers.
        pending: set[asyncio.Task[None]] = set()
        for i in range(total):
            pending.add(asyncio.create_task(one(i)))
            if i % 200 == 199:
                wake = start + (i - 100) / rate - time.perf_counter()
                if wake > 0:
                    await asyncio.sleep(wake)
                pending = {t for t in pending if not t.done()}
        await asyncio.gather(*pending)
        stop.set()
        await sampler
        latencies.sort()
        q = statistics.quantiles(latencies, n=100)
        return Paced(rate, q[49] * 1000, q[98] * 1000, latencies[-1] * 1000, errors, max(rss))

    result: Paced = await _with_conns(port, ctx, conns, run)
    return result


def in_process_costs(bodies: list[bytes], rounds: int = 30) -> tuple[float, float, float]:
    """Mean µs per review of JSON decoding, Airlock's handler, and the engine alone, in-process."""
    import orjson  # noqa: PLC0415 - what the server decodes with
    from airlock.admission import AdmissionSettings  # noqa: PLC0415
    from airlock.admission.handler import handle_validate  # noqa: PLC0415
    from airlock.engine import evaluate  # noqa: PLC0415

    store, settings = _store(), AdmissionSettings()
    decoded = [orjson.loads(b) for b in bodies]
    for d in decoded:
        handle_validate(d, store, settings)
    clock = time.perf_counter
    t0 = clock()
    for _ in range(rounds):
        for b in bodies:
            orjson.loads(b)
    t1 = clock()
    for _ in range(rounds):
        for d in decoded:
            handle_validate(d, store, settings)
    t2 = clock()
    for _ in range(rounds):
        for d in decoded:
            evaluate(d["request"]["object"], store.context)
    t3 = clock()
    n = rounds * len(bodies) / 1e6
    return (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Row:
    target: str
    saturation: Saturation
    paced: Paced
    rss_idle: float


def bench_target(
    target: str, certs: tuple[Path, Path, Path], bodies: list[bytes], args: argparse.Namespace
) -> Row:
    ca, cert, key = certs
    port = _free_port()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--serve",
            target,
            "--port",
            str(port),
            "--cert",
            str(cert),
            "--key",
            str(key),
            "--cpu",
            str(server_cpu),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip() != "READY":
            raise RuntimeError(f"{target} server did not start: {line!r}")
        os.sched_setaffinity(0, {client_cpu})
        ctx = ssl.create_default_context(cafile=str(ca))

        async def go() -> Row:
            # warm-up: every body once per connection, then a quiet second for the idle figure
            async def warm(pool: list[Conn]) -> None:
                for c in pool:
                    for b in bodies:
                        status = await c.post("/validate", b)
                        if status != 200:
                            raise RuntimeError(f"{target}: HTTP {status} during warm-up")

            await _with_conns(port, ctx, 4, warm)
            await asyncio.sleep(1.0)
            idle = _proc_rss_mb(proc.pid)
            load = Target(port, ctx, bodies, proc.pid, args.connections)
            sat = await saturate(load, args.seconds)
            pac = await paced(load, sat.rate / 2, args.seconds)
            return Row(target, sat, pac, idle)

        return asyncio.run(go())
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--targets", default=",".join(TARGETS), help="comma-separated: airlock,kopf,bare"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each phase")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive TLS connections")
    parser.add_argument("--no-record", action="store_true", help="do not update bench/RESULTS.md")
    # internal: run one server
    parser.add_argument("--serve", choices=TARGETS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cert", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--key", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.cert, args.key, args.cpu)
        return 0
    if len(os.sched_getaffinity(0)) < 2:
        print("note: fewer than 2 CPUs available; server and client share a core", file=sys.stderr)
    load_before = os.getloadavg()[0]
    reviews = corpus()
    bodies = [b for _, b in reviews]
    sizes = {k: [len(b) for kk, b in reviews if kk == k] for k in _RESOURCES}
    size_note = ", ".join(f"{k} {min(v) // 1024}–{max(v) // 1024} KB" for k, v in sizes.items())
    mean_kb = statistics.mean(map(len, bodies)) / 1024
    print(f"reviews: {len(bodies)} distinct ({size_note}), mean {mean_kb:.1f} KB")
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[-1]})
    decode_us, handler_us, engine_us = in_process_costs(bodies)
    costs = (
        f"In-process, per review (mean over the corpus, one core): JSON decoding (orjson) "
        f"{decode_us:.0f} µs, Airlock's handler {handler_us:.0f} µs, of which the engine's "
        f"`evaluate` {engine_us:.0f} µs."
    )
    print(costs)
    rows = []
    with tempfile.TemporaryDirectory(prefix="airlock-bench-") as tmp:
        certs = write_certs(Path(tmp))
        for target in args.targets.split(","):
            row = bench_target(target, certs, bodies, args)
            rows.append(row)
            s, p = row.saturation, row.paced
            print(
                f"{target:8s} {s.rate:7.0f} reviews/s (server CPU {s.server_cpu:.0%}, "
                f"errors {s.errors}); at {p.rate:.0f}/s p50 {p.p50_ms:.2f} ms "
                f"p99 {p.p99_ms:.2f} ms; "
                f"RSS idle {row.rss_idle:.0f} MB, load {max(s.rss_max, p.rss_max):.0f} MB",
                flush=True,
            )
    table = [
        "| server | reviews/s (saturation) | server CPU | per server CPU-second "
        "| half-rate p50 ms | p99 ms | max ms | RSS idle MB | RSS load MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        s, p = r.saturation, r.paced
        table.append(
            f"| {r.target} | {s.rate:,.0f} | {s.server_cpu:.0%} "
            f"| {s.rate / max(s.server_cpu, 1e-9):,.0f} "
            f"| {p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.max_ms:.1f} | {r.rss_idle:.0f} "
            f"| {max(s.rss_max, p.rss_max):.0f} |"
        )
    text = "\n".join(table)
    print()
    print(text)
    if not args.no_record:
        replace_section(
            "webhook",
            "## Webhook: AdmissionReviews over TLS keep-alive, server on one core\n\n"
            f"{machine()} Load average before the run: {load_before:.2f} (other work on the "
            "machine shares the cores and lowers the server's CPU share: see the CPU columns)."
            "\n\n"
            f"Method: `python bench/bench_webhook.py --seconds {args.seconds:g} --connections "
            f"{args.connections}`. Server in a subprocess pinned to one core, load generator "
            "pinned to another (a lean HTTP/1.1 client over asyncio TLS streams, 127.0.0.1 only). "
            f"{len(bodies)} distinct reviews as the API server sends them ({size_note}; "
            "prod and dev namespaces, compliant, warned and denied). Saturation: closed loop "
            f"over {args.connections} connections; latency: open loop at half the saturation "
            "rate, measured from the scheduled send time. RSS is VmRSS: idle after warm-up, "
            "and the maximum sampled under load. `kopf`: the same engine in `@kopf.on.validate` "
            "handlers behind `kopf.WebhookServer` and kopf's `serve_admission_request` "
            "(`kopf.operator()` needs an API server for discovery, so the webhook resources "
            "are declared by hand). `bare`: aiohttp, parse and answer allowed.\n\n"
            "Targets: >= 3,000 reviews/s, p99 <= 5 ms at half rate, <= 80 MB RSS idle, "
            "<= 120 MB under load. A server given less than a whole core (CPU column) is "
            "compared by reviews per server CPU-second.\n\n" + text + "\n\n" + costs,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
