"""From an AdmissionReview request to an answer: the decision logic of both webhooks.

No I/O besides metrics: the state comes from the :class:`StateStore`, the verdict from the
engine, and the server only moves bytes. What an answer looks like:

* **enforced findings** — denied, 403, one message listing every enforced finding as
  ``[rule] path: message — fix: …`` under a header naming the object and its environment,
  capped (lines and bytes) with "… and N more (run `airlock scan` for the full list)";
* **warned findings** — admitted with one admission warning per finding (each at most 256
  characters; at most ``max_warnings`` and ``max_warnings_bytes`` in all, then "and N more");
* **audited findings** — admitted silently; only ``airlock_rule_results_total`` records them;
* **mutations** (Pods on CREATE, PolicyException annotations) — a JSON patch, and one warning per
  change so nothing is changed behind the user's back.

``airlock_rule_results_total`` counts each failing (or exempted) rule once per request, not once
per place, so a pod with forty plaintext variables does not outweigh forty pods with one. Dry-run
requests get the same answer but are left out of that counter (a ``kubectl apply --dry-run=server``
is not a workload); ``airlock_admission_requests_total`` counts them like any request.

Objects nested deeper than :data:`~airlock.model.MAX_NESTING` levels are refused with code 400
naming the limit. Airlock's own kinds are measured up front (their whole spec is validated
anyway); other kinds are read only along the paths the engine knows, whatever their depth, so
measuring every review would cost the hot path for nothing: their depth is measured only when
something fails on them (an equality of deep UPDATE objects, a patch too deep to encode), and a
failure on an object past the limit is answered as the client's mistake, not as an internal
error.

Airlock's own kinds are validated first (an invalid BaselinePolicy or PolicyException is
answered 422, a forbidden one 403, as before); a valid one is then judged by the engine like any
object, so a plaintext credential in its free text (a PolicyException's ``reason`` and ``owner``,
a BaselinePolicy's strings) is denied or warned about as in ``airlock scan``.

DELETE and CONNECT are admitted without evaluation. An UPDATE that changes nothing but
``metadata`` is not denied unless ``enforce_on_metadata_update`` is set (its enforced findings
become warnings), so labelling an object admitted before the policy tightened keeps working.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from time import perf_counter
from typing import Any, Final, Protocol, TypeVar

from airlock import metrics
from airlock.engine import Verdict, evaluate, mutate, pin_images
from airlock.errors import AdmissionError, PolicyError
from airlock.findings import Finding
from airlock.model import API_GROUP, MAX_NESTING, load_policy, nested_deeper_than
from airlock.rbac import RBAC_KINDS
from airlock.state import EvalContext
from airlock.workloads import SUPPORTED_KINDS

from .policy_exceptions import check_exception, exception_patch
from .review import AdmissionRequest, AdmissionReview, allow, deny, parse_request
from .settings import AdmissionSettings
from .store import StateStore
from .supply import ImageFacts

__all__ = ["Decision", "Handler", "handle_mutate", "handle_validate"]

log = logging.getLogger("airlock.admission")

NO_ENVIRONMENT: Final = "none"  # metric label for cluster-scoped objects and unparsable requests
_MORE_HINT: Final = "(run `airlock scan` for the full list)"
_LINE_MAX: Final = 600

T = TypeVar("T")


class Decision(StrEnum):
    """What an answer did, as ``airlock_admission_requests_total{decision}`` shows it.

    The values are the metric's label values (dashboards and alerts select on them): never
    rename one.
    """

    ALLOWED = "allowed"
    """Admitted, with nothing to say (audited findings are counted, not shown)."""
    WARNED = "warned"
    """Admitted with admission warnings (warned findings, enforce turned to warn on a
    metadata-only update)."""
    DENIED = "denied"
    """Refused: enforced findings, an invalid policy or exception, four eyes."""
    MUTATED = "mutated"
    """Admitted with a JSON patch (secure defaults, exception annotations)."""
    ERROR = "error"
    """No verdict: an unreadable request, or an internal error (answered per ``fail_open``)."""


Outcome = tuple[AdmissionReview, Decision, str]
"""An answer, its decision and the environment label: what each endpoint's logic returns."""


