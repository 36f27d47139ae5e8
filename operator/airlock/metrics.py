"""Every Prometheus metric Airlock exports, defined once, in one registry.

Names and labels are part of the interface (dashboards, alerts and the chart's PrometheusRule read
them), so they live here and nowhere else; the webhook, the controller and the audit only call
``.labels(...)`` on these objects. They are registered in :data:`REGISTRY`, not in
prometheus_client's global default registry, so the metrics port shows only ``airlock_*`` series
and tests can read exact values without the process collector noise.

No label ever holds a secret, an image digest, a pod name or free text: label values come from
bounded sets (rule ids, environment names declared by the policy, API kinds the webhook
configuration routes to us, namespaces, exception names).

This module is layer 1: it imports prometheus_client and nothing else of the project. Serving the
registry over HTTP is :mod:`airlock.metrics_http`'s job, for the webhook and the controller.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = [
    "ADMISSION_DURATION",
    "ADMISSION_REQUESTS",
    "AUDIT_DURATION",
    "AUDIT_LAST_SUCCESS",
    "AUDIT_VIOLATIONS",
    "AUDIT_WORKLOADS",
    "COMPLIANCE_RATIO",
    "CONTENT_TYPE",
    "EXCEPTIONS",
    "EXCEPTION_EXPIRY",
    "POLICY_INFO",
    "POLICY_LOAD_ERRORS",
    "REGISTRY",
    "REGISTRY_CACHE_HITS",
    "REGISTRY_FAILURES",
    "REGISTRY_LOOKUPS",
    "REGISTRY_LOOKUP_DURATION",
    "REMEDIATION_DURATION",
    "RULE_RESULTS",
    "WEBHOOK_CERTIFICATE_EXPIRY",
    "exposition",
    "show_policy",
]

REGISTRY: Final = CollectorRegistry(auto_describe=True)

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# Admission latency is dominated by the engine (≈0.1 ms for a pod) and JSON (≈0.1–1 ms for
# 5–50 KB reviews); the API server's timeout is seconds. Buckets start at 0.25 ms so the
# interesting part of the distribution is not all in the first bucket.
_ADMISSION_BUCKETS: Final = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

# Remediation is measured in hours to weeks: from the audit first seeing a violation to the audit
# no longer seeing it.
_REMEDIATION_BUCKETS: Final = (
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86400.0,
    3 * 86400.0,
    7 * 86400.0,
    14 * 86400.0,
    30 * 86400.0,
    90 * 86400.0,
)

# --- admission (webhook) ------------------------------------------------------------------------

ADMISSION_REQUESTS: Final = Counter(
    "airlock_admission_requests_total",
    "AdmissionReview requests answered, by the requested kind, operation and decision "
    "(allowed, denied, warned, mutated, error).",
    ["kind", "operation", "decision", "environment"],
    registry=REGISTRY,
)

ADMISSION_DURATION: Final = Histogram(
    "airlock_admission_duration_seconds",
    "Time to answer one AdmissionReview, from parsed request to encoded response.",
    ["kind", "operation"],
    buckets=_ADMISSION_BUCKETS,
    registry=REGISTRY,
)

RULE_RESULTS: Final = Counter(
    "airlock_rule_results_total",
    "Rule results: result=fail for a failing rule, result=exempted for one waived by a "
    "PolicyException; source=admission (webhook) or audit (background audit).",
    ["rule", "environment", "result", "source"],
    registry=REGISTRY,
)

# --- background audit (controller) --------------------------------------------------------------

AUDIT_VIOLATIONS: Final = Gauge(
    "airlock_audit_violations",
    "Violations found by the last complete audit of running workloads.",
    ["rule", "environment", "namespace", "severity"],
    registry=REGISTRY,
)

AUDIT_WORKLOADS: Final = Gauge(
    "airlock_audit_workloads",
    "Workloads seen by the last complete audit, compliant (true) or not (false).",
    ["environment", "compliant"],
    registry=REGISTRY,
)

COMPLIANCE_RATIO: Final = Gauge(
    "airlock_compliance_ratio",
    "Share of audited workloads with no failing rule (0..1), per environment.",
    ["environment"],
    registry=REGISTRY,
)

AUDIT_LAST_SUCCESS: Final = Gauge(
    "airlock_audit_last_success_timestamp_seconds",
    "Unix time at which the last audit completed successfully.",
    registry=REGISTRY,
)

AUDIT_DURATION: Final = Gauge(
    "airlock_audit_duration_seconds",
    "Wall-clock duration of the last complete audit.",
    registry=REGISTRY,
)

REMEDIATION_DURATION: Final = Histogram(
    "airlock_remediation_duration_seconds",
    "Time from the audit first seeing a violation to seeing it resolved.",
    ["rule", "environment"],
    buckets=_REMEDIATION_BUCKETS,
    registry=REGISTRY,
)

# --- policy and exceptions ----------------------------------------------------------------------

EXCEPTIONS: Final = Gauge(
    "airlock_exceptions",
    "PolicyExceptions by state (Active, PendingApproval, Expired, Invalid).",
    ["state"],
    registry=REGISTRY,
)

EXCEPTION_EXPIRY: Final = Gauge(
    "airlock_exception_expiry_timestamp_seconds",
    "Unix time at which a PolicyException expires.",
    ["namespace", "name"],
    registry=REGISTRY,
)

POLICY_INFO: Final = Gauge(
    "airlock_policy_info",
    "The BaselinePolicy in force (value 1), with its name and metadata.generation.",
    ["policy", "generation"],
    registry=REGISTRY,
)

POLICY_LOAD_ERRORS: Final = Counter(
    "airlock_policy_load_errors_total",
    "BaselinePolicy versions that failed validation; the last valid policy stayed in force.",
    registry=REGISTRY,
)

# --- container registries (webhook: tag resolution and signatures) ------------------------------
# ``registry`` is a host the policy names (registries, imageSignatures, allowedRegistries) or
# "other": image references are user input, so raw hosts would let anyone mint label values.
# ``lookup`` is "digest" (a tag resolved) or "signature" (a signature fetched and checked).

REGISTRY_LOOKUPS: Final = Counter(
    "airlock_registry_lookups_total",
    "Registry lookups asked for at admission (answered from the cache or not), per registry.",
    ["registry", "lookup"],
    registry=REGISTRY,
)

REGISTRY_CACHE_HITS: Final = Counter(
    "airlock_registry_cache_hits_total",
    "Registry lookups answered from the webhook's cache (a cached failure counts too).",
    ["registry", "lookup"],
    registry=REGISTRY,
)

REGISTRY_FAILURES: Final = Counter(
    "airlock_registry_failures_total",
    "Registry lookups that failed, by reason (timeout, unreachable, tls, unauthorized, "
    "not-found, protocol); the object was admitted unpinned or its signature unverified.",
    ["registry", "lookup", "reason"],
    registry=REGISTRY,
)

REGISTRY_LOOKUP_DURATION: Final = Histogram(
    "airlock_registry_lookup_duration_seconds",
    "Time of one registry lookup that went to the network (token, manifest, signature).",
    ["registry", "lookup"],
    buckets=_ADMISSION_BUCKETS,
    registry=REGISTRY,
)

# --- certificates -------------------------------------------------------------------------------

WEBHOOK_CERTIFICATE_EXPIRY: Final = Gauge(
    "airlock_webhook_certificate_expiry_timestamp_seconds",
    "Unix time at which the webhook's serving certificate expires (notAfter).",
    registry=REGISTRY,
)


def show_policy(name: str, generation: int | None) -> None:
    """``airlock_policy_info``: the generation of ``name`` in force, or absent when none is."""
    POLICY_INFO.clear()
    if generation is not None:
        POLICY_INFO.labels(name, str(generation)).set(1)


def exposition() -> bytes:
    """The registry in Prometheus text format, for the metrics endpoint."""
    return generate_latest(REGISTRY)
