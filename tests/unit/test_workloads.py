"""Workload discovery: every pod spec and container of every supported kind, at its exact path."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import pytest
import yaml
from airlock.records import fields
from airlock.workloads import (
    SUPPORTED_KINDS,
    ContainerView,
    PodSpecView,
    ValueRef,
    Workload,
    discover,
    json_path,
    json_pointer,
)
from hypothesis import given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workloads"


class Spec(NamedTuple):
    path: str
    standard: bool
    complete: bool
    metadata: str | None
    containers: list[tuple[str, str]]  # (path, group)


class Doc(NamedTuple):
    kind: str
    name: str
    specs: list[Spec]
    uris: list[tuple[str, str, str]]  # (path, what, value)


# fmt: off
EXPECTED: dict[str, list[Doc]] = {
    "pod.yaml": [
        Doc("Pod", "notebook-debug", [
            Spec("spec", True, True, "metadata", [
                ("spec.containers[0]", "containers"),
                ("spec.containers[1]", "containers"),
                ("spec.initContainers[0]", "initContainers"),
                ("spec.ephemeralContainers[0]", "ephemeralContainers"),
            ]),
        ], []),
    ],
    "deployment.yaml": [
        Doc("Deployment", "embedding-api", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
                ("spec.template.spec.containers[1]", "containers"),
            ]),
        ], []),
    ],
    "statefulset.yaml": [
        Doc("StatefulSet", "vector-db", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
                ("spec.template.spec.initContainers[0]", "initContainers"),
            ]),
        ], []),
    ],
    "daemonset.yaml": [
        Doc("DaemonSet", "gpu-exporter", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "replicaset.yaml": [
        Doc("ReplicaSet", "tokenizer-7f9c", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("ReplicationController", "legacy-scorer", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "job.yaml": [
        Doc("Job", "eval-run", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("CronJob", "nightly-retrain", [
            Spec("spec.jobTemplate.spec.template.spec", True, True,
                 "spec.jobTemplate.spec.template.metadata", [
                ("spec.jobTemplate.spec.template.spec.containers[0]", "containers"),
                ("spec.jobTemplate.spec.template.spec.initContainers[0]", "initContainers"),
            ]),
        ], []),
        Doc("PodTemplate", "gpu-worker-template", [
            Spec("template.spec", True, True, "template.metadata", [
                ("template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "kubeflow-training.yaml": [
        Doc("PyTorchJob", "bert-finetune", [
            Spec("spec.pytorchReplicaSpecs.Master.template.spec", True, True,
                 "spec.pytorchReplicaSpecs.Master.template.metadata", [
                ("spec.pytorchReplicaSpecs.Master.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.pytorchReplicaSpecs.Worker.template.spec", True, True,
                 "spec.pytorchReplicaSpecs.Worker.template.metadata", [
                ("spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]", "containers"),
                ("spec.pytorchReplicaSpecs.Worker.template.spec.initContainers[0]",
                 "initContainers"),
            ]),
        ], []),
        Doc("TFJob", "mnist-tf", [
            Spec("spec.tfReplicaSpecs.PS.template.spec", True, True,
                 "spec.tfReplicaSpecs.PS.template.metadata", [
                ("spec.tfReplicaSpecs.PS.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.tfReplicaSpecs.Worker.template.spec", True, True,
                 "spec.tfReplicaSpecs.Worker.template.metadata", [
                ("spec.tfReplicaSpecs.Worker.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("MPIJob", "horovod-resnet", [
            Spec("spec.mpiReplicaSpecs.Launcher.template.spec", True, True,
                 "spec.mpiReplicaSpecs.Launcher.template.metadata", [
                ("spec.mpiReplicaSpecs.Launcher.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.mpiReplicaSpecs.Worker.template.spec", True, True,
                 "spec.mpiReplicaSpecs.Worker.template.metadata", [
                ("spec.mpiReplicaSpecs.Worker.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("XGBoostJob", "xgb-iris", [
            Spec("spec.xgbReplicaSpecs.Master.template.spec", True, True,
                 "spec.xgbReplicaSpecs.Master.template.metadata", [
                ("spec.xgbReplicaSpecs.Master.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("PaddleJob", "paddle-ocr", [
            Spec("spec.paddleReplicaSpecs.Worker.template.spec", True, True,
                 "spec.paddleReplicaSpecs.Worker.template.metadata", [
                ("spec.paddleReplicaSpecs.Worker.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("JAXJob", "jax-pi", [
            Spec("spec.jaxReplicaSpecs.Worker.template.spec", True, True,
                 "spec.jaxReplicaSpecs.Worker.template.metadata", [
                ("spec.jaxReplicaSpecs.Worker.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("MXJob", "mx-legacy", [
            Spec("spec.mxReplicaSpecs.Scheduler.template.spec", True, True,
                 "spec.mxReplicaSpecs.Scheduler.template.metadata", [
                ("spec.mxReplicaSpecs.Scheduler.template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "notebook.yaml": [
        Doc("Notebook", "analyst-notebook", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "trainjob.yaml": [
        Doc("TrainJob", "llama-sft", [
            Spec("spec.trainer", False, False, None, [("spec.trainer", "trainer")]),
            Spec("spec.initializer.dataset", False, False, None, [
                ("spec.initializer.dataset", "initializer"),
            ]),
            Spec("spec.initializer.model", False, False, None, [
                ("spec.initializer.model", "initializer"),
            ]),
            Spec("spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0]"
                 ".template.spec.template.spec", False, False,
                 "spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0]"
                 ".template.spec.template.metadata", [
                ("spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0]"
                 ".template.spec.template.spec.containers[0]", "containers"),
                ("spec.runtimePatches[0].trainingRuntimeSpec.template.spec.replicatedJobs[0]"
                 ".template.spec.template.spec.containers[1]", "containers"),
            ]),
        ], [
            ("spec.initializer.dataset.storageUri", "storageUri", "hf://datasets/org/instructions"),
            ("spec.initializer.model.storageUri", "storageUri", "s3://models-dev/llama/base"),
        ]),
        Doc("TrainJob", "resnet-overrides", [
            Spec("spec.trainer", False, False, None, [("spec.trainer", "trainer")]),
            Spec("spec.podTemplateOverrides[0].spec", False, False,
                 "spec.podTemplateOverrides[0].metadata", [
                ("spec.podTemplateOverrides[0].spec.containers[0]", "containers"),
                ("spec.podTemplateOverrides[0].spec.initContainers[0]", "initContainers"),
            ]),
        ], []),
        Doc("TrainJob", "legacy-trainjob", [
            Spec("spec.trainer", False, False, None, [("spec.trainer", "trainer")]),
            Spec("spec.datasetConfig", False, False, None, [
                ("spec.datasetConfig", "initializer"),
            ]),
            Spec("spec.modelConfig.input", False, False, None, [
                ("spec.modelConfig.input", "initializer"),
            ]),
            Spec("spec.modelConfig.output", False, False, None, [
                ("spec.modelConfig.output", "exporter"),
            ]),
            Spec("spec.podSpecOverrides[0]", False, False, None, [
                ("spec.podSpecOverrides[0].containers[0]", "containers"),
            ]),
        ], [
            ("spec.datasetConfig.storageUri", "storageUri", "s3://data-dev/cifar"),
            ("spec.modelConfig.input.storageUri", "storageUri", "hf://org/base-model"),
            ("spec.modelConfig.output.storageUri", "storageUri", "s3://models-dev/out"),
        ]),
        Doc("ClusterTrainingRuntime", "torch-distributed", [
            Spec("spec.template.spec.replicatedJobs[0].template.spec.template.spec", True, True,
                 "spec.template.spec.replicatedJobs[0].template.spec.template.metadata", [
                ("spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0]",
                 "containers"),
            ]),
            Spec("spec.template.spec.replicatedJobs[1].template.spec.template.spec", True, True,
                 "spec.template.spec.replicatedJobs[1].template.spec.template.metadata", [
                ("spec.template.spec.replicatedJobs[1].template.spec.template.spec.containers[0]",
                 "containers"),
            ]),
        ], []),
        Doc("TrainingRuntime", "team-runtime", [
            Spec("spec.template.spec.replicatedJobs[0].template.spec.template.spec", True, True,
                 "spec.template.spec.replicatedJobs[0].template.spec.template.metadata", [
                ("spec.template.spec.replicatedJobs[0].template.spec.template.spec.containers[0]",
                 "containers"),
            ]),
        ], []),
    ],
    "jobset.yaml": [
        Doc("JobSet", "tpu-pretrain", [
            Spec("spec.replicatedJobs[0].template.spec.template.spec", True, True,
                 "spec.replicatedJobs[0].template.spec.template.metadata", [
                ("spec.replicatedJobs[0].template.spec.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.replicatedJobs[1].template.spec.template.spec", True, True,
                 "spec.replicatedJobs[1].template.spec.template.metadata", [
                ("spec.replicatedJobs[1].template.spec.template.spec.containers[0]", "containers"),
                ("spec.replicatedJobs[1].template.spec.template.spec.initContainers[0]",
                 "initContainers"),
            ]),
        ], []),
    ],
    "inferenceservice.yaml": [
        Doc("InferenceService", "fraud-model", [
            Spec("spec.predictor", False, True, "spec.predictor", [
                ("spec.predictor.containers[0]", "containers"),
                ("spec.predictor.model", "model"),
            ]),
            Spec("spec.predictor.workerSpec", False, True, None, [
                ("spec.predictor.workerSpec.containers[0]", "containers"),
            ]),
            Spec("spec.transformer", False, True, "spec.transformer", [
                ("spec.transformer.containers[0]", "containers"),
            ]),
            Spec("spec.explainer", False, True, "spec.explainer", [
                ("spec.explainer.art", "art"),
            ]),
        ], [
            ("spec.predictor.model.storageUri", "storageUri", "s3://models-prod/fraud/v7"),
            ("spec.predictor.storageUris[0].uri", "uri", "s3://models-prod/fraud/tokenizer"),
            ("spec.explainer.art.storageUri", "storageUri", "gs://explainers-prod/fraud"),
        ]),
        Doc("InferenceService", "legacy-frameworks", [
            Spec("spec.predictor", False, True, "spec.predictor", [
                ("spec.predictor.tensorflow", "tensorflow"),
                ("spec.predictor.pytorch", "pytorch"),
            ]),
        ], [
            ("spec.predictor.tensorflow.storageUri", "storageUri", "gs://models-dev/flowers"),
            ("spec.predictor.pytorch.storageUri", "storageUri", "pvc://model-pvc/torch"),
        ]),
        Doc("InferenceService", "v1alpha2-service", [
            Spec("spec.default.predictor", False, True, "spec.default.predictor", [
                ("spec.default.predictor.custom.container", "custom"),
            ]),
            Spec("spec.default.explainer", False, True, "spec.default.explainer", [
                ("spec.default.explainer.alibi", "alibi"),
            ]),
            Spec("spec.canary.predictor", False, True, "spec.canary.predictor", [
                ("spec.canary.predictor.sklearn", "sklearn"),
            ]),
        ], [
            ("spec.default.explainer.alibi.storageUri", "storageUri",
             "gs://explainers-dev/anchor"),
            ("spec.canary.predictor.sklearn.storageUri", "storageUri",
             "gs://models-dev/iris-canary"),
        ]),
    ],
    "servingruntime.yaml": [
        Doc("ServingRuntime", "vllm-runtime", [
            Spec("spec", False, False, "spec", [("spec.containers[0]", "containers")]),
            Spec("spec.workers", False, False, "spec.workers", [
                ("spec.workers.containers[0]", "containers"),
            ]),
        ], []),
        Doc("ClusterServingRuntime", "sklearn-server", [
            Spec("spec", False, False, "spec", [("spec.containers[0]", "containers")]),
        ], []),
        Doc("TrainedModel", "fraud-v8", [], [
            ("spec.model.storageUri", "storageUri", "s3://models-prod/fraud/v8"),
        ]),
    ],
    "llminferenceservice.yaml": [
        Doc("LLMInferenceService", "qwen-chat", [
            Spec("spec.template", True, True, "spec", [
                ("spec.template.containers[0]", "containers"),
            ]),
            Spec("spec.worker", True, True, "spec", [("spec.worker.containers[0]", "containers")]),
            Spec("spec.prefill.template", True, True, "spec.prefill", [
                ("spec.prefill.template.containers[0]", "containers"),
            ]),
            Spec("spec.router.scheduler.template", True, True, "spec.router.scheduler", [
                ("spec.router.scheduler.template.containers[0]", "containers"),
            ]),
        ], [
            ("spec.model.uri", "uri", "hf://Qwen/Qwen2.5-7B-Instruct"),
            ("spec.model.lora.adapters[0].uri", "uri", "s3://models-dev/lora/sql"),
        ]),
        Doc("LLMInferenceServiceConfig", "base-config", [
            Spec("spec.template", True, True, "spec", [
                ("spec.template.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "ray.yaml": [
        Doc("RayCluster", "ray-batch", [
            Spec("spec.headGroupSpec.template.spec", True, True,
                 "spec.headGroupSpec.template.metadata", [
                ("spec.headGroupSpec.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.workerGroupSpecs[0].template.spec", True, True,
                 "spec.workerGroupSpecs[0].template.metadata", [
                ("spec.workerGroupSpecs[0].template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.workerGroupSpecs[1].template.spec", True, True,
                 "spec.workerGroupSpecs[1].template.metadata", [
                ("spec.workerGroupSpecs[1].template.spec.containers[0]", "containers"),
                ("spec.workerGroupSpecs[1].template.spec.initContainers[0]", "initContainers"),
            ]),
            Spec("spec.historyServerOptions.collectorOptions", False, False, None, [
                ("spec.historyServerOptions.collectorOptions", "collector"),
            ]),
        ], []),
        Doc("RayJob", "ray-tune", [
            Spec("spec.rayClusterSpec.headGroupSpec.template.spec", True, True,
                 "spec.rayClusterSpec.headGroupSpec.template.metadata", [
                ("spec.rayClusterSpec.headGroupSpec.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.rayClusterSpec.workerGroupSpecs[0].template.spec", True, True,
                 "spec.rayClusterSpec.workerGroupSpecs[0].template.metadata", [
                ("spec.rayClusterSpec.workerGroupSpecs[0].template.spec.containers[0]",
                 "containers"),
            ]),
            Spec("spec.submitterPodTemplate.spec", True, True,
                 "spec.submitterPodTemplate.metadata", [
                ("spec.submitterPodTemplate.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("RayService", "ray-serve", [
            Spec("spec.rayClusterConfig.headGroupSpec.template.spec", True, True,
                 "spec.rayClusterConfig.headGroupSpec.template.metadata", [
                ("spec.rayClusterConfig.headGroupSpec.template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.rayClusterConfig.workerGroupSpecs[0].template.spec", True, True,
                 "spec.rayClusterConfig.workerGroupSpecs[0].template.metadata", [
                ("spec.rayClusterConfig.workerGroupSpecs[0].template.spec.containers[0]",
                 "containers"),
            ]),
        ], []),
        Doc("RayCronJob", "ray-nightly", [
            Spec("spec.jobTemplate.rayClusterSpec.headGroupSpec.template.spec", True, True,
                 "spec.jobTemplate.rayClusterSpec.headGroupSpec.template.metadata", [
                ("spec.jobTemplate.rayClusterSpec.headGroupSpec.template.spec.containers[0]",
                 "containers"),
            ]),
        ], []),
    ],
    "argo.yaml": [
        Doc("Workflow", "pipeline-", [
            Spec("spec.templates[0].dag.tasks[1].inline", False, True,
                 "spec.templates[0].dag.tasks[1].inline.metadata", [
                ("spec.templates[0].dag.tasks[1].inline.container", "container"),
            ]),
            Spec("spec.templates[1]", False, True, "spec.templates[1].metadata", [
                ("spec.templates[1].container", "container"),
                ("spec.templates[1].initContainers[0]", "initContainers"),
                ("spec.templates[1].sidecars[0]", "sidecars"),
            ]),
            Spec("spec.templates[2]", False, True, "spec.templates[2].metadata", [
                ("spec.templates[2].script", "script"),
            ]),
            Spec("spec.templates[3]", False, True, "spec.templates[3].metadata", [
                ("spec.templates[3].containerSet.containers[0]", "containerSet"),
                ("spec.templates[3].containerSet.containers[1]", "containerSet"),
            ]),
            Spec("spec.templateDefaults", False, False, "spec.templateDefaults.metadata", [
                ("spec.templateDefaults.container", "container"),
            ]),
        ], []),
        Doc("WorkflowTemplate", "train-template", [
            Spec("spec.templates[0]", False, True, "spec.templates[0].metadata", [
                ("spec.templates[0].container", "container"),
            ]),
        ], []),
        Doc("ClusterWorkflowTemplate", "shared-eval", [
            Spec("spec.templates[0].steps[0][0].inline", False, True,
                 "spec.templates[0].steps[0][0].inline.metadata", [
                ("spec.templates[0].steps[0][0].inline.script", "script"),
            ]),
        ], []),
        Doc("CronWorkflow", "nightly-eval", [
            Spec("spec.workflowSpec.templates[0]", False, True,
                 "spec.workflowSpec.templates[0].metadata", [
                ("spec.workflowSpec.templates[0].container", "container"),
            ]),
        ], []),
    ],
    "volcano.yaml": [
        Doc("Job", "mpi-volcano", [
            Spec("spec.tasks[0].template.spec", True, True, "spec.tasks[0].template.metadata", [
                ("spec.tasks[0].template.spec.containers[0]", "containers"),
            ]),
            Spec("spec.tasks[1].template.spec", True, True, "spec.tasks[1].template.metadata", [
                ("spec.tasks[1].template.spec.containers[0]", "containers"),
            ]),
        ], []),
    ],
    "generic.yaml": [
        Doc("SandboxTemplate", "python-sandbox", [
            Spec("spec.podTemplate.spec", True, True, "spec.podTemplate.metadata", [
                ("spec.podTemplate.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("Service", "knative-scorer", [
            Spec("spec.template.spec", True, True, "spec.template.metadata", [
                ("spec.template.spec.containers[0]", "containers"),
            ]),
        ], []),
        Doc("InlineRunner", "runner", [
            Spec("spec.runner", False, False, None, [
                ("spec.runner.containers[0]", "containers"),
            ]),
        ], []),
        Doc("ConfigMap", "settings", [], []),
        Doc("Service", "plain-service", [], []),
    ],
}
# fmt: on


def load(name: str) -> list[dict[str, Any]]:
    with (FIXTURES / name).open() as fh:
        return [d for d in yaml.safe_load_all(fh) if d is not None]


def resolve(obj: Any, pointer: tuple[str | int, ...]) -> Any:
    for seg in pointer:
        obj = obj[seg]
    return obj


def fixture_docs() -> list[tuple[str, int]]:
    return [(name, i) for name, docs in EXPECTED.items() for i in range(len(docs))]


def test_every_fixture_file_has_expectations() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.yaml")}
    assert on_disk == set(EXPECTED)
    for name, docs in EXPECTED.items():
        assert len(load(name)) == len(docs), name


def test_every_supported_kind_has_a_fixture() -> None:
    kinds = {doc.kind for docs in EXPECTED.values() for doc in docs}
    assert kinds >= SUPPORTED_KINDS, sorted(SUPPORTED_KINDS - kinds)


@pytest.mark.parametrize(("name", "index"), fixture_docs())
def test_fixture_discovery(name: str, index: int) -> None:
    obj = load(name)[index]
    want = EXPECTED[name][index]
    w = discover(obj)
    assert (w.kind, w.name) == (want.kind, want.name)
    got_specs = [
        Spec(
            ps.path,
            ps.standard,
            ps.complete,
            None if ps.metadata_pointer is None else json_path(ps.metadata_pointer),
            [(c.path, c.group) for c in ps.containers],
        )
        for ps in w.pod_specs
    ]
    assert got_specs == want.specs
    assert [(u.path, u.what, u.value) for u in w.storage_uris] == want.uris


@pytest.mark.parametrize(("name", "index"), fixture_docs())
def test_pointers_resolve_to_the_very_objects_in_the_manifest(name: str, index: int) -> None:
    obj = load(name)[index]
    w = discover(obj)
    for ps in w.pod_specs:
        assert json_path(ps.pointer) == ps.path
        assert resolve(obj, ps.pointer) is ps.spec
        if ps.metadata_pointer is not None:
            # the parent of the metadata location exists, so a patch can add it
            assert isinstance(resolve(obj, ps.metadata_pointer[:-1]), Mapping)
        for c in ps.containers:
            assert json_path(c.pointer) == c.path
            assert resolve(obj, c.pointer) is c.container
    for u in w.storage_uris:
        assert json_path(u.pointer) == u.path
        assert resolve(obj, u.pointer) == u.value


def test_container_paths_match_the_design_example() -> None:
    w = discover(load("kubeflow-training.yaml")[0])
    paths = [c.path for _, c in w.containers]
    assert "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]" in paths


def test_containers_pairs_each_container_with_its_pod_spec() -> None:
    w = discover(load("pod.yaml")[0])
    pairs = list(w.containers)
    assert [c.container["name"] for _, c in pairs] == [
        "jupyter",
        "metrics",
        "fetch-weights",
        "debugger",
    ]
    assert all(ps is w.pod_specs[0] for ps, _ in pairs)


def test_metadata_is_read() -> None:
    w = discover(load("pod.yaml")[0])
    assert (w.api_version, w.kind, w.name, w.namespace) == ("v1", "Pod", "notebook-debug", "ml-dev")
    assert w.labels == {"airlock.dev/owner": "team-vision"}
    assert w.annotations == {}
    assert w.group == ""
    assert discover(load("volcano.yaml")[0]).group == "batch.volcano.sh"


def test_generate_name_stands_in_for_a_missing_name() -> None:
    assert discover(load("argo.yaml")[0]).name == "pipeline-"


def test_non_string_labels_are_dropped_not_crashed_on() -> None:
    obj = {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"labels": {"a": "1", "b": 2, 3: "c"}, "annotations": "oops"},
    }
    w = discover(obj)
    assert w.labels == {"a": "1"}
    assert w.annotations == {}


def test_group_decides_between_kinds_of_the_same_name() -> None:
    tasks_job = {
        "apiVersion": "batch.volcano.sh/v1alpha1",
        "kind": "Job",
        "spec": {
            "tasks": [{"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}],
            "template": {"spec": {"containers": [{"name": "wrong", "image": "y"}]}},
        },
    }
    assert [c.path for _, c in discover(tasks_job).containers] == [
        "spec.tasks[0].template.spec.containers[0]"
    ]
    batch_job = dict(tasks_job, apiVersion="batch/v1")
    assert [c.path for _, c in discover(batch_job).containers] == [
        "spec.template.spec.containers[0]"
    ]


def test_unknown_group_for_a_known_kind_falls_back_to_the_generic_search() -> None:
    obj = {
        "apiVersion": "acme.example/v1",
        "kind": "PyTorchJob",
        "spec": {"runner": {"template": {"spec": {"containers": [{"name": "a"}]}}}},
    }
    w = discover(obj)
    assert [(ps.path, ps.standard) for ps in w.pod_specs] == [("spec.runner.template.spec", True)]


def test_argo_templates_inherit_workflow_pod_fields() -> None:
    wf = load("argo.yaml")[0]
    w = discover(wf)
    prep = next(ps for ps in w.pod_specs if ps.path == "spec.templates[1]")
    score = next(ps for ps in w.pod_specs if ps.path == "spec.templates[2]")
    # the template's own securityContext wins
    assert prep.effective("securityContext") == (
        ("spec", "templates", 1, "securityContext"),
        {"runAsUser": 1000},
    )
    # otherwise the workflow-level value applies, located where it is written
    assert score.effective("securityContext") == (
        ("spec", "securityContext"),
        {"runAsNonRoot": True},
    )
    assert score.effective("automountServiceAccountToken") == (
        ("spec", "automountServiceAccountToken"),
        False,
    )
    assert score.effective("hostNetwork") is None
    assert score.inherited is wf["spec"]


def test_cron_workflow_inherits_from_the_workflow_spec() -> None:
    w = discover(load("argo.yaml")[3])
    (ps,) = w.pod_specs
    assert ps.inherited_pointer == ("spec", "workflowSpec")
    assert ps.effective("securityContext") == (
        ("spec", "workflowSpec", "securityContext"),
        {"runAsNonRoot": True},
    )


def test_non_argo_views_inherit_nothing() -> None:
    w = discover(load("deployment.yaml")[0])
    (ps,) = w.pod_specs
    assert ps.inherited is None
    assert ps.effective("hostNetwork") is None
    ps2 = discover(load("daemonset.yaml")[0]).pod_specs[0]
    assert ps2.effective("hostPID") == (("spec", "template", "spec", "hostPID"), True)


def test_argo_embedded_manifests_are_not_parsed() -> None:
    w = discover(load("argo.yaml")[0])
    assert all("templates[4]" not in ps.path for ps in w.pod_specs)


def test_views_built_on_the_fast_path_equal_constructed_ones() -> None:
    for name in EXPECTED:
        for obj in load(name):
            w = discover(obj)
            rebuilt = Workload(**{n: getattr(w, n) for n in fields(w)})
            assert rebuilt == w
            assert repr(rebuilt) == repr(w)
            for ps in w.pod_specs:
                again = PodSpecView(**{n: getattr(ps, n) for n in fields(ps)})
                assert again == ps
                for c in ps.containers:
                    assert ContainerView(c.pointer, c.path, c.group, c.container) == c


def test_views_are_frozen() -> None:
    w = discover(load("deployment.yaml")[0])
    with pytest.raises(AttributeError, match="frozen record"):
        w.pod_specs[0].containers[0].path = "elsewhere"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen record"):
        w.kind = "Pod"  # type: ignore[misc]


def test_non_dict_mappings_are_accepted() -> None:
    obj = load("deployment.yaml")[0]
    w = discover(MappingProxyType(obj))
    assert [c.path for _, c in w.containers] == [
        "spec.template.spec.containers[0]",
        "spec.template.spec.containers[1]",
    ]


def test_pod_without_spec_has_no_view_and_empty_spec_has_one() -> None:
    assert discover({"apiVersion": "v1", "kind": "Pod"}).pod_specs == ()
    (ps,) = discover({"apiVersion": "v1", "kind": "Pod", "spec": {}}).pod_specs
    assert ps.containers == ()


@pytest.mark.parametrize(
    "spec",
    [
        "not a mapping",
        {"template": "oops"},
        {"template": {"spec": ["a", "list"]}},
        {"template": {"spec": {"containers": "nginx"}}},
        {"template": {"spec": {"containers": [None, 5, "x", []]}}},
        {"template": {"spec": {"containers": {"name": "a"}}}},
    ],
)
def test_odd_shapes_are_skipped(spec: Any) -> None:
    w = discover({"apiVersion": "apps/v1", "kind": "Deployment", "spec": spec})
    assert list(w.containers) == []


def test_wrong_entries_keep_their_real_index() -> None:
    obj = {"apiVersion": "v1", "kind": "Pod", "spec": {"containers": ["junk", {"name": "ok"}]}}
    assert [c.path for _, c in discover(obj).containers] == ["spec.containers[1]"]


@pytest.mark.parametrize(
    "kind",
    sorted(SUPPORTED_KINDS),
)
def test_every_handler_survives_garbage_specs(kind: str) -> None:
    for api in ("v1", "apps/v1", "kubeflow.org/v1", "trainer.kubeflow.org/v1alpha1",
                "serving.kserve.io/v1beta1", "ray.io/v1", "argoproj.io/v1alpha1",
                "jobset.x-k8s.io/v1alpha2", "batch.volcano.sh/v1alpha1"):  # fmt: skip
        for spec in (None, 1, "x", [], {"a": 1}, dict.fromkeys(_ALL_KEYS, "x")):
            w = discover({"apiVersion": api, "kind": kind, "spec": spec})
            assert list(w.containers) == []


_ALL_KEYS = (
    "template", "jobTemplate", "replicatedJobs", "trainer", "initializer", "datasetConfig",
    "modelConfig", "podSpecOverrides", "podTemplateOverrides", "runtimePatches", "predictor",
    "transformer", "explainer", "default", "canary", "containers", "workers", "model", "prefill",
    "router", "worker", "headGroupSpec", "workerGroupSpecs", "rayClusterSpec", "rayClusterConfig",
    "submitterPodTemplate", "historyServerOptions", "templates", "templateDefaults",
    "workflowSpec", "tasks", "pytorchReplicaSpecs",
)  # fmt: skip


def test_generic_search_is_depth_bounded() -> None:
    def nest(depth: int) -> dict[str, Any]:
        node: dict[str, Any] = {"template": {"spec": {"containers": [{"name": "deep"}]}}}
        for _ in range(depth):
            node = {"next": node}
        return {"apiVersion": "acme.example/v1", "kind": "Deep", "spec": node}

    assert [c.path for _, c in discover(nest(3)).containers] == [
        "spec.next.next.next.template.spec.containers[0]"
    ]
    assert list(discover(nest(12)).containers) == []


def test_podless_core_kinds_are_not_searched() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "data": {"template": {"spec": {"containers": [{"name": "x"}]}}},
    }
    assert discover(cm).pod_specs == ()


# --------------------------------------------------------------------------------------------
# json_path / json_pointer


@pytest.mark.parametrize(
    ("pointer", "path", "json_ptr"),
    [
        ((), "", ""),
        (("spec",), "spec", "/spec"),
        (
            ("spec", "containers", 1, "env", 3, "value"),
            "spec.containers[1].env[3].value",
            "/spec/containers/1/env/3/value",
        ),
        (("steps", 0, 1, "inline"), "steps[0][1].inline", "/steps/0/1/inline"),
        (
            ("metadata", "labels", "airlock.dev/owner"),
            'metadata.labels["airlock.dev/owner"]',
            "/metadata/labels/airlock.dev~1owner",
        ),
        (("a~b", "c/d"), '["a~b"]["c/d"]', "/a~0b/c~1d"),
        (("x", "~1"), 'x["~1"]', "/x/~01"),
        (("x", ""), 'x[""]', "/x/"),
        (("sidecar-proxy", "in_place"), "sidecar-proxy.in_place", "/sidecar-proxy/in_place"),
    ],
)
def test_paths_and_pointers(pointer: tuple[str | int, ...], path: str, json_ptr: str) -> None:
    assert json_path(pointer) == path
    assert json_pointer(pointer) == json_ptr


def _decode_pointer(ptr: str) -> list[str]:
    return [seg.replace("~1", "/").replace("~0", "~") for seg in ptr.split("/")[1:]]


@given(st.lists(st.one_of(st.text(max_size=8), st.integers(0, 50)), max_size=6))
def test_json_pointer_round_trips(pointer: list[str | int]) -> None:
    encoded = json_pointer(tuple(pointer))
    assert _decode_pointer(encoded) == [str(s) for s in pointer]


# --------------------------------------------------------------------------------------------
# Robustness: random JSON never crashes discovery, and every reported location is real

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            [*_ALL_KEYS, "spec", "metadata", "name", "image", "initContainers", "sidecars",
             "container", "script", "storageUri", "uri", "inline", "steps", "dag", "Worker",
             "containerSet", "lora", "adapters", "scheduler", "collectorOptions",
             "trainingRuntimeSpec"]
        ) | st.text(max_size=4),
        children,
        max_size=5,
    ),
    max_leaves=40,
)  # fmt: skip


def _check_locations(obj: Any, w: Workload) -> None:
    for ps in w.pod_specs:
        assert resolve(obj, ps.pointer) is ps.spec
        assert ps.path == json_path(ps.pointer)
        for c in ps.containers:
            assert resolve(obj, c.pointer) is c.container
            assert c.path == json_path(c.pointer)
    for u in w.storage_uris:
        assert isinstance(u, ValueRef)
        assert resolve(obj, u.pointer) == u.value


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*sorted(SUPPORTED_KINDS), "Unknown", "ConfigMap", ""]),
    st.sampled_from(
        ["v1", "apps/v1", "batch/v1", "kubeflow.org/v1", "trainer.kubeflow.org/v1alpha1",
         "serving.kserve.io/v1beta1", "ray.io/v1", "argoproj.io/v1alpha1",
         "jobset.x-k8s.io/v1alpha2", "batch.volcano.sh/v1alpha1", "acme.example/v1"]
    ),
    _json,
)  # fmt: skip
def test_random_json_never_crashes(kind: str, api: str, spec: Any) -> None:
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    w = discover(obj)
    _check_locations(obj, w)


@settings(max_examples=200, deadline=None)
@given(_json)
def test_random_top_level_values_never_crash(value: Any) -> None:
    w = discover(value)
    if isinstance(value, Mapping):
        _check_locations(value, w)
    else:
        assert w.pod_specs == ()