class Handler(Protocol):
    """An admission endpoint, as the server calls it: :func:`handle_validate`,
    :func:`handle_mutate`, or a test's stand-in.

    ``body`` is the decoded JSON; the answer is the AdmissionReview to encode. No I/O besides
    metrics. Raises :class:`~airlock.errors.AdmissionError` without a uid when no answer is
    possible (the server replies HTTP 400). ``images`` are the registry answers the server
    gathered for this review (:mod:`.supply`), when it needed any.
    """

    def __call__(
        self,
        body: object,
        store: StateStore,
        settings: AdmissionSettings,
        *,
        started: float | None = None,
        images: ImageFacts | None = None,
    ) -> AdmissionReview: ...


# The kinds the webhook configurations route here; any other value becomes "other" in metrics.
_KNOWN_KINDS: Final = (
    SUPPORTED_KINDS | {"ConfigMap", "BaselinePolicy", "PolicyException"} | RBAC_KINDS
)

_REQUEST_CHILDREN: dict[tuple[str, str, str, str], Any] = {}
_DURATION_CHILDREN: dict[tuple[str, str], Any] = {}
# the containers of a running Pod that an update may still add (and so pin)
_EPHEMERAL = frozenset({"ephemeralContainers"})


def handle_validate(
    body: object,
    store: StateStore,
    settings: AdmissionSettings,
    *,
    started: float | None = None,
    images: ImageFacts | None = None,
) -> AdmissionReview:
    """Answer a validating AdmissionReview (decoded JSON).

    Raises :class:`AdmissionError` without a uid when no answer is possible (the server replies
    HTTP 400). ``started`` is the ``perf_counter()`` at which the body arrived, so the duration
    metric includes decoding (and the registry lookups behind ``images``).
    """
    return _handle(body, store, settings, mutating=False, started=started, images=images)


def handle_mutate(
    body: object,
    store: StateStore,
    settings: AdmissionSettings,
    *,
    started: float | None = None,
    images: ImageFacts | None = None,
) -> AdmissionReview:
    """Answer a mutating AdmissionReview (decoded JSON); see :func:`handle_validate`."""
    return _handle(body, store, settings, mutating=True, started=started, images=images)


def _handle(
    body: object,
    store: StateStore,
    settings: AdmissionSettings,
    *,
    mutating: bool,
    started: float | None,
    images: ImageFacts | None = None,
) -> AdmissionReview:
    start = perf_counter() if started is None else started
    try:
        req = parse_request(body)
    except AdmissionError as exc:
        metrics.ADMISSION_REQUESTS.labels(
            "unknown", "unknown", Decision.ERROR, NO_ENVIRONMENT
        ).inc()
        if exc.uid is None:
            raise
        return _bad_request(exc.uid, str(exc))
    kind = req["kind"]["kind"]
    if kind not in _KNOWN_KINDS:
        kind = "other"  # anyone who reaches the port could otherwise mint label values
    operation = req["operation"]
    try:
        if mutating:
            answer, decision, environment = _mutate(req, store, settings, images)
        else:
            answer, decision, environment = _validate(req, store, settings, images)
    except Exception as exc:  # a bug anywhere must still produce an answer
        decision, environment = Decision.ERROR, NO_ENVIRONMENT
        too_deep = _too_deep(req)
        if too_deep is not None:  # the client's doing (see the module docstring): no traceback
            answer = _bad_request(req["uid"], too_deep)
        else:
            _log_internal(req, exc, "mutate" if mutating else "validate")
            answer = _internal_error(req["uid"], mutating=mutating, fail_open=settings.fail_open)
    key = (kind, operation, decision, environment)
    counter = _REQUEST_CHILDREN.get(key)
    if counter is None:
        counter = _REQUEST_CHILDREN[key] = metrics.ADMISSION_REQUESTS.labels(*key)
    counter.inc()
    histogram = _DURATION_CHILDREN.get((kind, operation))
    if histogram is None:
        histogram = _DURATION_CHILDREN[kind, operation] = metrics.ADMISSION_DURATION.labels(
            kind, operation
        )
    histogram.observe(perf_counter() - start)
    return answer


def _internal_error(uid: str, *, mutating: bool, fail_open: bool) -> AdmissionReview:
    if mutating or fail_open:
        what = "mutation" if mutating else "checks"
        return allow(uid, warnings=[f"airlock internal error: admitted without {what}"])
    return deny(
        uid,
        "airlock internal error: the request could not be checked; retry, or ask the "
        "platform team to look at the airlock webhook logs",
        code=500,
        reason="InternalError",
    )


