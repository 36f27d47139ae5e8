"""Find every pod spec and every container in any Kubernetes or AI-platform object.

Rules never walk objects themselves: they receive a :class:`Workload` whose views carry the raw
mappings *and* the exact location of each one, as a pointer (for JSON patches) and as a dotted
path (for messages, e.g. ``spec.pytorchReplicaSpecs.Worker.template.spec.containers[0]``).

Two flags on :class:`PodSpecView` tell rules and mutations how far a view can be trusted:

``standard``
    The mapping is a real ``core/v1`` PodSpec that a JSON patch may extend with PodSpec fields
    (Pods, workload controllers, Kubeflow/JobSet/Ray/Volcano/Notebook templates, LLMInference
    Service templates). False for shapes that only resemble one: KServe components, Argo
    templates, TrainJob trainer/initializers and override patches, ServingRuntime specs.
``complete``
    Pod-level security settings are expressed here, so a *missing* setting is a real gap and
    hardening rules apply. False for fragments whose pod is supplied elsewhere (TrainJob trainer,
    initializers and overrides; ServingRuntime; Argo ``templateDefaults``; Ray collector
    options): there, absence proves nothing, though an explicit dangerous value is still real.

Container-like mappings do not always carry ``image``: KServe framework specs (``sklearn``,
``model``, …), LLMInferenceService containers and TrainJob initializers get theirs from a
runtime. Image rules must skip a container without an ``image`` string.

What is deliberately not discovered: manifests embedded as strings (Argo ``resource.manifest``,
``podSpecPatch``), and pods that exist only through a reference (a TrainJob's runtime, an
InferenceService's ServingRuntime): those objects are admitted and checked on their own.

Argo pods inherit pod-level fields (``securityContext``, ``automountServiceAccountToken``,
``serviceAccountName``, ``nodeSelector``, ``tolerations``, ``affinity``, ``volumes`` …) from the
workflow spec when a template leaves them unset. Each Argo view therefore carries the workflow
spec as :attr:`PodSpecView.inherited`; :meth:`PodSpecView.effective` answers "what value applies,
and where is it written" for such a field.

Discovery runs on the admission hot path (about 10 µs for a Deployment): no copies of the
object, no regular expressions, paths built by concatenation as the walk goes. It never raises:
a value of the wrong type (a string where a list belongs) is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, TypeGuard

from airlock.records import fields, record

__all__ = [
    "SUPPORTED_KINDS",
    "ContainerView",
    "PodSpecView",
    "Pointer",
    "ValueRef",
    "Workload",
    "discover",
    "json_path",
    "json_pointer",
]

Pointer = tuple[str | int, ...]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_GENERIC_MAX_DEPTH = 8
_POD_GROUPS = ("containers", "initContainers", "ephemeralContainers")


# --------------------------------------------------------------------------------------------
# Paths


def _key_segment(key: str) -> str:
    """``.key`` for plain keys, ``["we.ird"]`` for keys a dotted path cannot express."""
    if key and key.replace("-", "_").isidentifier():
        return "." + key
    import json  # rare (and off the start-up of a scan): keys with dots, slashes, spaces

    return "[" + json.dumps(key) + "]"


def json_path(p: Pointer) -> str:
    """``("spec", "containers", 1, "env")`` -> ``spec.containers[1].env``: the form users read."""
    out: list[str] = []
    for seg in p:
        if isinstance(seg, int):
            out.append(f"[{seg}]")
        else:
            out.append(_key_segment(seg))
    path = "".join(out)
    return path[1:] if path.startswith(".") else path


def json_pointer(p: Pointer) -> str:
    """RFC 6901 pointer, the form JSON patches need: ``~`` -> ``~0``, ``/`` -> ``~1``."""
    return "".join("/" + str(seg).replace("~", "~0").replace("/", "~1") for seg in p)


def _child(path: str, key: str) -> str:
    # Keys passed here are literals of this module (always plain), so no escaping check.
    return f"{path}.{key}" if path else key


# --------------------------------------------------------------------------------------------
# Views


@record(frozen=True)
class ContainerView:
    """One container (or container-like mapping) and where it is."""

    pointer: Pointer
    path: str
    group: str  # containers | initContainers | ephemeralContainers | sidecars | container | ...
    container: Mapping[str, Any]


@record(frozen=True)
class PodSpecView:
    """One pod spec (or pod-spec-like mapping) with its containers. See the module docstring."""

    pointer: Pointer
    path: str
    spec: Mapping[str, Any]
    metadata_pointer: Pointer | None  # where pod labels/annotations live (may not exist yet)
    containers: tuple[ContainerView, ...]
    standard: bool
    complete: bool
    inherited: Mapping[str, Any] | None = None  # pod-level defaults set elsewhere (Argo spec)
    inherited_pointer: Pointer | None = None

    def effective(self, key: str) -> tuple[Pointer, Any] | None:
        """The value of pod-level field ``key`` that applies, and the pointer where it is set.

        The spec's own value wins; otherwise the inherited default; ``None`` when neither sets it.
        """
        if key in self.spec:
            return (*self.pointer, key), self.spec[key]
        inherited, iptr = self.inherited, self.inherited_pointer
        if inherited is not None and iptr is not None and key in inherited:
            return (*iptr, key), inherited[key]
        return None


@record(frozen=True)
class ValueRef:
    """A model or data location outside env vars, e.g. a KServe ``storageUri``."""

    pointer: Pointer
    path: str
    value: str
    what: str  # the field name: "storageUri" (KServe, TrainJob, TrainedModel) or "uri" (LLM)


@record(frozen=True)
class Workload:
    """An object with everything rules need located in it."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    obj: Mapping[str, Any]
    pod_specs: tuple[PodSpecView, ...]
    storage_uris: tuple[ValueRef, ...]

    @property
    def group(self) -> str:
        """The API group (``""`` for the core group)."""
        return self.api_version.rpartition("/")[0]

    @property
    def containers(self) -> Iterator[tuple[PodSpecView, ContainerView]]:
        """Every container paired with the pod spec it belongs to."""
        for ps in self.pod_specs:
            for c in ps.containers:
                yield ps, c


