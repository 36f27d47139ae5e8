"""The Helm chart, rendered with the real helm binary (no cluster): lint, schema, the webhooks it
produces against airlock.admission.webhookconfig, names that must agree across objects, and
Airlock's own baseline applied to Airlock's own pods.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from airlock.admission.webhookconfig import WORKLOAD_RULES, render_webhook_configurations
from airlock.cli import build_parser
from airlock.controller import isolation as isolation_mod
from airlock.controller import reports
from airlock.controller.certs import add_cert_arguments, cert_settings_from_args
from airlock.controller.settings import add_arguments, settings_from_args

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "airlock"
AIRLOCK = Path(sys.executable).parent / "airlock"
DIGEST = "sha256:" + "0123456789abcdef" * 4
NS = "airlock-system"


def _load(name: str, path: Path) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# helm renders the chart: built with the cluster binaries, so `make test-unit` (offline, no
# binaries) leaves these out; `make test` runs them
pytestmark = pytest.mark.chart

render_install = _load("airlock_render_install", REPO / "charts" / "render_install.py")
localcluster = _load("airlock_hack_localcluster", REPO / "hack" / "localcluster.py")


@pytest.fixture(scope="module")
def helm() -> str:
    # Instant when `make cluster-bins` has run; otherwise builds helm (and the control plane).
    return str(localcluster.ensure_binaries() / "helm")


def _helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm, *args], check=False, capture_output=True, text=True)


def render(
    helm: str,
    *sets: str,
    release: str = "airlock",
    namespace: str = NS,
    strings: tuple[str, ...] = (),
) -> list[Any]:
    args = ["template", release, str(CHART), "--namespace", namespace]
    for s in sets:
        args += ["--set", s]
    for s in strings:
        args += ["--set-string", s]
    result = _helm(helm, *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def one(docs: list[Any], kind: str, name: str | None = None) -> Any:
    found = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod_specs(docs: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job"):
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


# --------------------------------------------------------------------------- lint and schema


def test_helm_lint_is_clean(helm: str) -> None:
    result = _helm(helm, "lint", "--strict", str(CHART))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["webhooks.pods.failurePolicy=Sometimes"], "/webhooks/pods/failurePolicy"),
        (["webhooks.workloads.timeoutSeconds=60"], "/webhooks/workloads/timeoutSeconds"),
        (["webhok.replicas=3"], "additional properties 'webhok' not allowed"),
        (["image.digest=latest"], "/image/digest"),
        (["certificates.mode=vault"], "/certificates/mode"),
        (["excludedNamespaces={Kube_System}"], "/excludedNamespaces/0"),
        (["webhook.replicas=0"], "/webhook/replicas"),
        (["policy.spec.environments[0].mode=strict"], "/policy/spec/environments/0/mode"),
        (
            ["certificates.validityDays=200"],
            "certificates.caRenewBeforeDays (122) must be longer than "
            "certificates.validityDays (200)",
        ),
        (["webhook.pdb.minAvailable=2"], "webhook.pdb.minAvailable (2) must be below"),
        (
            ["policy.spec.excludedNamespaces={a}"],
            "set the top-level excludedNamespaces instead of policy.spec.excludedNamespaces",
        ),
    ],
)
def test_bad_values_fail_with_a_message_naming_the_value(
    helm: str, values: list[str], message: str
) -> None:
    args = ["template", "airlock", str(CHART), "--namespace", NS]
    for v in values:
        args += ["--set", v]
    result = _helm(helm, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Error:" in result.stderr.splitlines()[0]


# --------------------------------------------------------------------------- the webhooks


def _webhook_configs(docs: list[Any]) -> list[Any]:
    """Validating first, then Mutating: webhookconfig's order (helm prints Mutating first)."""
    order = ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration")
    return sorted((d for d in docs if d["kind"] in order), key=lambda d: order.index(d["kind"]))


