"""A large, deterministic manifest corpus for comparing scanners (bench/compare_scanners.py).

1,000 files, 5,000 Kubernetes objects, about 88 MB of YAML: Deployments, StatefulSets, Jobs,
CronJobs, Pods, PyTorchJobs, RayClusters, InferenceServices and JobSets (with Services and
ConfigMaps beside them), 20–160 env vars per container, about a third of the workloads with
something to find (`:latest` or Docker Hub images, privileged or root containers, host paths,
no owner label, a dev workload naming a prod Service, now and then a plaintext token).

The corpus is written once to a cache directory outside the repository,
``~/.cache/airlock/bench-corpus/v<GENERATOR_VERSION>/`` (``$AIRLOCK_BENCH_CACHE`` replaces
``~/.cache/airlock``), and regenerated only when missing or incomplete. The same seed gives the
same bytes on every machine; change GENERATOR_VERSION whenever the output changes.

Layout:
  generated/teamNN/appNNNN.yaml   the corpus (pass the directory or the files to a scanner)
  small/pod.yaml                  one small Pod, for measuring start-up
  corpus.json                     files, objects, bytes and kinds; written last (completeness mark)

Usage: .venv/bin/python bench/gen_corpus.py [--dir DIR] [--force]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import string
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

GENERATOR_VERSION = 1
SEED = 20261126
FILES = 1_000
OBJECTS_PER_FILE = 5
ENV_MIN, ENV_MAX = 20, 160

Obj = dict[str, Any]

# ------------------------------------------------------------------------------ where it lives


def cache_root() -> Path:
    base = os.environ.get("AIRLOCK_BENCH_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "airlock"


def default_dir() -> Path:
    return cache_root() / "bench-corpus" / f"v{GENERATOR_VERSION}"


@dataclass(frozen=True)
class Corpus:
    root: Path
    directory: Path  # generated/
    files: list[str]
    objects: int
    bytes: int
    kinds: dict[str, int]
    small: Path  # one small Pod

    @property
    def megabytes(self) -> float:
        return self.bytes / 1e6


# ------------------------------------------------------------------------------ values

_ENV_PREFIXES = (
    "APP", "MODEL", "NCCL", "HF", "TORCH", "CUDA", "RAY", "SERVING", "TRAIN", "DATA", "CACHE",
    "LOG", "METRICS", "TRACING", "FEATURE", "TOKENIZER", "BATCH", "GRPC", "HTTP", "DB", "QUEUE",
    "S3", "GCS", "OTEL", "WANDB", "MLFLOW", "KSERVE", "VLLM", "TRITON", "DEEPSPEED",
)  # fmt: skip
_ENV_SUFFIXES = (
    "ENABLED", "LEVEL", "TIMEOUT", "RETRIES", "PORT", "HOST", "URL", "URI", "PATH", "DIR", "SIZE",
    "THREADS", "WORKERS", "MODE", "FORMAT", "INTERVAL", "ENDPOINT", "BUCKET", "REGION", "NAME",
    "VERSION", "LIMIT", "RATIO", "SEED", "DEVICE", "CONFIG", "BACKEND", "PROFILE", "TAGS", "ID",
)  # fmt: skip
_WORDS = (
    "alpha", "beta", "gamma", "delta", "llama", "mistral", "bert", "gpt", "whisper", "clip",
    "resnet", "vit", "embed", "rerank", "chat", "summarise", "classify", "detect", "segment",
    "translate", "index", "shard", "replica", "primary", "warm", "cold", "fast", "slow",
)  # fmt: skip
_NAMESPACES = {
    "prod": ("ml-prod", "serving-prod", "training-prod"),
    "staging": ("ml-staging", "serving-staging"),
    "dev": ("ml-dev", "sandbox", "research-dev"),
}
_REGISTRIES = {
    "prod": "registry.prod.corp.example",
    "staging": "registry.staging.corp.example",
    "dev": "registry.dev.corp.example",
}
_IMAGES = (
    "trainer", "inference-server", "tokenizer", "feature-loader", "metrics-exporter", "vllm",
    "triton", "ray-worker", "model-downloader", "embedder", "reranker", "gateway",
)  # fmt: skip
_LOWER = string.ascii_lowercase
_ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choices(alphabet, k=n))


def _fake_token(rng: random.Random) -> tuple[str, str]:
    """A value shaped like a leaked credential, drawn at run time (never a real one, and none
    of them spelled out in this file)."""
    shape = rng.randrange(4)
    if shape == 0:
        return "HF_TOKEN", "hf" + "_" + _rand(rng, string.ascii_letters, 34)
    if shape == 1:
        return "AWS_ACCESS_KEY_ID", "AK" + "IA" + _rand(rng, string.ascii_uppercase + "234567", 16)
    if shape == 2:
        return "GITHUB_TOKEN", "gh" + "p_" + _rand(rng, _ALNUM, 36)
    user, word = rng.choice(_WORDS), _rand(rng, _ALNUM, 20)
    return "DATABASE_URL", f"postgres://{user}:{word}@db.ml-prod.svc:5432/features"


def _env_value(rng: random.Random, env: str, suffix: str) -> str:
    ns = rng.choice(_NAMESPACES[env])
    word = rng.choice(_WORDS)
    r = rng.random()
    if suffix in ("URL", "ENDPOINT", "HOST"):
        return f"http://{word}-svc.{ns}.svc.cluster.local:{rng.randrange(1024, 32768)}/v1"
    if suffix in ("URI", "BUCKET"):
        scheme = rng.choice(("s3", "gs", "pvc"))
        return f"{scheme}://models-{env}/{word}/{rng.randrange(1, 40)}.{rng.randrange(10)}/"
    if suffix in ("PATH", "DIR"):
        return f"/mnt/{word}/{rng.choice(_WORDS)}/{rng.randrange(1000)}"
    if suffix in ("ENABLED",):
        return rng.choice(("true", "false", "1", "0"))
    if suffix in ("ID", "SEED", "VERSION"):
        return _rand(rng, "0123456789abcdef", rng.choice((8, 12, 32)))
    if suffix in ("CONFIG", "TAGS"):
        return json.dumps(
            {
                "retries": rng.randrange(10),
                "backoff": round(rng.random(), 2),
                "labels": rng.sample(_WORDS, 3),
            }
        )
    if r < 0.35:
        return str(rng.randrange(100_000))
    if r < 0.5:
        return f"{rng.random():.4f}"
    if r < 0.7:
        return ",".join(rng.sample(_WORDS, rng.randrange(1, 6)))
    return " ".join(rng.sample(_WORDS, rng.randrange(2, 9)))


def _env(rng: random.Random, env: str, leak: bool, cross_env: bool) -> list[Obj]:
    n = rng.randint(ENV_MIN, ENV_MAX)
    out: list[Obj] = []
    seen: set[str] = set()
    for i in range(n):
        prefix, suffix = rng.choice(_ENV_PREFIXES), rng.choice(_ENV_SUFFIXES)
        name = f"{prefix}_{suffix}"
        if name in seen:
            name = f"{name}_{i}"
        seen.add(name)
        r = rng.random()
        if r < 0.05:
            ref = {"name": f"{prefix.lower()}-credentials", "key": suffix.lower()}
            out.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        elif r < 0.08:
            ref = {"name": f"{prefix.lower()}-config", "key": suffix.lower()}
            out.append({"name": name, "valueFrom": {"configMapKeyRef": ref}})
        elif r < 0.10:
            field = rng.choice(("metadata.name", "metadata.namespace", "status.podIP"))
            out.append({"name": name, "valueFrom": {"fieldRef": {"fieldPath": field}}})
        else:
            out.append({"name": name, "value": _env_value(rng, env, suffix)})
    if cross_env:
        out.append({"name": "RANKER_URL", "value": "http://ranker.ml-prod.svc.cluster.local:8080"})
    if leak:
        name, value = _fake_token(rng)
        out.insert(rng.randrange(len(out) + 1), {"name": name, "value": value})
    return out


# ------------------------------------------------------------------------------ objects


@dataclass
class _Profile:
    env: str  # prod / staging / dev
    namespace: str
    bad: bool  # has hygiene findings (image, hardening, owner)
    leak: bool  # one container holds a plaintext credential
    cross_env: bool  # a dev workload naming a prod Service


def _profile(rng: random.Random) -> _Profile:
    env = rng.choices(("prod", "staging", "dev"), weights=(4, 2, 4))[0]
    return _Profile(
        env=env,
        namespace=rng.choice(_NAMESPACES[env]),
        bad=rng.random() < 0.33,
        leak=rng.random() < 0.04,
        cross_env=env == "dev" and rng.random() < 0.2,
    )


def _image(rng: random.Random, p: _Profile, name: str) -> str:
    if p.bad and rng.random() < 0.5:
        return rng.choice(
            ("pytorch/pytorch:latest", f"docker.io/library/python:3.{rng.randrange(8, 13)}")
        )
    digest = _rand(rng, "0123456789abcdef", 64)
    tag = f"{rng.randrange(1, 4)}.{rng.randrange(20)}.{rng.randrange(10)}"
    return f"{_REGISTRIES[p.env]}/{p.env}/{name}:{tag}@sha256:{digest}"


def _container(rng: random.Random, p: _Profile, role: str, leak: bool) -> Obj:
    image_name = rng.choice(_IMAGES)
    sc: Obj = {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "runAsUser": 1000 + rng.randrange(1000),
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if p.bad:
        choice = rng.randrange(4)
        if choice == 0:
            sc = {"privileged": True}
        elif choice == 1:
            sc = {"runAsUser": 0, "allowPrivilegeEscalation": True}
        elif choice == 2:
            sc = {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}
        else:
            sc = {}
    gpu = role == "main" and rng.random() < 0.6
    limits: Obj = {
        "cpu": str(rng.choice((1, 2, 4, 8, 16))),
        "memory": f"{rng.choice((2, 8, 32, 64))}Gi",
    }
    if gpu:
        limits["nvidia.com/gpu"] = str(rng.choice((1, 2, 4, 8)))
    c: Obj = {
        "name": role if role != "main" else image_name,
        "image": _image(rng, p, image_name),
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "python",
            "-m",
            f"{rng.choice(_WORDS)}.{rng.choice(('serve', 'train', 'run'))}",
        ],
        "args": [f"--port={rng.randrange(1024, 32768)}", f"--workers={rng.randint(1, 16)}"],
        "env": _env(rng, p.env, leak, p.cross_env and role == "main"),
        "resources": {
            "requests": {"cpu": "500m", "memory": "1Gi"},
            "limits": limits,
        },
        "securityContext": sc,
        "volumeMounts": [
            {"name": "cache", "mountPath": "/cache"},
            {"name": "models", "mountPath": "/models", "readOnly": True},
        ],
    }
    if role == "main":
        c["ports"] = [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
        c["readinessProbe"] = {
            "httpGet": {"path": "/healthz", "port": 8080},
            "periodSeconds": 10,
        }
        c["livenessProbe"] = {"httpGet": {"path": "/livez", "port": 8080}, "periodSeconds": 20}
    return c


def _pod_spec(rng: random.Random, p: _Profile, restart: str | None = None) -> Obj:
    roles = ["main"]
    if rng.random() < 0.55:
        roles.append("sidecar")
    leak_at = rng.randrange(len(roles)) if p.leak else -1
    spec: Obj = {}
    if rng.random() < 0.45:
        spec["initContainers"] = [_container(rng, p, "init", leak=False)]
    spec["containers"] = [_container(rng, p, r, leak=i == leak_at) for i, r in enumerate(roles)]
    volumes: list[Obj] = [
        {"name": "cache", "emptyDir": {"sizeLimit": "20Gi"}},
        {"name": "models", "persistentVolumeClaim": {"claimName": f"models-{p.env}"}},
    ]
    if p.bad and rng.random() < 0.3:
        volumes.append({"name": "host", "hostPath": {"path": "/var/lib/nvidia"}})
    spec["volumes"] = volumes
    spec["serviceAccountName"] = f"{rng.choice(_WORDS)}-sa"
    spec["automountServiceAccountToken"] = False
    spec["securityContext"] = {"fsGroup": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    spec["nodeSelector"] = {"airlock.dev/environment": p.env}
    spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    if p.bad and rng.random() < 0.2:
        spec["hostNetwork"] = True
    if restart:
        spec["restartPolicy"] = restart
    return spec


def _meta(name: str, p: _Profile, rng: random.Random) -> Obj:
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": rng.choice(_WORDS)}
    if not (p.bad and rng.random() < 0.5):
        labels["airlock.dev/owner"] = f"team-{rng.choice(_WORDS)}"
    return {"name": name, "namespace": p.namespace, "labels": labels}


def _template(rng: random.Random, p: _Profile, name: str, restart: str | None = None) -> Obj:
    return {
        "metadata": {"labels": {"app.kubernetes.io/name": name}},
        "spec": _pod_spec(rng, p, restart),
    }


def _workload(kind: str, name: str, rng: random.Random) -> Obj:
    p = _profile(rng)
    meta = _meta(name, p, rng)
    sel = {"matchLabels": {"app.kubernetes.io/name": name}}
    if kind == "Deployment":
        spec: Obj = {"replicas": rng.randint(1, 6), "selector": sel}
        spec["template"] = _template(rng, p, name)
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "StatefulSet":
        spec = {"serviceName": name, "replicas": rng.randint(1, 3), "selector": sel}
        spec["template"] = _template(rng, p, name)
        spec["volumeClaimTemplates"] = [
            {
                "metadata": {"name": "data"},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{rng.choice((10, 100, 500))}Gi"}},
                },
            }
        ]
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "Job":
        spec = {"backoffLimit": 3, "template": _template(rng, p, name, "Never")}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "CronJob":
        job = {"backoffLimit": 1, "template": _template(rng, p, name, "OnFailure")}
        spec = {"schedule": f"{rng.randrange(60)} */6 * * *", "jobTemplate": {"spec": job}}
        return {"apiVersion": "batch/v1", "kind": kind, "metadata": meta, "spec": spec}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": _pod_spec(rng, p)}
    if kind == "PyTorchJob":
        replicas = {
            "Master": {
                "replicas": 1,
                "restartPolicy": "OnFailure",
                "template": _template(rng, p, name),
            },
            "Worker": {
                "replicas": rng.randint(1, 8),
                "restartPolicy": "OnFailure",
                "template": _template(rng, p, name),
            },
        }
        return {
            "apiVersion": "kubeflow.org/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"pytorchReplicaSpecs": replicas},
        }
    if kind == "RayCluster":
        head = {
            "rayStartParams": {"dashboard-host": "0.0.0.0"},  # noqa: S104 - manifest text
            "template": _template(rng, p, name),
        }
        worker = {
            "groupName": "gpu",
            "replicas": rng.randint(1, 4),
            "minReplicas": 0,
            "maxReplicas": 8,
            "rayStartParams": {},
            "template": _template(rng, p, name),
        }
        return {
            "apiVersion": "ray.io/v1",
            "kind": kind,
            "metadata": meta,
            "spec": {"rayVersion": "2.40.0", "headGroupSpec": head, "workerGroupSpecs": [worker]},
        }
    if kind == "InferenceService":
        pod = _pod_spec(rng, p)
        predictor: Obj = {
            "minReplicas": 1,
            "maxReplicas": rng.randint(2, 10),
            "model": {
                "modelFormat": {"name": rng.choice(("pytorch", "huggingface", "onnx"))},
                "storageUri": f"s3://models-{p.env}/{rng.choice(_WORDS)}/{rng.randrange(9)}",
            },
            "containers": pod["containers"],
            "volumes": pod["volumes"],
            "serviceAccountName": pod["serviceAccountName"],
        }
        return {
            "apiVersion": "serving.kserve.io/v1beta1",
            "kind": kind,
            "metadata": meta,
            "spec": {"predictor": predictor},
        }
    if kind == "JobSet":
        jobs = [
            {
                "name": role,
                "replicas": rng.randint(1, 4),
                "template": {
                    "spec": {
                        "parallelism": 2,
                        "completions": 2,
                        "backoffLimit": 0,
                        "template": _template(rng, p, name, "Never"),
                    }
                },
            }
            for role in ("driver", "workers")[: rng.randint(1, 2)]
        ]
        return {
            "apiVersion": "jobset.x-k8s.io/v1alpha2",
            "kind": kind,
            "metadata": meta,
            "spec": {"replicatedJobs": jobs},
        }
    if kind == "Service":
        return {
            "apiVersion": "v1",
            "kind": kind,
            "metadata": meta,
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
            },
        }
    if kind == "ConfigMap":
        data = {
            f"{rng.choice(_ENV_PREFIXES).lower()}_{k}": _env_value(rng, p.env, "CONFIG")
            for k in range(rng.randint(5, 40))
        }
        return {"apiVersion": "v1", "kind": kind, "metadata": meta, "data": data}
    raise ValueError(kind)


KIND_WEIGHTS = {
    "Deployment": 22,
    "StatefulSet": 8,
    "Job": 8,
    "CronJob": 4,
    "Pod": 10,
    "PyTorchJob": 9,
    "RayCluster": 7,
    "InferenceService": 10,
    "JobSet": 6,
    "Service": 10,
    "ConfigMap": 6,
}


# a plain scalar that YAML 1.2 (Go's sigs.k8s.io/yaml, so kubectl and kube-score) reads as a
# number though YAML 1.1 (PyYAML) does not, such as the hex id 12e45678
_NUMBER_12 = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Hand-written manifests repeat themselves rather than using anchors; so do these."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "'" if _NUMBER_12.fullmatch(data) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def _write(target: Path, progress: Callable[[str], None]) -> None:
    rng = random.Random(SEED)  # noqa: S311 - a fixed seed: the same corpus everywhere
    kinds = list(KIND_WEIGHTS)
    weights = list(KIND_WEIGHTS.values())
    gen = target / "generated"
    counts: Counter[str] = Counter()
    total = 0
    started = time.monotonic()
    for f in range(FILES):
        objs = []
        for k in range(OBJECTS_PER_FILE):
            kind = rng.choices(kinds, weights)[0]
            counts[kind] += 1
            objs.append(_workload(kind, f"{rng.choice(_WORDS)}-{f:04d}-{k}", rng))
        path = gen / f"team{f % 25:02d}" / f"app{f:04d}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = yaml.dump_all(objs, Dumper=_Dumper, sort_keys=False, width=1000).encode()
        path.write_bytes(data)
        total += len(data)
        if (f + 1) % 200 == 0:
            progress(
                f"  generated {f + 1}/{FILES} files, {total / 1e6:.0f} MB "
                f"({time.monotonic() - started:.0f} s)"
            )
    small = target / "small" / "pod.yaml"
    small.parent.mkdir(parents=True)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "small", "namespace": "ml-dev", "labels": {"app": "small"}},
        "spec": {"containers": [{"name": "app", "image": "python:3.12"}]},
    }
    small.write_text(yaml.dump(pod, Dumper=_Dumper, sort_keys=False))
    meta = {
        "generator_version": GENERATOR_VERSION,
        "seed": SEED,
        "files": FILES,
        "objects": FILES * OBJECTS_PER_FILE,
        "bytes": total,
        "kinds": dict(sorted(counts.items())),
    }
    (target / "corpus.json").write_text(json.dumps(meta, indent=2) + "\n")


def ensure_corpus(
    directory: Path | None = None,
    *,
    force: bool = False,
    progress: Callable[[str], None] = print,
) -> Corpus:
    """The corpus at ``directory`` (default: the cache), generated first if missing."""
    root = directory or default_dir()
    marker = root / "corpus.json"
    if force or not marker.is_file():
        progress(f"generating the bench corpus into {root} (once; about 20 s)")
        tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            _write(tmp, progress)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        shutil.rmtree(root, ignore_errors=True)
        tmp.rename(root)
    meta = json.loads(marker.read_text())
    files = sorted(str(p) for p in (root / "generated").rglob("*.yaml"))
    if len(files) != meta["files"]:
        raise SystemExit(
            f"{root}: {len(files)} files but corpus.json says {meta['files']}; "
            "run bench/gen_corpus.py --force"
        )
    return Corpus(
        root=root,
        directory=root / "generated",
        files=files,
        objects=meta["objects"],
        bytes=meta["bytes"],
        kinds=meta["kinds"],
        small=root / "small" / "pod.yaml",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, help=f"where to write it (default {default_dir()})")
    ap.add_argument("--force", action="store_true", help="regenerate even if present")
    args = ap.parse_args(argv)
    c = ensure_corpus(args.dir, force=args.force)
    print(
        f"{c.directory}: {len(c.files)} files, {c.objects} objects, {c.megabytes:.1f} MB; "
        + ", ".join(f"{k} {n}" for k, n in c.kinds.items())
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