# --------------------------------------------------------------------------------------------
# Fast constructors. A frozen dataclass's generated __init__ sets each field through
# object.__setattr__ by name (about 120 ns a field here); discovery builds a dozen views per
# request, so the hot path sets the slots through their descriptors instead. Same objects,
# same equality and repr; every field must be set (a test compares them with the dataclass
# constructors).

_new = object.__new__


def _setters(cls: type) -> tuple[Any, ...]:
    return tuple(getattr(cls, name).__set__ for name in fields(cls))


_cv_ptr, _cv_path, _cv_group, _cv_container = _setters(ContainerView)
(
    _ps_ptr,
    _ps_path,
    _ps_spec,
    _ps_meta,
    _ps_containers,
    _ps_standard,
    _ps_complete,
    _ps_inherited,
    _ps_inherited_ptr,
) = _setters(PodSpecView)
(
    _wl_api_version,
    _wl_kind,
    _wl_name,
    _wl_namespace,
    _wl_labels,
    _wl_annotations,
    _wl_obj,
    _wl_pod_specs,
    _wl_storage_uris,
) = _setters(Workload)


def _cv(ptr: Pointer, path: str, group: str, container: Mapping[str, Any]) -> ContainerView:
    view: ContainerView = _new(ContainerView)
    _cv_ptr(view, ptr)
    _cv_path(view, path)
    _cv_group(view, group)
    _cv_container(view, container)
    return view


def _psv(  # noqa: PLR0917 (mirrors the dataclass constructor)
    ptr: Pointer,
    path: str,
    spec: Mapping[str, Any],
    meta_ptr: Pointer | None,
    containers: tuple[ContainerView, ...],
    standard: bool,
    complete: bool,
    inherited: Mapping[str, Any] | None = None,
    inherited_ptr: Pointer | None = None,
) -> PodSpecView:
    view: PodSpecView = _new(PodSpecView)
    _ps_ptr(view, ptr)
    _ps_path(view, path)
    _ps_spec(view, spec)
    _ps_meta(view, meta_ptr)
    _ps_containers(view, containers)
    _ps_standard(view, standard)
    _ps_complete(view, complete)
    _ps_inherited(view, inherited)
    _ps_inherited_ptr(view, inherited_ptr)
    return view


def _workload(  # noqa: PLR0917 (mirrors the dataclass constructor)
    api_version: str,
    kind: str,
    name: str,
    namespace: str | None,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    obj: Mapping[str, Any],
    pod_specs: tuple[PodSpecView, ...],
    storage_uris: tuple[ValueRef, ...],
) -> Workload:
    wl: Workload = _new(Workload)
    _wl_api_version(wl, api_version)
    _wl_kind(wl, kind)
    _wl_name(wl, name)
    _wl_namespace(wl, namespace)
    _wl_labels(wl, labels)
    _wl_annotations(wl, annotations)
    _wl_obj(wl, obj)
    _wl_pod_specs(wl, pod_specs)
    _wl_storage_uris(wl, storage_uris)
    return wl