def test_default_webhooks_are_exactly_what_webhookconfig_renders(helm: str) -> None:
    chart = _webhook_configs(render(helm))
    expected = render_webhook_configurations(
        name="airlock",
        service=(NS, "airlock-webhook", 443),
        airlock_namespace=NS,
        excluded_namespaces=("kube-system", "kube-public", "kube-node-lease"),
    )
    assert [c["kind"] for c in chart] == [e["kind"] for e in expected]
    for got, want in zip(chart, expected, strict=True):
        assert got["metadata"]["name"] == want["metadata"]["name"] == "airlock"
        assert got["metadata"]["labels"].items() >= want["metadata"]["labels"].items()
        assert got["webhooks"] == want["webhooks"]


def test_per_webhook_values_match_webhookconfig_overrides(helm: str) -> None:
    docs = render(
        helm,
        "webhooks.pods.failurePolicy=Ignore",
        "webhooks.pods.timeoutSeconds=3",
        "webhooks.workloads.failurePolicy=Fail",
        "webhooks.exceptionsMutate.timeoutSeconds=10",
        "excludedNamespaces={kube-system,gpu-operator}",
        release="gate",
        namespace="security",
    )
    expected = render_webhook_configurations(
        name="gate-airlock",
        service=("security", "gate-airlock-webhook", 443),
        airlock_namespace="security",
        excluded_namespaces=("kube-system", "gpu-operator"),
        failure_policies={
            "pods.validate.airlock.dev": "Ignore",
            "workloads.validate.airlock.dev": "Fail",
        },
        timeouts={"pods.validate.airlock.dev": 3, "exceptions.mutate.airlock.dev": 10},
    )
    chart = _webhook_configs(docs)
    assert [c["webhooks"] for c in chart] == [e["webhooks"] for e in expected]
    pods = chart[0]["webhooks"][0]
    assert pods["namespaceSelector"]["matchExpressions"][0]["values"] == [
        "gpu-operator",
        "kube-system",
        "security",
    ]


def test_opt_in_selector_ca_bundle_and_disabled_groups(helm: str) -> None:
    bundle = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    docs = render(
        helm,
        f"webhooks.caBundle={bundle}",
        "webhooks.configmaps.enabled=false",
        "webhooks.podsMutate.enabled=false",
        "webhooks.workloadsMutate.enabled=false",
        "webhooks.exceptionsMutate.enabled=false",
        strings=("webhooks.namespaceSelector.matchLabels.airlock\\.dev/enabled=true",),
    )
    configs = _webhook_configs(docs)
    assert [c["kind"] for c in configs] == ["ValidatingWebhookConfiguration"]
    hooks = configs[0]["webhooks"]
    assert [h["name"] for h in hooks] == [
        "pods.validate.airlock.dev",
        "workloads.validate.airlock.dev",
        "policies.validate.airlock.dev",
        "rbac.validate.airlock.dev",
    ]
    for h in hooks:
        assert h["namespaceSelector"]["matchLabels"] == {"airlock.dev/enabled": "true"}
        assert h["namespaceSelector"]["matchExpressions"][0]["operator"] == "NotIn"
        assert h["clientConfig"]["caBundle"] == bundle


def test_workload_kinds_match_webhookconfig_and_controller_only_reads_them(helm: str) -> None:
    docs = render(helm)
    validating = one(docs, "ValidatingWebhookConfiguration")
    workloads = next(h for h in validating["webhooks"] if h["name"].startswith("workloads."))
    chart_rules = [(tuple(r["apiGroups"]), tuple(r["resources"])) for r in workloads["rules"]]
    assert chart_rules == list(WORKLOAD_RULES)
    role = one(docs, "ClusterRole", "airlock-controller")
    for groups, resources in WORKLOAD_RULES:
        matching = [
            r
            for r in role["rules"]
            if r["apiGroups"] == list(groups) and set(resources) <= set(r["resources"])
        ]
        assert matching, f"controller cannot read {groups} {resources}"
        assert all(r["verbs"] == ["get", "list", "watch"] for r in matching)


