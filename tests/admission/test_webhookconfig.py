"""The rendered webhook configurations: routing, failure policies, exclusions, client config."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml
from airlock.admission import render_webhook_configurations, write_webhook_configurations
from airlock.workloads import SUPPORTED_KINDS

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _by_name(objs: list[dict]) -> dict[str, dict]:
    return {h["name"]: h for o in objs for h in o["webhooks"]}


def test_service_rendering_has_the_expected_groups_and_policies() -> None:
    objs = render_webhook_configurations(
        service=("airlock-system", "airlock-webhook", 443),
        ca_bundle=CA_PEM,
        airlock_namespace="airlock-system",
        excluded_namespaces=["kube-system", "kube-public"],
    )
    assert [o["kind"] for o in objs] == [
        "ValidatingWebhookConfiguration",
        "MutatingWebhookConfiguration",
    ]
    hooks = _by_name(objs)
    assert list(hooks) == [
        "pods.validate.airlock.dev",
        "workloads.validate.airlock.dev",
        "configmaps.validate.airlock.dev",
        "policies.validate.airlock.dev",
        "rbac.validate.airlock.dev",
        "pods.mutate.airlock.dev",
        "workloads.mutate.airlock.dev",
        "exceptions.mutate.airlock.dev",
    ]
    assert {n: h["failurePolicy"] for n, h in hooks.items()} == {
        "pods.validate.airlock.dev": "Fail",
        "workloads.validate.airlock.dev": "Ignore",
        "configmaps.validate.airlock.dev": "Ignore",
        "policies.validate.airlock.dev": "Ignore",
        "rbac.validate.airlock.dev": "Ignore",
        "pods.mutate.airlock.dev": "Ignore",
        "workloads.mutate.airlock.dev": "Ignore",
        "exceptions.mutate.airlock.dev": "Ignore",
    }
    pods = hooks["pods.validate.airlock.dev"]
    assert pods["timeoutSeconds"] == 5
    assert pods["rules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["*"],
            "resources": ["pods"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "*",
        }
    ]
    assert pods["clientConfig"] == {
        "service": {
            "namespace": "airlock-system",
            "name": "airlock-webhook",
            "path": "/validate",
            "port": 443,
        },
        "caBundle": base64.b64encode(CA_PEM).decode(),
    }
    assert hooks["pods.mutate.airlock.dev"]["rules"][0]["operations"] == ["CREATE"]
    assert hooks["pods.mutate.airlock.dev"]["rules"][1]["resources"] == ["pods/ephemeralcontainers"]
    assert hooks["pods.mutate.airlock.dev"]["rules"][1]["operations"] == ["UPDATE"]
    assert hooks["workloads.mutate.airlock.dev"]["rules"] == [
        {**rule, "operations": ["CREATE", "UPDATE"]}
        for rule in hooks["workloads.validate.airlock.dev"]["rules"]
    ]
    assert hooks["pods.mutate.airlock.dev"]["clientConfig"]["service"]["path"] == "/mutate"
    for name, hook in hooks.items():
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["matchPolicy"] == "Equivalent"
        assert hook["namespaceSelector"] == {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "NotIn",
                    "values": ["airlock-system", "kube-public", "kube-system"],
                }
            ]
        }
        assert ("reinvocationPolicy" in hook) == (".mutate." in name)


def test_workload_rules_cover_the_ai_kinds() -> None:
    hooks = _by_name(render_webhook_configurations(url="https://10.0.0.1:8443"))
    routed = {
        (group, resource)
        for rule in hooks["workloads.validate.airlock.dev"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    for pair in [
        ("apps", "deployments"),
        ("batch", "cronjobs"),
        ("", "podtemplates"),
        ("kubeflow.org", "pytorchjobs"),
        ("kubeflow.org", "notebooks"),
        ("trainer.kubeflow.org", "trainjobs"),
        ("jobset.x-k8s.io", "jobsets"),
        ("serving.kserve.io", "inferenceservices"),
        ("ray.io", "rayservices"),
        ("argoproj.io", "cronworkflows"),
        ("batch.volcano.sh", "jobs"),
    ]:
        assert pair in routed
    # every kind the engine discovers (except Pod, routed separately) has a route
    kinds_routed = {r.rstrip("s") for _, r in routed} | {"replicationcontroller", "podtemplate"}
    missing = {k for k in SUPPORTED_KINDS - {"Pod"} if k.lower() not in kinds_routed}
    assert missing == set()
    assert hooks["policies.validate.airlock.dev"]["rules"][0]["resources"] == [
        "baselinepolicies",
        "policyexceptions",
    ]


def test_url_client_config_and_overrides() -> None:
    hooks = _by_name(
        render_webhook_configurations(
            url="https://127.0.0.1:8443/",
            ca_bundle=CA_PEM,
            failure_policies={"workloads.validate.airlock.dev": "Fail"},
            timeouts={"pods.validate.airlock.dev": 2},
        )
    )
    assert hooks["pods.validate.airlock.dev"]["clientConfig"] == {
        "url": "https://127.0.0.1:8443/validate",
        "caBundle": base64.b64encode(CA_PEM).decode(),
    }
    assert hooks["pods.validate.airlock.dev"]["timeoutSeconds"] == 2
    assert hooks["workloads.validate.airlock.dev"]["failurePolicy"] == "Fail"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of service and url"),
        ({"url": "https://x", "service": ("a", "b", 443)}, "exactly one"),
        ({"url": "http://x"}, "https"),
        ({"url": "https://x", "timeouts": {"pods.validate.airlock.dev": 31}}, "between 1 and 30"),
        ({"url": "https://x", "failure_policies": {"nope": "Fail"}}, "unknown webhook names: nope"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render_webhook_configurations(**kwargs)


def test_written_yaml_round_trips(tmp_path: Path) -> None:
    out = tmp_path / "webhooks.yaml"
    write_webhook_configurations(out, service=("airlock-system", "airlock-webhook", 443))
    docs = list(yaml.safe_load_all(out.read_text()))
    assert docs == render_webhook_configurations(service=("airlock-system", "airlock-webhook", 443))
    assert "caBundle" not in docs[0]["webhooks"][0]["clientConfig"]
