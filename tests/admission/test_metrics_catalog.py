"""airlock.metrics defines exactly the metrics of DESIGN.md, with their labels, in one registry."""

from __future__ import annotations

from airlock import metrics

EXPECTED = {
    # exposed sample name -> labels
    "airlock_admission_requests_total": ("kind", "operation", "decision", "environment"),
    "airlock_admission_duration_seconds": ("kind", "operation"),
    "airlock_rule_results_total": ("rule", "environment", "result", "source"),
    "airlock_audit_violations": ("rule", "environment", "namespace", "severity"),
    "airlock_audit_workloads": ("environment", "compliant"),
    "airlock_compliance_ratio": ("environment",),
    "airlock_audit_last_success_timestamp_seconds": (),
    "airlock_audit_duration_seconds": (),
    "airlock_remediation_duration_seconds": ("rule", "environment"),
    "airlock_exceptions": ("state",),
    "airlock_exception_expiry_timestamp_seconds": ("namespace", "name"),
    "airlock_policy_info": ("policy", "generation"),
    "airlock_policy_load_errors_total": (),
    "airlock_webhook_certificate_expiry_timestamp_seconds": (),
    "airlock_registry_lookups_total": ("registry", "lookup"),
    "airlock_registry_cache_hits_total": ("registry", "lookup"),
    "airlock_registry_failures_total": ("registry", "lookup", "reason"),
    "airlock_registry_lookup_duration_seconds": ("registry", "lookup"),
}


def test_every_designed_metric_is_defined_with_its_labels() -> None:
    found: dict[str, tuple[str, ...]] = {}
    for name in metrics.__all__:
        obj = getattr(metrics, name)
        if hasattr(obj, "_labelnames"):
            exposed = obj._name + ("_total" if obj._type == "counter" else "")
            found[exposed] = tuple(obj._labelnames)
    assert found == EXPECTED


def test_registry_holds_only_airlock_metrics() -> None:
    names = {m.name for m in metrics.REGISTRY.collect()}
    assert names
    assert all(n.startswith("airlock_") for n in names)


def test_admission_histogram_starts_at_a_quarter_millisecond() -> None:
    metrics.ADMISSION_DURATION.labels("Pod", "CREATE").observe(0.0001)
    text = metrics.exposition().decode()
    assert (
        'airlock_admission_duration_seconds_bucket{kind="Pod",le="0.00025",operation="CREATE"}'
        in (text)
    )


def test_the_admission_package_exports_what_the_cli_and_controller_use() -> None:
    from airlock import admission

    assert sorted(admission.__all__) == sorted(
        [
            "FOUR_EYES_MESSAGE",
            "AdmissionSettings",
            "ImageFacts",
            "MetricsSettings",
            "PullSecrets",
            "RegistrySettings",
            "ServerSettings",
            "StateStore",
            "SupplyChain",
            "TLSSettings",
            "WebhookServer",
            "WebhookSettings",
            "check_exception",
            "exception_patch",
            "handle_mutate",
            "handle_validate",
            "render_webhook_configurations",
            "run_webhook",
            "to_yaml",
            "write_webhook_configurations",
        ]
    )
    for name in admission.__all__:
        assert getattr(admission, name) is not None