def _log_internal(req: AdmissionRequest, exc: BaseException, endpoint: str) -> None:
    # The exception's message may quote the object (a value from the manifest): log its type and
    # the stack only, with the request's identity.
    log.error(
        "internal error in /%s: uid=%s kind=%s object=%s/%s error=%s\n%s",
        endpoint,
        req["uid"],
        req["kind"]["kind"],
        req.get("namespace") or "-",
        req.get("name") or "-",
        type(exc).__name__,
        "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
    )


# --------------------------------------------------------------------------------------------
# Validation


def _context(store: StateStore, images: ImageFacts | None) -> EvalContext:
    return store.context if images is None else images.apply(store.context)


def _validate(
    req: AdmissionRequest,
    store: StateStore,
    settings: AdmissionSettings,
    images: ImageFacts | None = None,
) -> Outcome:
    uid = req["uid"]
    operation = req["operation"]
    namespace = req.get("namespace") or None
    ctx = _context(store, images)
    if operation in ("DELETE", "CONNECT"):
        return allow(uid), Decision.ALLOWED, ctx.environment_of(namespace).name
    obj = req.get("object")
    if not isinstance(obj, Mapping):
        return _bad_request(uid, "request.object is missing"), Decision.ERROR, NO_ENVIRONMENT
    if req["kind"].get("group") == API_GROUP and req["kind"]["kind"] in _OWN_KINDS:
        too_deep = _too_deep(req)
        if too_deep is not None:
            return _bad_request(uid, too_deep), Decision.ERROR, NO_ENVIRONMENT
        if req["kind"]["kind"] == "BaselinePolicy":
            outcome = _validate_policy(req, obj, store, settings)
        else:
            outcome = _validate_exception(req, store, settings)
        if outcome[1] is Decision.DENIED:
            return outcome  # invalid: the validation's answer, as before
        # valid: its free text is judged like any object's (plaintext credentials)
        judged = _judge(req, obj, evaluate(_with_namespace(obj, namespace), ctx), settings)
        return _merge(outcome, judged)
    return _judge(req, obj, evaluate(_with_namespace(obj, namespace), ctx), settings)


def _judge(
    req: AdmissionRequest, obj: Mapping[str, Any], verdict: Verdict, settings: AdmissionSettings
) -> Outcome:
    """The answer to a verdict: denied on enforced findings, warnings for warned ones."""
    uid = req["uid"]
    if verdict.excluded:
        return allow(uid), Decision.ALLOWED, verdict.environment
    if not req.get("dryRun"):
        _count_rule_results(verdict)
    enforced: Sequence[Finding] = verdict.enforced
    warned: Sequence[Finding] = verdict.warned
    notes: list[str] = []
    if enforced and not settings.enforce_on_metadata_update and _metadata_only(req, obj):
        notes.append(
            "airlock: this update changes only metadata, so enforced findings are reported as "
            "warnings; fix them before the next spec change"
        )
        warned = (*enforced, *warned)
        enforced = ()
    warnings = _warnings(notes, warned, lambda f: _finding_warning(f, settings), settings)
    if enforced:
        message = _deny_message(verdict, enforced, settings)
        return deny(uid, message, warnings=warnings), Decision.DENIED, verdict.environment
    if warnings:
        return allow(uid, warnings=warnings), Decision.WARNED, verdict.environment
    return allow(uid), Decision.ALLOWED, verdict.environment


def _merge(validated: Outcome, judged: Outcome) -> Outcome:
    """A valid Airlock object's answer: the engine's (a denial, warnings, or an admission), with
    the validation's warnings first and the validation's environment label (for the metrics)."""
    review, decision, _ = judged
    earlier = validated[0]["response"].get("warnings")
    if earlier:
        response = review["response"]
        response["warnings"] = [*earlier, *response.get("warnings", ())]
        if decision is Decision.ALLOWED:
            decision = Decision.WARNED
    return review, decision, validated[2]


_OWN_KINDS: Final = frozenset({"BaselinePolicy", "PolicyException"})


def _too_deep(req: AdmissionRequest) -> str | None:
    """Which of the request's objects is nested past the limit, as a message; None if neither."""
    for key in ("object", "oldObject"):
        if nested_deeper_than(req.get(key)):
            return f"request.{key} is nested deeper than {MAX_NESTING} levels"
    return None