# --------------------------------------------------------------------------------------------
# Collection helpers


def _is_map(x: object) -> TypeGuard[Mapping[str, Any]]:
    # dict and None (an absent field) first: the ABC instance check is slow
    return type(x) is dict or (x is not None and isinstance(x, Mapping))


def _is_list(x: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return type(x) is list or type(x) is tuple


class _Out:
    """What one discovery pass collects."""

    __slots__ = ("specs", "uris")

    def __init__(self) -> None:
        self.specs: list[PodSpecView] = []
        self.uris: list[ValueRef] = []

    def uri(self, holder: Mapping[str, Any], key: str, ptr: Pointer, path: str) -> None:
        value = holder.get(key)
        if type(value) is str and value:
            self.uris.append(ValueRef((*ptr, key), f"{path}.{key}", value, key))


def _container_list(
    spec: Mapping[str, Any], group: str, ptr: Pointer, path: str, out: list[ContainerView]
) -> None:
    items = spec.get(group)
    if not (type(items) is list or type(items) is tuple):
        return
    gptr = (*ptr, group)
    gpath = f"{path}.{group}"
    for i, c in enumerate(items):
        if type(c) is dict or isinstance(c, Mapping):
            out.append(_cv((*gptr, i), f"{gpath}[{i}]", group, c))


def _pod_containers(spec: Mapping[str, Any], ptr: Pointer, path: str) -> list[ContainerView]:
    found: list[ContainerView] = []
    for group in _POD_GROUPS:
        if group in spec:
            _container_list(spec, group, ptr, path, found)
    return found


def _pod_spec(
    out: _Out,
    spec: object,
    ptr: Pointer,
    path: str,
    meta_ptr: Pointer | None,
    *,
    standard: bool = True,
    complete: bool = True,
) -> None:
    """A core/v1 PodSpec (or a fragment of the same shape) at ``ptr``."""
    if not _is_map(spec):
        return
    containers = _pod_containers(spec, ptr, path)
    out.specs.append(_psv(ptr, path, spec, meta_ptr, tuple(containers), standard, complete))


def _template(out: _Out, holder: object, ptr: Pointer, path: str, key: str = "template") -> None:
    """``holder[key]`` is a PodTemplateSpec: ``{metadata, spec}``."""
    if not _is_map(holder):
        return
    tmpl = holder.get(key)
    if not _is_map(tmpl):
        return
    tptr = (*ptr, key)
    tpath = f"{path}.{key}" if path else key
    _pod_spec(out, tmpl.get("spec"), (*tptr, "spec"), f"{tpath}.spec", (*tptr, "metadata"))


def _get_map(holder: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    value = holder.get(key)
    if type(value) is dict or (value is not None and isinstance(value, Mapping)):
        return value
    return None


def _items(holder: Mapping[str, Any], key: str) -> Iterator[tuple[int, Mapping[str, Any]]]:
    value = holder.get(key)
    if type(value) is list or type(value) is tuple:
        for i, item in enumerate(value):
            if type(item) is dict or isinstance(item, Mapping):
                yield i, item


# --------------------------------------------------------------------------------------------
# Handlers, one per family of kinds: (out, obj, spec), spec being obj["spec"] or an empty mapping.

_Handler = Callable[[_Out, Mapping[str, Any], Mapping[str, Any]], None]
_SPEC: Pointer = ("spec",)


def _h_pod(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _pod_spec(out, obj.get("spec"), _SPEC, "spec", ("metadata",))


def _h_controller(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _template(out, spec, _SPEC, "spec")


def _h_cronjob(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    jt = _get_map(spec, "jobTemplate")
    if jt is not None:
        _template(out, jt.get("spec"), ("spec", "jobTemplate", "spec"), "spec.jobTemplate.spec")


def _h_podtemplate(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _template(out, obj, (), "")


def _h_kubeflow(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """PyTorchJob, TFJob, MPIJob, XGBoostJob, PaddleJob, JAXJob, MXJob: ``*ReplicaSpecs``."""
    for key, replicas in spec.items():
        if not (type(key) is str and key.endswith("ReplicaSpecs") and _is_map(replicas)):
            continue
        kptr = ("spec", key)
        kpath = "spec." + key
        for rtype, rspec in replicas.items():
            if type(rtype) is str:
                _template(out, rspec, (*kptr, rtype), kpath + _key_segment(rtype))


def _jobset_spec(out: _Out, js: object, ptr: Pointer, path: str) -> None:
    """A JobSet spec: ``replicatedJobs[*].template`` is a JobTemplateSpec."""
    if not _is_map(js):
        return
    for i, rj in _items(js, "replicatedJobs"):
        jt = _get_map(rj, "template")
        if jt is not None:
            base = (*ptr, "replicatedJobs", i, "template", "spec")
            _template(out, jt.get("spec"), base, f"{path}.replicatedJobs[{i}].template.spec")


def _h_jobset(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _jobset_spec(out, spec, _SPEC, "spec")


def _h_training_runtime(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """TrainingRuntime / ClusterTrainingRuntime: ``spec.template`` is a JobSet template."""
    tmpl = _get_map(spec, "template")
    if tmpl is not None:
        _jobset_spec(out, tmpl.get("spec"), ("spec", "template", "spec"), "spec.template.spec")


def _fragment(out: _Out, holder: Mapping[str, Any], ptr: Pointer, path: str, group: str) -> None:
    """A container-like mapping that is its own (incomplete, non-standard) pod view."""
    cv = _cv(ptr, path, group, holder)
    out.specs.append(_psv(ptr, path, holder, None, (cv,), False, False))


def _patch_spec(out: _Out, patch: object, ptr: Pointer, path: str, meta: Pointer | None) -> None:
    """An override/patch of a pod spec: containers by name, pod fields; supplied pod elsewhere."""
    if _is_map(patch):
        _pod_spec(out, patch, ptr, path, meta, standard=False, complete=False)


def _h_trainjob(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """TrainJob (trainer.kubeflow.org v1alpha1, and the earlier kubeflow.org v2alpha1 shape)."""
    trainer = _get_map(spec, "trainer")
    if trainer is not None:
        _fragment(out, trainer, ("spec", "trainer"), "spec.trainer", "trainer")
    init = _get_map(spec, "initializer")
    if init is not None:
        for key in ("dataset", "model"):
            sub = _get_map(init, key)
            if sub is not None:
                ptr: Pointer = ("spec", "initializer", key)
                path = f"spec.initializer.{key}"
                _fragment(out, sub, ptr, path, "initializer")
                out.uri(sub, "storageUri", ptr, path)
    # v2alpha1: datasetConfig{storageUri, env}, modelConfig{input{...}, output{...}}
    dc = _get_map(spec, "datasetConfig")
    if dc is not None:
        _fragment(out, dc, ("spec", "datasetConfig"), "spec.datasetConfig", "initializer")
        out.uri(dc, "storageUri", ("spec", "datasetConfig"), "spec.datasetConfig")
    mc = _get_map(spec, "modelConfig")
    if mc is not None:
        for key in ("input", "output"):
            sub = _get_map(mc, key)
            if sub is not None:
                ptr = ("spec", "modelConfig", key)
                path = f"spec.modelConfig.{key}"
                _fragment(out, sub, ptr, path, "initializer" if key == "input" else "exporter")
                out.uri(sub, "storageUri", ptr, path)
    # podSpecOverrides[*] (fields inline) and podTemplateOverrides[*].spec
    for i, ov in _items(spec, "podSpecOverrides"):
        _patch_spec(out, ov, ("spec", "podSpecOverrides", i), f"spec.podSpecOverrides[{i}]", None)
    for i, ov in _items(spec, "podTemplateOverrides"):
        base: Pointer = ("spec", "podTemplateOverrides", i)
        bpath = f"spec.podTemplateOverrides[{i}]"
        _patch_spec(out, ov.get("spec"), (*base, "spec"), bpath + ".spec", (*base, "metadata"))
    # runtimePatches[*].trainingRuntimeSpec.template.spec.replicatedJobs[*]...template.spec
    for i, rp in _items(spec, "runtimePatches"):
        trs = _get_map(rp, "trainingRuntimeSpec")
        tmpl = _get_map(trs, "template") if trs is not None else None
        js = _get_map(tmpl, "spec") if tmpl is not None else None
        if js is None:
            continue
        jbase: Pointer = ("spec", "runtimePatches", i, "trainingRuntimeSpec", "template", "spec")
        jpath = f"spec.runtimePatches[{i}].trainingRuntimeSpec.template.spec"
        for j, rj in _items(js, "replicatedJobs"):
            jt = _get_map(rj, "template")
            jspec = _get_map(jt, "spec") if jt is not None else None
            pt = _get_map(jspec, "template") if jspec is not None else None
            if pt is None:
                continue
            pbase: Pointer = (*jbase, "replicatedJobs", j, "template", "spec", "template")
            ppath = f"{jpath}.replicatedJobs[{j}].template.spec.template"
            _patch_spec(
                out, pt.get("spec"), (*pbase, "spec"), ppath + ".spec", (*pbase, "metadata")
            )


# KServe: implementation keys of a component that are container-like (with storageUri).
_KSERVE_IMPLS = frozenset(
    {
        "model",
        "sklearn",
        "xgboost",
        "tensorflow",
        "pytorch",
        "triton",
        "onnx",
        "huggingface",
        "pmml",
        "lightgbm",
        "paddle",
        "tensorrt",  # v1alpha2
        "art",
        "alibi",  # explainers (alibi removed in later releases)
        "aix",
    }
)
_KSERVE_COMPONENTS = ("predictor", "transformer", "explainer")


def _kserve_component(out: _Out, comp: Mapping[str, Any], ptr: Pointer, path: str) -> None:
    """A v1beta1/v1alpha2 component: inline PodSpec + implementation specs + extensions."""
    containers = _pod_containers(comp, ptr, path)
    for key, impl in comp.items():  # in document order; a component has few keys
        if key not in _KSERVE_IMPLS or not _is_map(impl):
            continue
        iptr = (*ptr, key)
        ipath = f"{path}.{key}"
        containers.append(_cv(iptr, ipath, key, impl))
        out.uri(impl, "storageUri", iptr, ipath)
    custom = _get_map(comp, "custom")  # v1alpha2: custom.container
    if custom is not None:
        c = _get_map(custom, "container")
        if c is not None:
            cptr: Pointer = (*ptr, "custom", "container")
            containers.append(_cv(cptr, f"{path}.custom.container", "custom", c))
    for i, su in _items(comp, "storageUris"):
        sptr: Pointer = (*ptr, "storageUris", i)
        out.uri(su, "uri", sptr, f"{path}.storageUris[{i}]")
    # ComponentExtensionSpec carries the pod's labels/annotations on the component itself.
    out.specs.append(_psv(ptr, path, comp, ptr, tuple(containers), False, True))
    worker = _get_map(comp, "workerSpec")
    if worker is not None:
        _pod_spec(out, worker, (*ptr, "workerSpec"), f"{path}.workerSpec", None, standard=False)


def _kserve_components(out: _Out, holder: Mapping[str, Any], ptr: Pointer, path: str) -> None:
    for name in _KSERVE_COMPONENTS:
        comp = _get_map(holder, name)
        if comp is not None:
            _kserve_component(out, comp, (*ptr, name), f"{path}.{name}")


def _h_inferenceservice(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _kserve_components(out, spec, _SPEC, "spec")
    for rollout in ("default", "canary"):  # v1alpha2: spec.default / spec.canary
        sub = _get_map(spec, rollout)
        if sub is not None:
            _kserve_components(out, sub, ("spec", rollout), f"spec.{rollout}")


def _h_servingruntime(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    # ServingRuntimePodSpec: containers, volumes, nodeSelector, host namespaces, labels,
    # annotations — but no pod securityContext: the InferenceService supplies the pod.
    if spec is not obj.get("spec"):  # absent or not a mapping: nothing is there to view
        return
    _pod_spec(out, spec, _SPEC, "spec", _SPEC, standard=False, complete=False)
    workers = _get_map(spec, "workers")
    if workers is not None:
        wptr: Pointer = ("spec", "workers")
        _pod_spec(out, workers, wptr, "spec.workers", wptr, standard=False, complete=False)


def _h_trainedmodel(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    model = _get_map(spec, "model")
    if model is not None:
        out.uri(model, "storageUri", ("spec", "model"), "spec.model")


def _llm_workload(out: _Out, wl: Mapping[str, Any], ptr: Pointer, path: str) -> None:
    """An LLMInferenceService WorkloadSpec: ``template`` and ``worker`` are core PodSpecs."""
    for key in ("template", "worker"):
        if key in wl:
            _pod_spec(out, wl[key], (*ptr, key), _child(path, key), ptr)


def _h_llm(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    """LLMInferenceService / LLMInferenceServiceConfig (serving.kserve.io v1alpha1/v1alpha2)."""
    _llm_workload(out, spec, _SPEC, "spec")
    prefill = _get_map(spec, "prefill")
    if prefill is not None:
        _llm_workload(out, prefill, ("spec", "prefill"), "spec.prefill")
    router = _get_map(spec, "router")
    sched = _get_map(router, "scheduler") if router is not None else None
    if sched is not None:
        sptr: Pointer = ("spec", "router", "scheduler")
        spath = "spec.router.scheduler"
        if "template" in sched:
            _pod_spec(out, sched["template"], (*sptr, "template"), spath + ".template", sptr)
        tok = _get_map(sched, "tokenizer")
        if tok is not None and "template" in tok:
            tptr: Pointer = (*sptr, "tokenizer", "template")
            _pod_spec(out, tok["template"], tptr, spath + ".tokenizer.template", None)
    model = _get_map(spec, "model")
    if model is not None:
        out.uri(model, "uri", ("spec", "model"), "spec.model")
        lora = _get_map(model, "lora")
        if lora is not None:
            for i, ad in _items(lora, "adapters"):
                out.uri(
                    ad,
                    "uri",
                    ("spec", "model", "lora", "adapters", i),
                    f"spec.model.lora.adapters[{i}]",
                )


def _ray_cluster(out: _Out, cs: object, ptr: Pointer, path: str) -> None:
    if not _is_map(cs):
        return
    head = _get_map(cs, "headGroupSpec")
    if head is not None:
        _template(out, head, (*ptr, "headGroupSpec"), f"{path}.headGroupSpec")
    for i, wg in _items(cs, "workerGroupSpecs"):
        _template(out, wg, (*ptr, "workerGroupSpecs", i), f"{path}.workerGroupSpecs[{i}]")
    hs = _get_map(cs, "historyServerOptions")
    col = _get_map(hs, "collectorOptions") if hs is not None else None
    if col is not None:  # a collector sidecar injected into every Ray pod
        cptr: Pointer = (*ptr, "historyServerOptions", "collectorOptions")
        _fragment(out, col, cptr, f"{path}.historyServerOptions.collectorOptions", "collector")


def _ray_job(out: _Out, js: Mapping[str, Any], ptr: Pointer, path: str) -> None:
    _ray_cluster(out, js.get("rayClusterSpec"), (*ptr, "rayClusterSpec"), f"{path}.rayClusterSpec")
    _template(out, js, ptr, path, "submitterPodTemplate")


def _h_raycluster(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _ray_cluster(out, spec, _SPEC, "spec")


def _h_rayjob(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _ray_job(out, spec, _SPEC, "spec")


def _h_rayservice(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _ray_cluster(
        out, spec.get("rayClusterConfig"), ("spec", "rayClusterConfig"), "spec.rayClusterConfig"
    )


def _h_raycronjob(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    jt = _get_map(spec, "jobTemplate")
    if jt is not None:
        _ray_job(out, jt, ("spec", "jobTemplate"), "spec.jobTemplate")


# Argo: container-like keys of a template.
_ARGO_SINGLE = ("container", "script")
_ARGO_LISTS = ("initContainers", "sidecars")


def _argo_template(
    out: _Out,
    t: Mapping[str, Any],
    ptr: Pointer,
    path: str,
    inherit: tuple[Mapping[str, Any], Pointer],
    *,
    complete: bool = True,
    depth: int = 0,
) -> None:
    containers: list[ContainerView] = []
    for key in _ARGO_SINGLE:
        c = t.get(key)
        if c is not None and _is_map(c):
            containers.append(_cv((*ptr, key), f"{path}.{key}", key, c))
    for key in _ARGO_LISTS:
        if key in t:
            _container_list(t, key, ptr, path, containers)
    cset = _get_map(t, "containerSet")
    if cset is not None:
        for i, c in _items(cset, "containers"):
            containers.append(
                _cv(
                    (*ptr, "containerSet", "containers", i),
                    f"{path}.containerSet.containers[{i}]",
                    "containerSet",
                    c,
                )
            )
    if containers:
        out.specs.append(
            _psv(ptr, path, t, (*ptr, "metadata"), tuple(containers), False, complete, *inherit)
        )
    if depth >= 2:  # inline templates inside inline templates: bounded
        return
    # Inline templates: steps[*][*].inline and dag.tasks[*].inline.
    steps = t.get("steps")
    if _is_list(steps):
        for i, group in enumerate(steps):
            if not _is_list(group):
                continue
            for j, step in enumerate(group):
                inline = step.get("inline") if _is_map(step) else None
                if inline is not None and _is_map(inline):
                    _argo_template(
                        out,
                        inline,
                        (*ptr, "steps", i, j, "inline"),
                        f"{path}.steps[{i}][{j}].inline",
                        inherit,
                        depth=depth + 1,
                    )
    dag = _get_map(t, "dag")
    if dag is not None:
        for i, task in _items(dag, "tasks"):
            inline = _get_map(task, "inline")
            if inline is not None:
                _argo_template(
                    out,
                    inline,
                    (*ptr, "dag", "tasks", i, "inline"),
                    f"{path}.dag.tasks[{i}].inline",
                    inherit,
                    depth=depth + 1,
                )


def _argo_workflow_spec(out: _Out, wf: object, ptr: Pointer, path: str) -> None:
    if not _is_map(wf):
        return
    for i, t in _items(wf, "templates"):
        _argo_template(out, t, (*ptr, "templates", i), f"{path}.templates[{i}]", (wf, ptr))
    td = _get_map(wf, "templateDefaults")
    if td is not None:  # merged into every template: a fragment, not a pod
        tptr: Pointer = (*ptr, "templateDefaults")
        _argo_template(out, td, tptr, f"{path}.templateDefaults", (wf, ptr), complete=False)


def _h_argo(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _argo_workflow_spec(out, spec, _SPEC, "spec")


def _h_argo_cron(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    _argo_workflow_spec(
        out, spec.get("workflowSpec"), ("spec", "workflowSpec"), "spec.workflowSpec"
    )


def _h_volcano(out: _Out, obj: Mapping[str, Any], spec: Mapping[str, Any]) -> None:
    for i, task in _items(spec, "tasks"):
        _template(out, task, ("spec", "tasks", i), f"spec.tasks[{i}]")


# --------------------------------------------------------------------------------------------
# Generic search for kinds without a handler


def _generic(
    out: _Out, node: Mapping[str, Any], ptr: Pointer, path: str, *, parent: str, depth: int
) -> None:
    """Pod templates (``…template.spec`` / ``…Template.spec`` with containers) anywhere.

    A mapping with a ``containers`` list elsewhere is reported too, as a non-standard
    fragment: better a view a rule can inspect than a container nobody checks.
    """
    for key, value in node.items():
        if type(key) is not str:
            continue
        if _is_map(value):
            kpath = path + _key_segment(key) if path else key
            kptr = (*ptr, key)
            if _is_list(value.get("containers")):
                if key == "spec" and (parent == "template" or parent.endswith("Template")):
                    _pod_spec(out, value, kptr, kpath, (*ptr, "metadata"))
                else:
                    _pod_spec(out, value, kptr, kpath, None, standard=False, complete=False)
                continue
            if depth < _GENERIC_MAX_DEPTH:
                _generic(out, value, kptr, kpath, parent=key, depth=depth + 1)
        elif _is_list(value) and depth < _GENERIC_MAX_DEPTH:
            kpath = path + _key_segment(key) if path else key
            for i, item in enumerate(value):
                if _is_map(item):
                    _generic(
                        out, item, (*ptr, key, i), f"{kpath}[{i}]", parent=key, depth=depth + 1
                    )


# --------------------------------------------------------------------------------------------
# Dispatch

_CORE_WORKLOAD_GROUPS = frozenset({"", "apps", "extensions", "batch"})
_KSERVE_GROUPS = frozenset({"serving.kserve.io", "serving.kubeflow.org"})
_TRAINER_GROUPS = frozenset({"trainer.kubeflow.org", "kubeflow.org"})

# kind -> [(accepted API groups or None for any, handler)], tried in order.
_DISPATCH: dict[str, tuple[tuple[frozenset[str] | None, _Handler], ...]] = {
    "Pod": ((frozenset({""}), _h_pod),),
    "Deployment": ((_CORE_WORKLOAD_GROUPS, _h_controller),),
    "StatefulSet": ((_CORE_WORKLOAD_GROUPS, _h_controller),),
    "DaemonSet": ((_CORE_WORKLOAD_GROUPS, _h_controller),),
    "ReplicaSet": ((_CORE_WORKLOAD_GROUPS, _h_controller),),
    "ReplicationController": ((frozenset({""}), _h_controller),),
    "Job": (
        (_CORE_WORKLOAD_GROUPS, _h_controller),
        (frozenset({"batch.volcano.sh"}), _h_volcano),
    ),
    "CronJob": ((_CORE_WORKLOAD_GROUPS, _h_cronjob),),
    "PodTemplate": ((frozenset({""}), _h_podtemplate),),
    "PyTorchJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "TFJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "MPIJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "XGBoostJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "PaddleJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "JAXJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "MXJob": ((frozenset({"kubeflow.org"}), _h_kubeflow),),
    "Notebook": ((frozenset({"kubeflow.org"}), _h_controller),),
    "TrainJob": ((_TRAINER_GROUPS, _h_trainjob),),
    "TrainingRuntime": ((_TRAINER_GROUPS, _h_training_runtime),),
    "ClusterTrainingRuntime": ((_TRAINER_GROUPS, _h_training_runtime),),
    "JobSet": ((frozenset({"jobset.x-k8s.io"}), _h_jobset),),
    "InferenceService": ((_KSERVE_GROUPS, _h_inferenceservice),),
    "ServingRuntime": ((_KSERVE_GROUPS, _h_servingruntime),),
    "ClusterServingRuntime": ((_KSERVE_GROUPS, _h_servingruntime),),
    "TrainedModel": ((_KSERVE_GROUPS, _h_trainedmodel),),
    "LLMInferenceService": ((_KSERVE_GROUPS, _h_llm),),
    "LLMInferenceServiceConfig": ((_KSERVE_GROUPS, _h_llm),),
    "RayCluster": ((frozenset({"ray.io"}), _h_raycluster),),
    "RayJob": ((frozenset({"ray.io"}), _h_rayjob),),
    "RayService": ((frozenset({"ray.io"}), _h_rayservice),),
    "RayCronJob": ((frozenset({"ray.io"}), _h_raycronjob),),
    "Workflow": ((frozenset({"argoproj.io"}), _h_argo),),
    "WorkflowTemplate": ((frozenset({"argoproj.io"}), _h_argo),),
    "ClusterWorkflowTemplate": ((frozenset({"argoproj.io"}), _h_argo),),
    "CronWorkflow": ((frozenset({"argoproj.io"}), _h_argo_cron),),
}

SUPPORTED_KINDS: frozenset[str] = frozenset(_DISPATCH)

# Kinds that never hold a pod: skip the generic search for them (ConfigMaps can be large).
_PODLESS_KINDS = frozenset(
    {
        "ConfigMap",
        "Secret",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "NetworkPolicy",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "StorageClass",
        "PriorityClass",
        "Ingress",
        "Endpoints",
        "EndpointSlice",
        "LimitRange",
        "ResourceQuota",
        "CustomResourceDefinition",
        "Event",
        "Lease",
    }
)
_CORE_PODLESS = frozenset(
    {
        "",
        "rbac.authorization.k8s.io",
        "networking.k8s.io",
        "storage.k8s.io",
        "scheduling.k8s.io",
        "apiextensions.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "extensions",
    }
)


def _str_map(value: object) -> Mapping[str, str]:
    if not _is_map(value):
        return _EMPTY
    for k, v in value.items():
        if type(k) is not str or type(v) is not str:
            return {k: v for k, v in value.items() if type(k) is str and type(v) is str}
    return value


def discover(obj: Mapping[str, Any]) -> Workload:
    """Locate every pod spec, container and model URI in ``obj``. Never raises."""
    if not _is_map(obj):
        obj = _EMPTY
    api_version = obj.get("apiVersion")
    if type(api_version) is not str:
        api_version = ""
    kind = obj.get("kind")
    if type(kind) is not str:
        kind = ""
    meta = obj.get("metadata")
    if _is_map(meta):
        name = meta.get("name") or meta.get("generateName") or ""
        if type(name) is not str:
            name = ""
        namespace = meta.get("namespace")
        if type(namespace) is not str or not namespace:
            namespace = None
        labels = _str_map(meta.get("labels"))
        annotations = _str_map(meta.get("annotations"))
    else:
        name, namespace, labels, annotations = "", None, _EMPTY, _EMPTY

    out = _Out()
    spec = obj.get("spec")
    if not _is_map(spec):
        spec = _EMPTY
    group = api_version.rpartition("/")[0]
    handled = False
    for groups, handler in _DISPATCH.get(kind, ()):
        if groups is None or group in groups:
            handler(out, obj, spec)
            handled = True
            break
    if not handled and not (kind in _PODLESS_KINDS and group in _CORE_PODLESS):
        for key, value in obj.items():
            if key in ("metadata", "status", "apiVersion", "kind") or type(key) is not str:
                continue
            kpath = json_path((key,))
            if _is_map(value):
                if _is_list(value.get("containers")):
                    _pod_spec(out, value, (key,), kpath, None, standard=False, complete=False)
                else:
                    _generic(out, value, (key,), kpath, parent=key, depth=1)
            elif _is_list(value):
                for i, item in enumerate(value):
                    if _is_map(item):
                        _generic(out, item, (key, i), f"{kpath}[{i}]", parent=key, depth=1)

    return _workload(
        api_version,
        kind,
        name,
        namespace,
        labels,
        annotations,
        obj,
        tuple(out.specs),
        tuple(out.uris),
    )