# --------------------------------------------------------------------------- names and flags


def _args(deployment: Any) -> list[str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return list(container["args"])


def test_controller_flags_parse_and_name_the_objects_the_chart_creates(helm: str) -> None:
    docs = render(helm)
    args = _args(one(docs, "Deployment", "airlock-controller"))
    assert args[0] == "controller"
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    add_cert_arguments(parser)
    parsed = parser.parse_args(args[1:])
    settings = settings_from_args(parsed)
    certs = cert_settings_from_args(parsed, namespace=settings.namespace)
    assert settings.namespace == NS
    assert settings.peering_name == one(docs, "ClusterKopfPeering")["metadata"]["name"]
    assert settings.policy_name == one(docs, "BaselinePolicy")["metadata"]["name"] == "default"
    assert certs.mode == "self-signed"
    secret = one(docs, "Secret", "airlock-webhook-tls")
    assert certs.secret_name == secret["metadata"]["name"] == "airlock-webhook-tls"
    assert "data" not in secret  # the controller fills it; helm never overwrites it
    assert one(docs, "Role")["rules"][0]["resourceNames"] == [certs.secret_name]
    assert certs.service_name == one(docs, "Service", "airlock-webhook")["metadata"]["name"]
    for config in _webhook_configs(docs):
        assert config["metadata"]["name"] in certs.webhook_configurations
        for hook in config["webhooks"]:
            assert hook["clientConfig"]["service"]["name"] == certs.service_name
    webhook_access = [
        r
        for r in one(docs, "ClusterRole", "airlock-controller")["rules"]
        if r["apiGroups"] == ["admissionregistration.k8s.io"]
    ]
    assert webhook_access == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
            "resourceNames": list(certs.webhook_configurations),
            "verbs": ["get", "patch"],
        }
    ]


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("Deployment", "airlock-webhook"),
        ("Deployment", "airlock-controller"),
    ],
)
def test_every_container_command_line_is_accepted_by_the_cli(
    helm: str, kind: str, name: str
) -> None:
    args = _args(one(render(helm), kind, name))
    parsed = build_parser().parse_args(args)
    assert parsed.command == args[0]


def test_service_routes_to_the_https_port_and_probes_use_it(helm: str) -> None:
    docs = render(helm, "webhook.port=9443")
    service = one(docs, "Service", "airlock-webhook")
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "targetPort": "https", "protocol": "TCP"}
    ]
    container = one(docs, "Deployment", "airlock-webhook")["spec"]["template"]["spec"][
        "containers"
    ][0]
    assert {"name": "https", "containerPort": 9443, "protocol": "TCP"} in container["ports"]
    assert "--port=9443" in container["args"]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}


# --------------------------------------------------------------------------- safe defaults


def test_webhook_is_highly_available_by_default(helm: str) -> None:
    docs = render(helm, "webhook.priorityClassName=system-cluster-critical")
    deployment = one(docs, "Deployment", "airlock-webhook")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    spec = deployment["spec"]["template"]["spec"]
    assert spec["priorityClassName"] == "system-cluster-critical"
    term = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_api_token_is_explicit_short_lived_and_only_where_the_api_is_called(helm: str) -> None:
    docs = render(helm)
    for what, spec in pod_specs(docs):
        assert spec["automountServiceAccountToken"] is False, what
        volume = next(v for v in spec["volumes"] if v["name"] == "kube-api-access")
        token = volume["projected"]["sources"][0]["serviceAccountToken"]
        assert token["expirationSeconds"] <= 3607, what
        mounts = spec["containers"][0]["volumeMounts"]
        assert {
            "name": "kube-api-access",
            "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount",
            "readOnly": True,
        } in mounts, what
    for sa in (d for d in docs if d["kind"] == "ServiceAccount"):
        assert sa["automountServiceAccountToken"] is False