def _bad_request(uid: str, message: str) -> AdmissionReview:
    return deny(
        uid, f"airlock: malformed AdmissionReview: {message}", code=400, reason="BadRequest"
    )


def _with_namespace(obj: Mapping[str, Any], namespace: str | None) -> Mapping[str, Any]:
    """The object with ``metadata.namespace`` from the request when the manifest has none."""
    if namespace is None:
        return obj
    meta = obj.get("metadata")
    if isinstance(meta, Mapping):
        if meta.get("namespace"):
            return obj
        return {**obj, "metadata": {**meta, "namespace": namespace}}
    return {**obj, "metadata": {"namespace": namespace}}


def _metadata_only(req: AdmissionRequest, obj: Mapping[str, Any]) -> bool:
    if req["operation"] != "UPDATE":
        return False
    old = req.get("oldObject")
    if not isinstance(old, Mapping):
        return False
    skip = ("metadata", "status")
    keys = (set(obj) | set(old)) - set(skip)
    return all(obj.get(k) == old.get(k) for k in keys)


# prometheus_client's ``labels()`` validates and locks on every call (≈2 µs); a request touches
# a dozen series, so the children are kept here. Label values are bounded (see airlock.metrics).
_RULE_RESULT_CHILDREN: dict[tuple[str, str, str], Any] = {}


def _count_rule_results(verdict: Verdict) -> None:
    seen: set[tuple[str, str, str]] = set()
    env = verdict.environment
    for f in verdict.findings:
        key = (f.rule, env, "fail" if f.exempted_by is None else "exempted")
        if key in seen:
            continue
        seen.add(key)
        child = _RULE_RESULT_CHILDREN.get(key)
        if child is None:
            child = _RULE_RESULT_CHILDREN[key] = metrics.RULE_RESULTS.labels(*key, "admission")
        child.inc()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _finding_warning(f: Finding, settings: AdmissionSettings) -> str:
    return _clip(
        f"airlock [{f.rule}] {f.path}: {f.message}; fix: {f.fix}", settings.max_warning_chars
    )


def _warnings(
    head: list[str],
    items: Sequence[T],
    render: Callable[[T], str],
    settings: AdmissionSettings,
) -> list[str]:
    """``head`` then rendered ``items`` within the count and size budgets, then "and N more".

    Items are rendered only while they fit: a dev namespace full of findings costs the same
    as one with thirty.
    """
    out = list(head)
    size = sum(len(w) for w in out)
    for i, item in enumerate(items):
        w = render(item)
        if len(out) >= settings.max_warnings - 1 or size + len(w) > settings.max_warnings_bytes:
            out.append(f"airlock: and {len(items) - i} more {_MORE_HINT}")
            break
        out.append(w)
        size += len(w)
    return out


def _display_name(kind: str, namespace: str | None, name: str) -> str:
    shown = name or "(unnamed)"
    return f"{kind} {namespace}/{shown}" if namespace else f"{kind} {shown}"


def _bounded_lines(
    head: str, lines: Sequence[str], settings: AdmissionSettings, noun: str = ""
) -> str:
    out = [head]
    size = len(head)
    budget = settings.max_message_bytes - 80  # room for the "and N more" line
    for i, raw in enumerate(lines):
        line = _clip(raw, _LINE_MAX)
        if i >= settings.max_message_lines or size + len(line) + 1 > budget:
            out.append(f"… and {len(lines) - i} more{noun} {_MORE_HINT}")
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def _deny_message(
    verdict: Verdict, enforced: Sequence[Finding], settings: AdmissionSettings
) -> str:
    n = len(enforced)
    head = (
        f"airlock denied {_display_name(verdict.kind, verdict.namespace, verdict.name)} "
        f"(environment {verdict.environment}): {n} violation{'' if n == 1 else 's'}"
    )
    lines = [f"[{f.rule}] {f.path}: {f.message} — fix: {f.fix}" for f in enforced]
    return _bounded_lines(head, lines, settings)


# --------------------------------------------------------------------------------------------
# Airlock's own resources


def _object_name(obj: Mapping[str, Any], req: AdmissionRequest) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) and name else (req.get("name") or "")


