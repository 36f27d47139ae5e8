"""Running a scan: loaded documents in, verdicts and a summary out.

The evaluator is passed in rather than imported: the CLI wires ``airlock.engine.evaluate`` in,
and tests and benchmarks pass the same function, so loading, formats and summaries are tested and
measured apart from the rules. (``airlock.scan`` sits one layer above the engine in the
import-linter contract: it takes the engine's verdict record and its ConfigMap helper, never
``evaluate`` itself.)

Airlock's own objects found among the scanned files are inputs, not workloads: a
``PolicyException`` is fed to the context (so ``airlock scan app.yaml exceptions.yaml`` sees the
same waivers as the webhook), a ``Namespace`` lends its labels (its environment), RoleBindings,
ClusterRoleBindings and ClusterRoles lend what they grant (a workload whose ServiceAccount a
binding in another file reaches across environments is reported, as in the cluster), and a
``BaselinePolicy`` is only validated: a policy applies when named with ``--policy``, never because
it happens to sit in a scanned directory.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from airlock.catalog import API_VERSION, OWN_KINDS
from airlock.compilecache import regex
from airlock.engine import Verdict, credential_configmaps
from airlock.errors import InputError, PolicyError
from airlock.findings import Action, Finding, Severity
from airlock.rbac import Binding, RolePowers, is_rbac, read_binding, role_powers
from airlock.records import field, record, replace
from airlock.scan.loader import (
    Document,
    Input,
    LoadResult,
    load_text,
    parse_yaml,
    paused_gc,
    read_text,
    resolved,
)
from airlock.scan.parallel import map_staged
from airlock.state import CompiledPolicy, EvalContext

if TYPE_CHECKING:  # pydantic models: imported only when a policy or an exception is read
    from airlock.detectors import FingerprintKey
    from airlock.model import ExceptionRecord, PolicySpec

__all__ = [
    "Evaluator",
    "Renderer",
    "ScanEntry",
    "ScanResult",
    "VerdictLike",
    "load_policy_file",
    "run_scan",
    "scan_inputs",
]


class VerdictLike(Protocol):
    """What the scan reads of :class:`airlock.engine.Verdict`."""

    @property
    def kind(self) -> str: ...
    @property
    def namespace(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def environment(self) -> str: ...
    @property
    def excluded(self) -> bool: ...
    @property
    def findings(self) -> tuple[Finding, ...]: ...
    @property
    def credential_keys(self) -> frozenset[str]: ...


Evaluator = Callable[[Mapping[str, Any], EvalContext], VerdictLike]


@record(frozen=True)
class ScanEntry:
    document: Document
    verdict: VerdictLike
    # the object's findings as a report writes them, when the scan was asked to (``render`` of
    # scan_inputs): computed where the object is judged, so a parallel scan's workers share it
    report: str | None = None


Renderer = Callable[[Document, VerdictLike], str]

KEEP_TEXTS = 8 << 20
"""Characters of file text a scan's context pass keeps for judging (each file is then read
once, not twice); what is beyond is read again when judged."""


@record
class ScanResult:
    entries: list[ScanEntry] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    files: int = 0
    fail_on: Action = Action.ENFORCE

    def findings(self) -> Iterator[tuple[ScanEntry, Finding]]:
        """Every finding, exempted ones included, in the stable report order."""
        for entry in self.entries:
            for finding in sorted(entry.verdict.findings, key=_finding_key):
                yield entry, finding

    def fails(self, finding: Finding) -> bool:
        return finding.exempted_by is None and finding.action.rank >= self.fail_on.rank

    @property
    def counts(self) -> dict[str, int]:
        """Findings by action (exempted ones counted apart), for every summary."""
        counts = {"enforce": 0, "warn": 0, "audit": 0, "exempted": 0}
        for entry in self.entries:
            for f in entry.verdict.findings:
                counts["exempted" if f.exempted_by is not None else f.action.value] += 1
        return counts

    @property
    def failing_objects(self) -> int:
        fails = self._failing()
        return sum(1 for e in self.entries if fails(e))

    def _failing(self) -> Callable[[ScanEntry], bool]:
        """Whether an entry has a finding that :meth:`fails`, the failing actions found once."""
        failing = frozenset(a for a in Action if a.rank >= self.fail_on.rank)

        def fails(entry: ScanEntry) -> bool:
            return any(
                f.exempted_by is None and f.action in failing for f in entry.verdict.findings
            )

        return fails

    @property
    def excluded(self) -> int:
        return sum(1 for e in self.entries if e.verdict.excluded)

    @property
    def exit_code(self) -> int:
        """0 clean, 1 a finding at or above ``fail_on``, 2 some input was unusable."""
        if self.errors:
            return 2
        return int(any(map(self._failing(), self.entries)))


def _finding_key(f: Finding) -> tuple[str, str]:
    return f.path, f.rule


def _entry_key(e: ScanEntry) -> tuple[str, int, int]:
    d = e.document
    return d.file, d.index, -1 if d.item is None else d.item


@record
class _Scope:
    """What other documents lend a workload's verdict, gathered before any workload is judged:
    PolicyExceptions (waivers), Namespaces (their environment labels), ConfigMaps (a workload
    reading a ConfigMap key that holds a credential is flagged too) and RBAC (which ServiceAccounts
    a binding reaches, which ClusterRoles are dangerous)."""

    exceptions: list[ExceptionRecord] = field(default_factory=list)
    labels: dict[str, Mapping[str, str]] = field(default_factory=dict)
    configmaps: list[Mapping[str, Any]] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)
    roles: dict[str, RolePowers] = field(default_factory=dict)

    def take(self, obj: Mapping[str, Any]) -> None:
        kind, api = obj["kind"], obj["apiVersion"]
        if api == API_VERSION and kind == "PolicyException":
            from airlock.model import ExceptionRecord  # pydantic on demand

            with contextlib.suppress(PolicyError):  # reported when its document is judged
                self.exceptions.append(ExceptionRecord.from_object(obj))
        elif api == "v1" and kind == "Namespace":
            meta = obj.get("metadata")
            if isinstance(meta, Mapping) and isinstance(meta.get("name"), str):
                lab = meta.get("labels")
                self.labels[meta["name"]] = {
                    str(k): str(v) for k, v in (lab.items() if isinstance(lab, Mapping) else ())
                }
        elif kind == "ConfigMap":
            self.configmaps.append(obj)
        elif is_rbac(obj):
            if kind == "ClusterRole":
                meta = obj.get("metadata")
                name = meta.get("name") if isinstance(meta, Mapping) else None
                powers = role_powers(obj)
                if isinstance(name, str) and powers:
                    self.roles[name] = powers
            elif (binding := read_binding(obj)) is not None and binding.subjects:
                self.bindings.append(binding)

    def context(
        self,
        evaluate: Evaluator,
        policy: PolicySpec | None,
        environment: str | None,
        namespace_env: Mapping[str, str] | None,
        now: datetime | None,
        *,
        fingerprint_key: FingerprintKey | None = None,
        compiled: CompiledPolicy | None = None,
    ) -> EvalContext:
        """The context the scan's workloads are judged in. ``compiled``: ``policy`` already
        compiled and keyed with ``fingerprint_key``, and the environments already checked."""
        ns_env = dict(namespace_env or {})
        if compiled is not None:
            ctx = self._build(compiled, environment, ns_env, now, None)
        else:
            if policy is not None or ns_env:
                _check_environments(policy, ns_env)
            ctx = self._build(policy, environment, ns_env, now, fingerprint_key)
        flagged = credential_configmaps(evaluate(obj, ctx) for obj in self.configmaps)
        if not flagged:
            return ctx
        return replace(ctx, credential_configmaps=flagged)

    def _build(
        self,
        policy: PolicySpec | CompiledPolicy | None,
        environment: str | None,
        ns_env: Mapping[str, str],
        now: datetime | None,
        fingerprint_key: FingerprintKey | None,
    ) -> EvalContext:
        return EvalContext.build(
            policy,
            namespace_env=ns_env,
            namespace_labels=self.labels,
            exceptions=self.exceptions,
            now=now,
            environment=environment,
            fingerprint_key=fingerprint_key,
            bindings=self.bindings,
            cluster_roles=self.roles,
        )

    def handed(self, ctx: EvalContext) -> bytes:
        """What a worker needs to build the same context as ``ctx`` (see :meth:`adopted`):
        everything this scope holds but the ConfigMaps, which were judged here already."""
        import pickle

        lent = (self.exceptions, self.labels, self.bindings, self.roles, ctx.credential_configmaps)
        return pickle.dumps(lent, pickle.HIGHEST_PROTOCOL)

    @classmethod
    def adopted(
        cls,
        payload: bytes,
        compiled: CompiledPolicy,
        environment: str | None,
        namespace_env: Mapping[str, str] | None,
        now: datetime,
    ) -> EvalContext:
        """The context :meth:`handed` described, built again in a worker."""
        import pickle

        exceptions, labels, bindings, roles, flagged = pickle.loads(payload)  # noqa: S301 - ours
        scope = cls(exceptions=exceptions, labels=labels, bindings=bindings, roles=roles)
        ctx = scope._build(compiled, environment, dict(namespace_env or {}), now, None)
        return replace(ctx, credential_configmaps=flagged) if flagged else ctx


def _judge(
    result: ScanResult,
    docs: list[Document],
    ctx: EvalContext,
    evaluate: Evaluator,
    render: Renderer | None = None,
) -> None:
    """Evaluate ``docs`` into ``result``, keeping of each only what reports need (and what
    ``render`` makes of it)."""
    for doc in docs:
        obj = doc.obj
        kind = obj["kind"]
        own = obj["apiVersion"] == API_VERSION and kind in OWN_KINDS
        if own:  # Airlock's objects: validated, and their free text checked for credentials
            from airlock.model import ExceptionRecord, load_policy  # pydantic on demand

            try:
                if kind == "PolicyException":
                    ExceptionRecord.from_object(obj)
                else:
                    load_policy(obj)
            except PolicyError as exc:
                result.errors.append(InputError(str(exc), doc.display, doc.index))
        verdict = evaluate(obj, ctx)
        if own and not verdict.findings:
            continue
        kept = resolved(doc, [f.path for f in verdict.findings])
        report = None if render is None else render(kept, verdict)
        result.entries.append(ScanEntry(kept, verdict, report))


def run_scan(
    loaded: LoadResult,
    evaluate: Evaluator,
    *,
    policy: PolicySpec | None = None,
    environment: str | None = None,
    namespace_env: Mapping[str, str] | None = None,
    fail_on: Action = Action.ENFORCE,
    now: datetime | None = None,
    fingerprint_key: FingerprintKey | None = None,
) -> ScanResult:
    """Evaluate every loaded workload against ``policy``.

    Raises :class:`PolicyError` when ``environment`` (or a ``--namespace-env`` value) names an
    environment the policy does not declare.
    """
    with paused_gc():
        scope = _Scope()
        for doc in loaded.documents:
            scope.take(doc.obj)
        ctx = scope.context(
            evaluate, policy, environment, namespace_env, now, fingerprint_key=fingerprint_key
        )
        result = ScanResult(errors=list(loaded.errors), files=loaded.files, fail_on=fail_on)
        _judge(result, loaded.documents, ctx, evaluate)
        result.entries.sort(key=_entry_key)
        return result


def scan_inputs(
    inputs: Sequence[Input],
    evaluate: Evaluator,
    *,
    policy: PolicySpec | None = None,
    environment: str | None = None,
    namespace_env: Mapping[str, str] | None = None,
    fail_on: Action = Action.ENFORCE,
    now: datetime | None = None,
    fingerprint_key: FingerprintKey | None = None,
    jobs: int = 1,
    render: Renderer | None = None,
) -> ScanResult:
    """``run_scan`` over files, one at a time: peak memory is one file's objects, not all.

    ``jobs`` > 1 judges the files in that many processes (:mod:`airlock.scan.parallel`) when
    the input is large enough to gain from it; the result is the same as a serial scan's.
    ``render`` (an object's report lines) runs where the object is judged: each entry's
    ``report``, so the workers of a parallel scan encode the report too. Then, unless a file
    is named twice, what a worker judged comes back as the report and the summary read it
    (:func:`_as_reported`): its lines, its place, and of each finding the action and the
    exemption only. A caller that reads more than :func:`~airlock.scan.format_json` does of
    the result passes no ``render``.

    A first pass reads only the documents that lend context (``_CONTEXT_KIND`` finds them in the
    text; just those documents are parsed); the second parses each file, judges it, keeps the
    findings and the lines they are on, and drops the objects before the next file.
    """
    with paused_gc():
        # one moment and one compiled policy (its --environment checked) for every worker;
        # --namespace-env is checked first, as the context would
        if policy is not None or namespace_env:
            _check_environments(policy, dict(namespace_env or {}))
        now = now or datetime.now(UTC)
        compiled = EvalContext.build(
            policy, environment=environment, now=now, fingerprint_key=fingerprint_key
        ).policy
        known: list[EvalContext] = []  # the context, once this process has it
        # texts the context pass read, which this process judges without reading them again
        # (up to KEEP_TEXTS characters; workers fork before it and read their own)
        kept: dict[int, str] = {}

        def context(hand: bool) -> bytes:
            scope = _Scope()
            # ConfigMaps lend only to workloads that read one (configMapRef, configMapKeyRef):
            # their documents wait, as text, until a file shows such a reference
            waiting: list[tuple[str, str]] | None = []
            room = KEEP_TEXTS
            for i, source in enumerate(inputs):
                text = source.read()
                if text is None:
                    continue
                if source.text is None and len(text) <= room:
                    kept[i] = text
                    room -= len(text)
                if waiting is not None and _reads_configmaps(text):
                    for piece, name in waiting:
                        for obj in _context_objects(piece, name):
                            scope.take(obj)
                    waiting = None
                if _CONTEXT_KIND.search(text):
                    for obj in _context_objects(text, source.name, waiting):
                        scope.take(obj)
            ctx = scope.context(
                evaluate, policy, environment, namespace_env, now, compiled=compiled
            )
            known.append(ctx)
            return scope.handed(ctx) if hand else b""

        def adopt(payload: bytes) -> None:
            known.append(_Scope.adopted(payload, compiled, environment, namespace_env, now))

        def judge(
            _i: int, loaded: tuple[list[Document], list[InputError]]
        ) -> tuple[list[ScanEntry], list[InputError]]:
            docs, errors = loaded
            part = ScanResult(errors=errors)
            _judge(part, docs, known[0], evaluate, render)
            return part.entries, part.errors

        # PyYAML (the exact path) is imported by the worker that first needs it, not before
        # the fork: most inputs never need it, and the workers import in parallel when they do
        sizes = [s.size for s in inputs]
        result = ScanResult(files=sum(s.error is None for s in inputs), fail_on=fail_on)

        def load(i: int) -> tuple[list[Document], list[InputError]]:
            return inputs[i].load(kept.pop(i, None))

        # A report encoded where each object is judged is used as it is unless a file is named
        # twice (its objects' lines are then interleaved, encoded again): then a worker hands
        # back only what the report and the summary read of its objects, not every finding to
        # be pickled and built again here
        names = {s.name for s in inputs}
        hand = _as_reported if render is not None and len(names) == len(inputs) else None
        for entries, errors in map_staged(
            load, judge, sizes, jobs, context=context, adopt=adopt, hand=hand
        ):
            result.errors.extend(errors)
            result.entries.extend(entries)
        result.entries.sort(key=_entry_key)
        return result


def _as_reported(
    judged: tuple[list[ScanEntry], list[InputError]],
) -> tuple[list[ScanEntry], list[InputError]]:
    """A file's entries as the report reads them once each object's lines are encoded: the
    lines, the object's place (file, document, item, source), whether it was excluded and, of
    each finding, its action and exemption (what the summary and the exit code count): one
    stand-in finding for all that share the two, so a worker pickles each stand-in once."""
    entries, errors = judged
    return [_reported(e) for e in entries], errors


def _reported(entry: ScanEntry) -> ScanEntry:
    doc, verdict = entry.document, entry.verdict
    stub = Document(doc.file, doc.index, {}, doc.line, doc.item, doc.source)
    counted = tuple(_stand_in(f.action, f.exempted_by) for f in verdict.findings)
    kept = Verdict(
        verdict.kind,
        verdict.namespace,
        verdict.name,
        verdict.environment,
        verdict.excluded,
        counted,
    )
    return ScanEntry(stub, kept, entry.report)


@functools.lru_cache(maxsize=256)
def _stand_in(action: Action, exempted_by: str | None) -> Finding:
    return Finding("", Severity.LOW, action, "", None, "", "", "", "", exempted_by=exempted_by)


# a "kind:" (YAML) or "kind": (JSON) naming a kind that lends context; a false match only costs
# parsing one document twice
_CONTEXT_KIND = regex(
    r"""kind"?[ \t]*:[ \t]*["']?(?:(?P<cm>ConfigMap)|Namespace|PolicyException|RoleBinding"""
    r"""|ClusterRole(?:Binding)?)\b"""
)
# "---" then a blank or the line's end; at a line's start, which the caller checks (a pattern
# opening with a literal is searched for as one, one opening with "^" tries every position)
_DOCUMENT_MARK = regex(r"---(?:[ \t]|$)", re.MULTILINE)
# A workload reading a ConfigMap's keys (envFrom's configMapRef, a configMapKeyRef), or a text
# that might spell one with escapes ("\x", "\u", "\U" in a quoted key): doubt reads them
_CONFIGMAP_REF = regex(r"configMap(?:Key)?Ref")
_ESCAPE = regex(r"\\[xuU]")


