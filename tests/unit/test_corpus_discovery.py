"""Every container in the third-party AI samples is found by discovery, at the same path.

The corpus (``../shared/corpus/ai-workloads`` from the repository root) is read, never copied.
Containers are located here independently of :mod:`airlock.workloads`, by a blunt structural
walk: any mapping with a string ``image``; any named entry of a list under ``containers``,
``initContainers``, ``ephemeralContainers`` or ``sidecars``; any KServe implementation spec
(``sklearn``, ``model``, …) under a ``predictor``/``transformer``/``explainer``. Each of them
must be reported by :func:`discover` with the same path. Run with ``-s`` to see the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from airlock.workloads import discover, json_path

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "ai-workloads"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers", "sidecars"})
_KSERVE_IMPLS = frozenset(
    {"model", "sklearn", "xgboost", "tensorflow", "pytorch", "triton", "onnx", "huggingface",
     "pmml", "lightgbm", "paddle", "tensorrt", "art", "alibi", "aix"}
)  # fmt: skip
_KSERVE_COMPONENTS = frozenset({"predictor", "transformer", "explainer"})

pytestmark = pytest.mark.skipif(
    not CORPUS.is_dir(), reason=f"third-party corpus not present at {CORPUS}"
)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.yaml")) if CORPUS.is_dir() else []


def load(path: Path) -> list[dict[str, Any]] | None:
    """The file's mapping documents, or None when upstream's file is not valid YAML."""
    try:
        with path.open() as fh:
            return [d for d in yaml.load_all(fh, Loader=_LOADER) if isinstance(d, dict)]
    except yaml.YAMLError:
        return None


def container_pointers(node: Any, ptr: tuple[str | int, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(node, dict):
        if isinstance(node.get("image"), str):
            yield ptr
        for key, value in node.items():
            if key in _CONTAINER_LISTS and isinstance(value, list):
                for i, item in enumerate(value):
                    if isinstance(item, dict) and "name" in item:
                        yield (*ptr, key, i)
            if (
                key in _KSERVE_IMPLS
                and ptr
                and ptr[-1] in _KSERVE_COMPONENTS
                and isinstance(value, dict)
            ):
                yield (*ptr, key)
            yield from container_pointers(value, (*ptr, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from container_pointers(value, (*ptr, i))


# Upstream has a few samples that are not valid YAML (templated image names): they are left out
# at collection rather than skipped, so every collected case checks something.
@pytest.mark.parametrize(
    "path",
    [p for p in corpus_files() if load(p) is not None],
    ids=lambda p: str(p.relative_to(CORPUS)) if CORPUS.is_dir() else "",
)
def test_every_container_is_discovered(path: Path) -> None:
    docs = load(path)
    assert docs is not None
    for index, doc in enumerate(docs):
        w = discover(doc)
        found = {c.path for _, c in w.containers}
        expected = {json_path(p) for p in container_pointers(doc)}
        missing = sorted(expected - found)
        assert not missing, f"document {index + 1} ({w.kind} {w.name}): {missing}"


# Kinds whose samples must yield containers: a handler that silently finds nothing fails here.
_AI_KINDS = (
    "PyTorchJob", "TFJob", "MPIJob", "XGBoostJob", "PaddleJob", "JAXJob", "JobSet",
    "InferenceService", "LLMInferenceService", "ClusterServingRuntime", "RayCluster", "RayJob",
    "RayService", "RayCronJob", "Deployment", "Job", "Pod",
)  # fmt: skip


def test_counts_per_kind() -> None:
    documents: Counter[str] = Counter()
    with_pods: Counter[str] = Counter()
    containers: Counter[str] = Counter()
    unreadable = 0
    for path in corpus_files():
        docs = load(path)
        if docs is None:
            unreadable += 1
            continue
        for doc in docs:
            w = discover(doc)
            n = sum(1 for _ in w.containers)
            documents[w.kind] += 1
            containers[w.kind] += n
            with_pods[w.kind] += bool(w.pod_specs)
    print(f"\ncorpus {CORPUS}: {sum(documents.values())} documents, {unreadable} unreadable files")
    print(f"{'kind':32} {'documents':>9} {'with pods':>9} {'containers':>10}")
    for kind in sorted(documents, key=lambda k: (-containers[k], k)):
        if containers[kind] or kind in _AI_KINDS:
            print(f"{kind:32} {documents[kind]:>9} {with_pods[kind]:>9} {containers[kind]:>10}")
    for kind in _AI_KINDS:
        if documents[kind]:
            assert containers[kind] > 0, kind
            # A RayJob may run on an existing cluster (clusterSelector) and carry no pod.
            if kind != "RayJob":
                assert with_pods[kind] == documents[kind], kind