def _validate_policy(
    req: AdmissionRequest,
    obj: Mapping[str, Any],
    store: StateStore,
    settings: AdmissionSettings,
) -> Outcome:
    uid = req["uid"]
    name = _object_name(obj, req)
    try:
        load_policy(obj)
    except PolicyError as exc:
        errors = exc.errors or [("spec", str(exc))]
        n = len(errors)
        head = (
            f"airlock denied {_display_name('BaselinePolicy', None, name)}: invalid policy, "
            f"{n} error{'' if n == 1 else 's'}"
        )
        message = _bounded_lines(head, [f"{p}: {m}" for p, m in errors], settings)
        return deny(uid, message, code=422, reason="Invalid"), Decision.DENIED, NO_ENVIRONMENT
    if name and name != store.policy_name:
        warning = (
            f"airlock follows only the BaselinePolicy named {store.policy_name!r}; "
            f"{name!r} has no effect"
        )
        return allow(uid, warnings=[warning]), Decision.WARNED, NO_ENVIRONMENT
    return allow(uid), Decision.ALLOWED, NO_ENVIRONMENT


def _validate_exception(
    req: AdmissionRequest, store: StateStore, settings: AdmissionSettings
) -> Outcome:
    uid = req["uid"]
    obj = req.get("object") or {}
    namespace = req.get("namespace") or None
    environment = store.context.environment_of(namespace).name
    limits = store.policy.spec.exceptions
    problems = check_exception(req, limits, store.now())
    if problems:
        n = len(problems)
        head = (
            f"airlock denied {_display_name('PolicyException', namespace, _object_name(obj, req))}"
            f": {n} problem{'' if n == 1 else 's'}"
        )
        forbidden = any(p.forbidden for p in problems)
        message = _bounded_lines(head, [f"{p.path}: {p.message}" for p in problems], settings)
        if forbidden:
            return deny(uid, message), Decision.DENIED, environment
        return deny(uid, message, code=422, reason="Invalid"), Decision.DENIED, environment
    return allow(uid), Decision.ALLOWED, environment


# --------------------------------------------------------------------------------------------
# Mutation


def _mutate(
    req: AdmissionRequest,
    store: StateStore,
    settings: AdmissionSettings,
    images: ImageFacts | None = None,
) -> Outcome:
    uid = req["uid"]
    gvk = req["kind"]
    namespace = req.get("namespace") or None
    obj = req.get("object")
    ctx = _context(store, images)
    environment = ctx.environment_of(namespace).name
    ops: Sequence[Mapping[str, Any]] = ()
    changes: Sequence[str] = ()
    if gvk.get("group") == API_GROUP and gvk["kind"] == "PolicyException":
        too_deep = _too_deep(req)
        if too_deep is not None:
            return _bad_request(uid, too_deep), Decision.ERROR, environment
        ops, changes = exception_patch(req)
    elif (
        gvk.get("group", "") == ""
        and gvk["kind"] == "Pod"
        and req["operation"] == "CREATE"
        and isinstance(obj, Mapping)
    ):
        patch = mutate(_with_namespace(obj, namespace), ctx)
        ops, changes = patch.ops, patch.changes
    elif (
        images is not None
        and images.digests
        and gvk["kind"] in SUPPORTED_KINDS
        and req["operation"] in ("CREATE", "UPDATE")
        and isinstance(obj, Mapping)
    ):
        # controllers, AI kinds, a Pod's update (ephemeral containers): only the digest pins
        # a running pod's other containers cannot change: only its ephemeral ones are pinned
        groups = _EPHEMERAL if gvk["kind"] == "Pod" else None
        patch = pin_images(_with_namespace(obj, namespace), ctx, groups=groups)
        ops, changes = patch.ops, patch.changes
    notes = list(images.warnings) if images is not None else []
    if not ops:
        if notes:
            warnings = _warnings(
                [_clip(n, settings.max_warning_chars) for n in notes], (), str, settings
            )
            return allow(uid, warnings=warnings), Decision.WARNED, environment
        return allow(uid), Decision.ALLOWED, environment
    limit = settings.max_warning_chars
    warnings = _warnings(
        [_clip(n, limit) for n in notes], changes, lambda c: _clip(c, limit), settings
    )
    return allow(uid, warnings=warnings, patch=ops), Decision.MUTATED, environment