def _reads_configmaps(text: str) -> bool:
    """Whether ``text`` may hold a reference to a ConfigMap's keys (``in`` first: a search for
    a word is ten times faster than a regular expression with two openings)."""
    return ("configMap" in text and _CONFIGMAP_REF.search(text) is not None) or (
        "\\" in text and _ESCAPE.search(text) is not None
    )


def _context_objects(
    text: str, name: str, waiting: list[tuple[str, str]] | None = None
) -> Iterator[Mapping[str, Any]]:
    """The objects of ``text`` that may lend context: in YAML, only the documents whose text
    names such a kind are parsed (errors are left to the full read of the second pass). A
    document that names no such kind but ConfigMap is appended to ``waiting`` (with ``name``)
    instead, when a list is given."""
    if text.lstrip()[:1] in ("{", "["):
        docs, _ = load_text(text, name)
        yield from (d.obj for d in docs)
        return
    marks = (m.start() for m in _DOCUMENT_MARK.finditer(text))
    starts = [0, *(at for at in marks if at == 0 or text[at - 1] == "\n"), len(text)]
    found: dict[int, bool] = {}  # document -> names only ConfigMap so far
    for m in _CONTEXT_KIND.finditer(text):
        i = bisect.bisect_right(starts, m.start()) - 1
        found[i] = found.get(i, True) and m.group("cm") is not None
    for i, configmap in found.items():
        piece = text[starts[i] : starts[i + 1]]
        if configmap and waiting is not None:
            waiting.append((piece, name))
            continue
        docs, _ = load_text(piece, name)
        yield from (d.obj for d in docs)