def test_webhook_pods_never_see_the_ca_key(helm: str) -> None:
    spec = one(render(helm), "Deployment", "airlock-webhook")["spec"]["template"]["spec"]
    tls = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert [i["key"] for i in tls["secret"]["items"]] == ["tls.crt", "tls.key"]
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "tls")
    assert "subPath" not in mount  # subPath mounts never see a rotated Secret


FINGERPRINT_KEY_FILE = "/etc/airlock/fingerprint/key"


def _fingerprint_key_wiring(deployment: Any) -> tuple[list[str], list[Any], list[Any]]:
    spec = deployment["spec"]["template"]["spec"]
    flags = [a for a in _args(deployment) if a.startswith("--fingerprint-key-file")]
    volumes = [v for v in spec["volumes"] if v["name"] == "fingerprint-key"]
    mounts = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "fingerprint-key"]
    return flags, volumes, mounts


def test_fingerprint_key_is_one_random_secret_mounted_read_only_into_both_components(
    helm: str,
) -> None:
    docs = render(helm)
    secret = one(docs, "Secret", "airlock-fingerprint-key")
    assert secret["metadata"]["namespace"] == NS
    key = base64.b64decode(secret["data"]["key"])
    assert len(key) == 64
    assert key.isalnum()
    # helm template cannot look the Secret up, so each render draws a new key; an install keeps
    # the one it has (the template reads it back with `lookup` before drawing)
    again = one(render(helm), "Secret", "airlock-fingerprint-key")
    assert again["data"]["key"] != secret["data"]["key"]
    template = (CHART / "templates" / "fingerprint-key.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    for name in ("airlock-webhook", "airlock-controller"):
        deployment = one(docs, "Deployment", name)
        flags, volumes, mounts = _fingerprint_key_wiring(deployment)
        assert flags == [f"--fingerprint-key-file={FINGERPRINT_KEY_FILE}"], name
        assert volumes == [
            {
                "name": "fingerprint-key",
                "secret": {
                    "secretName": "airlock-fingerprint-key",
                    "defaultMode": 0o440,
                    "items": [{"key": "key", "path": "key"}],
                },
            }
        ], name
        assert mounts == [
            {"name": "fingerprint-key", "mountPath": "/etc/airlock/fingerprint", "readOnly": True}
        ], name
        spec = deployment["spec"]["template"]["spec"]
        assert spec["securityContext"]["fsGroup"] == spec["securityContext"]["runAsGroup"]
    # the flag parses on both command lines
    webhook_args = _args(one(docs, "Deployment", "airlock-webhook"))
    assert build_parser().parse_args(webhook_args).fingerprint_key_file == Path(
        FINGERPRINT_KEY_FILE
    )


def test_fingerprint_key_from_an_existing_secret_or_none(helm: str) -> None:
    docs = render(helm, "fingerprintKey.existingSecret=corp-airlock-key")
    assert not [d for d in docs if d["kind"] == "Secret" and "fingerprint" in d["metadata"]["name"]]
    for name in ("airlock-webhook", "airlock-controller"):
        flags, volumes, mounts = _fingerprint_key_wiring(one(docs, "Deployment", name))
        assert flags
        assert mounts
        assert volumes[0]["secret"]["secretName"] == "corp-airlock-key"
    docs = render(helm, "fingerprintKey.create=false")
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == ["airlock-webhook-tls"]
    for name in ("airlock-webhook", "airlock-controller"):
        assert _fingerprint_key_wiring(one(docs, "Deployment", name)) == ([], [], [])


def test_webhook_rbac_is_read_only(helm: str) -> None:
    role = one(render(helm), "ClusterRole", "airlock-webhook")
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs <= {"get", "list", "watch"}
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert "secrets" not in resources


def test_reading_pull_secrets_is_an_opt_in_get_only(helm: str) -> None:
    default = one(render(helm), "Deployment", "airlock-webhook")
    assert "--read-pull-secrets" not in default["spec"]["template"]["spec"]["containers"][0]["args"]
    objs = render(helm, "webhook.readPullSecrets=true")
    args = one(objs, "Deployment", "airlock-webhook")["spec"]["template"]["spec"]["containers"][0]
    assert "--read-pull-secrets" in args["args"]
    role = one(objs, "ClusterRole", "airlock-webhook")
    secrets = [r for r in role["rules"] if "secrets" in r["resources"]]
    assert secrets == [
        {"apiGroups": [""], "resources": ["secrets", "serviceaccounts"], "verbs": ["get"]}
    ]


@pytest.fixture
def scan_policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    # The built-in policy (every rule enforced) without the exclusion of airlock-system, which
    # would otherwise exempt exactly the pods under test.
    path.write_text(
        "apiVersion: airlock.dev/v1alpha1\nkind: BaselinePolicy\nmetadata: {name: t}\n"
        "spec: {excludedNamespaces: []}\n",
        encoding="utf-8",
    )
    return path


def _scan_chart(helm: str, policy: Path, *sets: str) -> tuple[int, dict[str, Any]]:
    args = ["template", "airlock", str(CHART), "--namespace", NS]
    for s in sets:
        args += ["--set", s]
    rendered = _helm(helm, *args)
    assert rendered.returncode == 0, rendered.stderr
    result = subprocess.run(
        [str(AIRLOCK), "scan", "-", "--policy", str(policy), "--fail-on", "audit", "-o", "json"],
        input=rendered.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, json.loads(result.stdout)


def test_airlock_passes_its_own_baseline(helm: str, scan_policy: Path) -> None:
    code, report = _scan_chart(
        helm,
        scan_policy,
        f"image.digest={DIGEST}",
        "metrics.dashboard.enabled=true",
        "networkPolicy.enabled=true",
    )
    assert report["findings"] == []
    assert code == 0
    summary = report["summary"]
    assert summary["excluded"] == 0
    assert summary["objects"] >= 20
    assert summary["errors"] == []


def test_only_the_digest_is_missing_until_a_release_sets_it(helm: str, scan_policy: Path) -> None:
    code, report = _scan_chart(helm, scan_policy)
    assert code == 1
    found = sorted((f["rule"], f["path"]) for f in report["findings"])
    # the webhook and the controller Deployments (the chart has no hook Job)
    assert found == [("image-digest-missing", "spec.template.spec.containers[0].image")] * 2


# --------------------------------------------------------------------------- cert-manager


def test_cert_manager_mode_hands_certificates_to_cert_manager(helm: str) -> None:
    docs = render(helm, "certificates.mode=certManager")
    for config in _webhook_configs(docs):
        assert config["metadata"]["annotations"] == {
            "cert-manager.io/inject-ca-from": f"{NS}/airlock-webhook"
        }
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == [
        "airlock-fingerprint-key"
    ]
    serving = one(docs, "Certificate", "airlock-webhook")
    assert serving["spec"]["secretName"] == "airlock-webhook-tls"
    assert serving["spec"]["dnsNames"][0] == f"airlock-webhook.{NS}.svc"
    assert serving["spec"]["duration"] == "2160h"
    assert serving["spec"]["renewBefore"] == "720h"
    assert "--certificates=external" in _args(one(docs, "Deployment", "airlock-controller"))
    own_issuer = render(
        helm,
        "certificates.mode=certManager",
        "certManager.issuerRef.name=corp-ca",
        "certManager.issuerRef.kind=ClusterIssuer",
    )
    assert not [d for d in own_issuer if d["kind"] == "Issuer"]
    assert one(own_issuer, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
    }


# --------------------------------------------------------------------------- monitoring, policy


def test_monitoring_objects(helm: str) -> None:
    docs = render(
        helm,
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.dashboard.enabled=true",
        "metrics.dashboard.namespace=grafana",
    )
    dashboard = one(docs, "ConfigMap")
    assert dashboard["metadata"]["namespace"] == "grafana"
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["airlock.json"]) == json.loads(
        (CHART / "files" / "dashboard.json").read_text(encoding="utf-8")
    )
    rule = one(docs, "PrometheusRule")
    source = yaml.safe_load((CHART / "files" / "prometheusrule.yaml").read_text(encoding="utf-8"))
    assert rule["spec"] == source["spec"]  # Prometheus' {{ $labels }} survive helm untouched
    monitor = one(docs, "ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    scraped = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Service" and selector.items() <= d["metadata"]["labels"].items()
    ]
    assert sorted(scraped) == ["airlock-controller-metrics", "airlock-webhook-metrics"]


def test_default_policy_starts_in_audit_and_excludes_the_release_namespace(helm: str) -> None:
    policy = one(render(helm, namespace="sec"), "BaselinePolicy")
    assert policy["metadata"]["name"] == "default"
    assert policy["spec"]["environments"] == [{"name": "default", "mode": "audit"}]
    assert policy["spec"]["excludedNamespaces"] == [
        "kube-node-lease",
        "kube-public",
        "kube-system",
        "sec",
    ]
    assert not [d for d in render(helm, "policy.create=false") if d["kind"] == "BaselinePolicy"]


def test_no_helm_hooks_so_uninstall_cannot_be_blocked(helm: str) -> None:
    """A pre-delete hook that cannot run (image missing, no node) makes `helm uninstall` fail
    and leaves the fail-closed Pod webhook behind; without hooks uninstall is one pass of plain
    deletions, the webhook configurations among them."""
    for values in ((), ("certificates.mode=certManager",), ("networkPolicy.enabled=true",)):
        docs = render(helm, *values)
        hooks = [
            (d["kind"], d["metadata"]["name"])
            for d in docs
            if "helm.sh/hook" in (d["metadata"].get("annotations") or {})
        ]
        assert hooks == [], values
        kinds = {d["kind"] for d in docs}
        assert {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"} <= kinds
        assert "Job" not in kinds


@pytest.mark.parametrize("component", ["webhook", "controller"])
def test_pods_get_no_service_link_variables(helm: str, component: str) -> None:
    """The kubelet would inject AIRLOCK_WEBHOOK_PORT=tcp://… for the Service airlock-webhook."""
    pod = one(render(helm), "Deployment", f"airlock-{component}")["spec"]["template"]["spec"]
    assert pod["enableServiceLinks"] is False


def test_the_chart_owns_the_peering_object_and_the_controller_never_creates_it(
    helm: str,
) -> None:
    docs = render(helm)
    assert one(docs, "ClusterKopfPeering", "airlock")
    args = _args(one(docs, "Deployment", "airlock-controller"))
    assert "--no-create-peering" in args
    assert "--peering-name=airlock" in args
    peering = [
        r
        for r in one(docs, "ClusterRole", "airlock-controller")["rules"]
        if r["apiGroups"] == ["kopf.dev"]
    ]
    assert peering == [
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["kopf.dev"],
            "resources": ["clusterkopfpeerings"],
            "resourceNames": ["airlock"],
            "verbs": ["patch"],
        },
    ]


# --------------------------------------------------------------------------- copies in step


def test_chart_copies_and_install_yaml_are_current(helm: str) -> None:
    stale = render_install.stale(helm)
    assert stale == [], "run: python charts/render_install.py"


def test_chart_crds_are_the_manifests_crds() -> None:
    chart = sorted(p.name for p in (CHART / "crds").glob("*"))
    source = sorted(p.name for p in (REPO / "manifests" / "crds").glob("*"))
    assert chart == source
    for name in chart:
        assert (CHART / "crds" / name).read_bytes() == (
            REPO / "manifests" / "crds" / name
        ).read_bytes(), name


def test_install_yaml_has_no_hooks_and_creates_its_namespace() -> None:
    docs = [d for d in yaml.safe_load_all(render_install.INSTALL.read_text()) if d]
    assert docs[0] == {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NS,
            "labels": {"app.kubernetes.io/name": "airlock", "app.kubernetes.io/part-of": "airlock"},
        },
    }
    assert not [d for d in docs if d["kind"] == "Job"]
    kinds = [d["kind"] for d in docs]
    assert kinds.index("CustomResourceDefinition") < kinds.index("BaselinePolicy")
    crds = [
        d
        for p in sorted((CHART / "crds").glob("*.yaml"))
        for d in yaml.safe_load_all(p.read_text(encoding="utf-8"))
        if d
    ]
    assert kinds.count("CustomResourceDefinition") == len(crds) >= 4


