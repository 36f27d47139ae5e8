"""PolicyReports: the audit's results where Policy Reporter and Kyverno's ecosystem read them.

One ``wgpolicyk8s.io/v1alpha2`` ``PolicyReport`` per namespace, named ``airlock`` and labelled
``app.kubernetes.io/managed-by: airlock``. By default it lists failures (``fail``) and waived
findings (``skip``, with the PolicyException in ``properties.exception``) only, to keep etcd
small; a namespace without either has no report (it is deleted when its last result goes).

Shape of a result: ``policy`` is the BaselinePolicy's name, ``rule`` the rule id, ``category``
the rule family, ``message`` the engine's finding message (never a secret: credentials appear
redacted), ``resources`` the workload, ``timestamp`` when the audit first saw the result (so an
unchanged namespace produces an identical report and no write), and ``properties`` the JSON path
of the first failing place, the policy's action, the environment, and ``occurrences`` when the
rule fails at several places of the workload (one result per workload and rule, not per place).

Size: an object in etcd is limited to about 1.5 MB. At most ``max_results`` results (default
1000, about 600 KB) are listed, most severe first; ``summary`` still counts every result, and the
annotation ``airlock.dev/omitted-results`` says how many were left out.

:func:`build_report` is pure; :class:`ReportWriter` creates, updates (only when the content
changed) and deletes reports through :class:`~airlock.controller.kube.Kube`, and skips the whole
thing, with one log line, while the PolicyReport CRD is not installed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from airlock.controller.audit import AuditedWorkload, RuleResult
from airlock.controller.kube import Kube
from airlock.errors import KubeError

__all__ = [
    "GROUP",
    "MANAGED_BY_LABEL",
    "OMITTED_ANNOTATION",
    "PLURAL",
    "REPORT_NAME",
    "SOURCE",
    "VERSION",
    "ReportWriter",
    "build_report",
    "report_digest",
]

_log = logging.getLogger(__name__)

GROUP: Final = "wgpolicyk8s.io"
VERSION: Final = "v1alpha2"
PLURAL: Final = "policyreports"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
REPORT_NAME: Final = "airlock"
SOURCE: Final = "airlock"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "airlock"
OMITTED_ANNOTATION: Final = "airlock.dev/omitted-results"
DEFAULT_MAX_RESULTS: Final = 1000
_SEVERITY_RANK: Final = {"critical": 0, "high": 1, "medium": 2, "low": 3}


def _result(
    policy_name: str, audited: AuditedWorkload, r: RuleResult, now: datetime
) -> dict[str, Any]:
    properties = {
        "path": r.path,
        "action": r.action.value,
        "environment": audited.environment,
    }
    if r.exempted_by is not None:
        properties["exception"] = r.exempted_by
    if r.occurrences > 1:
        properties["occurrences"] = str(r.occurrences)
    seconds = int(r.since) if r.since > 0 else int(now.timestamp())
    return {
        "source": SOURCE,
        "policy": policy_name,
        "rule": r.rule,
        "result": "skip" if r.exempted_by is not None else "fail",
        "scored": True,
        "severity": r.severity.value,
        "category": r.family,
        "message": r.message,
        "resources": [audited.ref.object_reference()],
        "timestamp": {"seconds": seconds, "nanos": 0},
        "properties": properties,
    }


def _pass_result(policy_name: str, audited: AuditedWorkload, now: datetime) -> dict[str, Any]:
    return {
        "source": SOURCE,
        "policy": policy_name,
        "result": "pass",
        "scored": True,
        "message": "no rule of the baseline fails",
        "resources": [audited.ref.object_reference()],
        "timestamp": {"seconds": int(now.timestamp()), "nanos": 0},
        "properties": {"environment": audited.environment},
    }


def _order(result: Mapping[str, Any]) -> tuple[int, int, str, str, str]:
    ref = result["resources"][0]
    return (
        {"fail": 0, "skip": 1}.get(result["result"], 2),
        _SEVERITY_RANK.get(result.get("severity", ""), 4),
        ref["kind"],
        ref["name"],
        result.get("rule", ""),
    )


def build_report(
    namespace: str,
    verdicts: Iterable[AuditedWorkload],
    policy_name: str,
    now: datetime,
    *,
    include_passes: bool = False,
    max_results: int = DEFAULT_MAX_RESULTS,
) -> dict[str, Any]:
    """The PolicyReport of ``namespace`` from the audit's results for its workloads.

    ``verdicts`` from other namespaces are ignored. ``include_passes`` adds one ``pass`` result
    per compliant workload. Results are ordered failures first, most severe first, then by kind
    and name, so the report is stable from one pass to the next.
    """
    results: list[dict[str, Any]] = []
    for audited in verdicts:
        if audited.ref.namespace != namespace:
            continue
        for r in audited.results:
            results.append(_result(policy_name, audited, r, now))
        if include_passes and audited.compliant and not audited.results:
            results.append(_pass_result(policy_name, audited, now))
    results.sort(key=_order)
    summary = {"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}
    for entry in results:
        summary[entry["result"]] += 1
    metadata: dict[str, Any] = {
        "name": REPORT_NAME,
        "namespace": namespace,
        "labels": {MANAGED_BY_LABEL: MANAGED_BY},
    }
    omitted = max(0, len(results) - max_results)
    if omitted:
        metadata["annotations"] = {OMITTED_ANNOTATION: str(omitted)}
        results = results[:max_results]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "PolicyReport",
        "metadata": metadata,
        "scope": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
        "summary": summary,
        "results": results,
    }


def report_digest(report: Mapping[str, Any]) -> str:
    """A fingerprint of what a report says (labels, annotations, scope, summary, results)."""
    meta = report.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    content = {
        "labels": meta.get("labels") or {},
        "annotations": {
            k: v for k, v in (meta.get("annotations") or {}).items() if k == OMITTED_ANNOTATION
        },
        "scope": report.get("scope"),
        "summary": report.get("summary"),
        "results": report.get("results") or [],
    }
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=dict)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ReportWriter:
    """Writes the reports the audit's results call for; fed by a watch of existing reports.

    ``_written`` remembers, per namespace, the digest of the report last written and the
    ``resourceVersion`` the API server gave it. A watch event with another resourceVersion means
    someone else changed (or deleted) the report, so it is written again on the next sync.
    """

    kube: Kube
    """Every read and write goes through it (the controller's, or one on a test's fake API)."""
    policy_name: str = "default"
    include_passes: bool = False
    max_results: int = DEFAULT_MAX_RESULTS
    available: bool | None = None  # None: not checked yet
    owner: Callable[[], Mapping[str, Any] | None] = lambda: None
    """The owner reference put on every report written (the installation's peering object, so
    uninstalling Airlock lets the garbage collector remove its reports); None: no owner."""
    present: set[str] = field(default_factory=set)  # namespaces holding our report
    _written: dict[str, tuple[str, str]] = field(default_factory=dict)
    _retry: set[str] = field(default_factory=set)

    # -- the watch -----------------------------------------------------------------------------

    def observe(self, obj: Mapping[str, Any]) -> bool:
        """A report named ``airlock`` was seen; True when it must be checked again."""
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, Mapping) else {}
        labels = meta.get("labels") or {}
        ns = str(meta.get("namespace") or "")
        if not ns or labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
            return False  # not ours: never touched
        self.present.add(ns)
        rv = str(meta.get("resourceVersion") or "")
        written = self._written.get(ns)
        if written is not None and written[1] == rv:
            return False  # our own write coming back
        if written is not None and written[0] == report_digest(obj):
            self._written[ns] = (written[0], rv)
            return False
        self._written.pop(ns, None)
        self._retry.add(ns)
        return True

    def forget(self, namespace: str) -> bool:
        """Our report in ``namespace`` was deleted (by us or someone else)."""
        self.present.discard(namespace)
        if self._written.pop(namespace, None) is not None:
            self._retry.add(namespace)
            return True
        return False

    # -- writing -------------------------------------------------------------------------------

    async def check_available(self) -> bool:
        """Whether the PolicyReport CRD serves v1alpha2; logs once when that changes.

        A LIST by name rather than a GET: kopf's CRD scanning already needs ``list`` on
        CustomResourceDefinitions, so this needs no extra permission.
        """
        try:
            listing = await self.kube.call(
                self.kube.custom.list_cluster_custom_object,
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                field_selector=f"metadata.name={CRD_NAME}",
            )
        except KubeError as exc:
            if exc.status is None:  # no answer: as before
                return bool(self.available)
            # cannot tell (RBAC, API server trouble): try writing, the writes will say
            return self._set_available(True) if self.available is None else self.available
        items = listing.get("items", []) if isinstance(listing, Mapping) else []
        served = any(
            v.get("name") == VERSION and v.get("served")
            for crd in items
            if isinstance(crd, Mapping)
            for v in crd.get("spec", {}).get("versions", [])
        )
        return self._set_available(served)

    def _set_available(self, value: bool) -> bool:
        if value != self.available:
            if value:
                _log.info("PolicyReport CRD (%s/%s) found: writing PolicyReports", GROUP, VERSION)
            else:
                _log.warning(
                    "PolicyReport CRD (%s, version %s) is not installed: PolicyReports are "
                    "skipped (kubectl apply -f manifests/crds/wgpolicyk8s.io_policyreports.yaml)",
                    CRD_NAME,
                    VERSION,
                )
        self.available = value
        return value

    async def sync(
        self,
        namespaces: Iterable[str],
        results_of: Callable[[str], list[AuditedWorkload]],
        now: datetime,
    ) -> int:
        """Bring the reports of ``namespaces`` (and any failed earlier) up to date.

        Returns the number of writes (creates, replaces, deletes).
        """
        if not self.available:
            return 0
        todo = sorted(set(namespaces) | self._retry)
        self._retry = set()
        writes = 0
        for ns in todo:
            report = build_report(
                ns,
                results_of(ns),
                self.policy_name,
                now,
                include_passes=self.include_passes,
                max_results=self.max_results,
            )
            try:
                if not report["results"]:
                    if ns in self.present or ns in self._written:
                        await self._delete(ns)
                        writes += 1
                    continue
                digest = report_digest(report)
                written = self._written.get(ns)
                if written is not None and written[0] == digest:
                    continue
                await self._write(ns, report, digest)
                writes += 1
            except KubeError as exc:
                if exc.status == 404 and not await self.check_available():
                    return writes  # the CRD went away; logged by check_available
                if exc.status in (403, 404):
                    # the namespace is gone or terminating: its workloads go with it
                    _log.debug("PolicyReport %s/%s: HTTP %s", ns, REPORT_NAME, exc.status)
                    continue
                _log.warning("PolicyReport %s/%s: write failed: %s", ns, REPORT_NAME, exc)
                self._retry.add(ns)
        return writes

    async def _write(self, ns: str, report: dict[str, Any], digest: str) -> None:
        owner = self.owner()
        if owner is not None:
            report = {**report, "metadata": {**report["metadata"], "ownerReferences": [owner]}}
        kube = self.kube
        try:
            result = await kube.call(
                kube.custom.create_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, report
            )
        except KubeError as exc:
            if exc.status != 409:
                raise
            current = await kube.call(
                kube.custom.get_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, REPORT_NAME
            )
            labels = current.get("metadata", {}).get("labels") or {}
            if labels.get(MANAGED_BY_LABEL) != MANAGED_BY:
                _log.warning(
                    "PolicyReport %s/%s exists and is not managed by Airlock: left alone",
                    ns,
                    REPORT_NAME,
                )
                return
            body = dict(report)
            body["metadata"] = {
                **report["metadata"],
                "resourceVersion": current["metadata"]["resourceVersion"],
            }
            result = await kube.call(
                kube.custom.replace_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                REPORT_NAME,
                body,
            )
        rv = str((result or {}).get("metadata", {}).get("resourceVersion") or "")
        self._written[ns] = (digest, rv)
        self.present.add(ns)

    async def _delete(self, ns: str) -> None:
        try:
            await self.kube.call(
                self.kube.custom.delete_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                REPORT_NAME,
            )
        except KubeError as exc:
            if exc.status != 404:
                raise
        self._written.pop(ns, None)
        self.present.discard(ns)