def _check_environments(policy: PolicySpec | None, ns_env: Mapping[str, str]) -> None:
    """A ``--namespace-env`` value must name a declared environment: a typo would scan silently
    against the default environment instead."""
    if policy is None:
        from airlock.model import PolicySpec  # pydantic on demand

        policy = PolicySpec()
    known = {e.name for e in policy.environments}
    for ns, env in sorted(ns_env.items()):
        if env not in known:
            raise PolicyError(
                f"--namespace-env {ns}={env}: environment {env!r} is not declared by the policy "
                f"(known: {', '.join(sorted(known))})",
                [("namespace-env", f"unknown environment {env!r}")],
            )


def load_policy_file(path: str) -> PolicySpec:
    """The ``BaselinePolicy`` in ``path`` (a full object or a bare spec), validated.

    Raises :class:`InputError` when the file cannot be read or parsed and :class:`PolicyError`
    (message naming the file and every failing field path) when the policy is invalid.
    """
    from airlock.model import load_policy  # pydantic on demand

    text = read_text(path)
    errors: list[InputError] = []
    candidates = [r for r in parse_yaml(text, path, errors) if r.value is not None]
    if errors:
        raise errors[0]
    policies = [
        r
        for r in candidates
        if isinstance(r.value, Mapping)
        and (r.value.get("kind") == "BaselinePolicy" or "kind" not in r.value)
    ]
    if not policies:
        raise InputError("no BaselinePolicy document found", path)
    if len(policies) > 1:
        docs = ", ".join(str(r.index) for r in policies)
        raise InputError(f"several BaselinePolicy documents (documents {docs}); keep one", path)
    raw = policies[0]
    try:
        return load_policy(raw.value)
    except PolicyError as exc:
        where = path if len(candidates) == 1 else f"{path}, document {raw.index}"
        raise PolicyError(
            f"{where}: {exc}", [(f"{where}: {p}", m) for p, m in exc.errors]
        ) from None