def test_a_terminating_webhook_pauses_then_drains_within_its_grace_period(helm: str) -> None:
    pod = one(render(helm), "Deployment", "airlock-webhook")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
    assert "--drain-seconds=5" in container["args"]
    assert pod["terminationGracePeriodSeconds"] >= 5 + 5 + 5 + 10
    off = one(render(helm, "webhook.preStopSeconds=0"), "Deployment", "airlock-webhook")
    assert "lifecycle" not in off["spec"]["template"]["spec"]["containers"][0]


def _permissions(role: Any) -> set[tuple[str, str, str, tuple[str, ...]]]:
    return {
        (group, resource, verb, tuple(rule.get("resourceNames", ())))
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


READS = {"get", "list", "watch"}


def test_every_write_permission_is_exactly_the_intended_one(helm: str) -> None:
    """What the pods may change, verb by verb: Airlock's own objects by name wherever RBAC can
    limit a verb by name (create cannot be), status of its own CRDs, and Events."""
    docs = render(helm)
    webhook = _permissions(one(docs, "ClusterRole", "airlock-webhook"))
    assert {verb for _, _, verb, _ in webhook} <= READS  # the webhook writes nothing
    controller = _permissions(one(docs, "ClusterRole", "airlock-controller"))
    writes = {p for p in controller if p[2] not in READS}
    own = ("airlock",)
    isolation = ("airlock-environment-isolation",)
    assert writes == {
        ("airlock.dev", "baselinepolicies/status", "patch", ()),
        ("airlock.dev", "baselinepolicies/status", "update", ()),
        ("airlock.dev", "policyexceptions/status", "patch", ()),
        ("airlock.dev", "policyexceptions/status", "update", ()),
        ("wgpolicyk8s.io", "policyreports", "create", ()),
        ("wgpolicyk8s.io", "policyreports", "update", own),
        ("wgpolicyk8s.io", "policyreports", "patch", own),
        ("wgpolicyk8s.io", "policyreports", "delete", own),
        ("networking.k8s.io", "networkpolicies", "create", ()),
        ("networking.k8s.io", "networkpolicies", "update", isolation),
        ("networking.k8s.io", "networkpolicies", "patch", isolation),
        ("networking.k8s.io", "networkpolicies", "delete", isolation),
        ("kopf.dev", "clusterkopfpeerings", "patch", own),
        ("", "events", "create", ()),
        ("", "events", "patch", ()),
        ("events.k8s.io", "events", "create", ()),
        ("events.k8s.io", "events", "patch", ()),
        ("admissionregistration.k8s.io", "validatingwebhookconfigurations", "patch", own),
        ("admissionregistration.k8s.io", "mutatingwebhookconfigurations", "patch", own),
    }
    # no Secret anywhere in the cluster: only the TLS Secret, in the release namespace
    assert not [p for p in controller if p[1] == "secrets"]
    role = one(docs, "Role", "airlock-controller")
    assert role["metadata"]["namespace"] == NS
    assert _permissions(role) == {
        ("", "secrets", "get", ("airlock-webhook-tls",)),
        ("", "secrets", "update", ("airlock-webhook-tls",)),
        ("", "secrets", "patch", ("airlock-webhook-tls",)),
        ("", "secrets", "create", ()),
    }
    # the names in RBAC are the names the code writes
    assert own == (reports.REPORT_NAME,)
    assert isolation == (isolation_mod.NETWORK_POLICY_NAME,)
