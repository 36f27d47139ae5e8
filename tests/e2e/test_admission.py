"""Airlock's admission path end to end: a real kube-apiserver calls ``airlock webhook`` (a
subprocess, over real TLS) through the configurations ``airlock webhook-config`` renders.

What a user of the cluster sees is what is asserted: HTTP status, the API server's message, the
``Warning`` headers (kubectl's ``Warning:`` lines), the object read back, events of the
ReplicaSet that could not create its Pods, and the webhook's own metrics.

The module runs one webhook and one controller (module-scoped ``airlock``), a BaselinePolicy of
its own (unique name, passed to both with ``--policy-name``) and configurations of its own name,
so it never touches another module's objects. Each test makes fresh labelled namespaces and
waits until the webhook has seen their label (see ``make_ns``). Tests that change the policy
restore it and wait until the webhook runs the restored generation. The two tests that stop the
webhook restart it before they end (and sit last in the file).

Design choices worth knowing:

* The default environment is ``quarantine`` (enforce), not ``dev``: a namespace the webhook has
  not seen yet is judged there, so "the webhook knows this namespace's environment" can be
  observed with a dry-run, and no test passes by luck because an unknown namespace fell into
  the environment it expected.
* "Deployment admitted, its Pods denied" (item 3) uses the route the design gives workloads
  ``failurePolicy: Ignore`` for: the Deployment is created while the webhook is down (the
  workloads webhook is skipped, the Pod webhook fails closed), then the webhook comes back and
  kube-controller-manager's ReplicaSet retries and gets Airlock's denial. A per-kind policy
  difference does not exist, and a Deployment that passed the workloads webhook would have the
  same findings as its Pods.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import string
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from airlock.model import APPROVE_ANNOTATION, APPROVED_BY_ANNOTATION, CREATED_BY_ANNOTATION
from airlock.rules import RULE_INFO
from airlock_procs import Airlock, AirlockStartError, metric_value, poll_until
from e2e_rig import REPO_ROOT, E2ECluster, WebhookCA, message_of
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.e2e

T = TypeVar("T")

GROUP, VERSION = "airlock.dev", "v1alpha1"
ENV_LABEL = "airlock.dev/environment"
OWNER_LABEL = "airlock.dev/owner"
DIGEST = "@sha256:" + "9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b"
IMAGE = "registry.corp.example/prod/app:1.0" + DIGEST
POD_WEBHOOK = "pods.validate.airlock.dev"
WORKLOADS_WEBHOOK = "workloads.validate.airlock.dev"
WAIT_S = 20.0
POLICY_CHANGE_S = 10.0
# A fresh credential per run in the Hugging Face token format: nothing to recognise from a
# previous run's logs, and the assertion "never in any output" covers a value nobody wrote down.
SECRET = "hf_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(34))

BASE_POLICY: dict[str, Any] = {
    "environmentLabel": ENV_LABEL,
    "defaultEnvironment": "quarantine",
    "environments": [
        {
            "name": "dev",
            "mode": "warn",
            "allowedRegistries": ["registry.corp.example/"],
            "allowedStoragePrefixes": ["s3://models-dev/"],
        },
        {
            "name": "staging",
            "mode": "enforce",
            "allowedRegistries": ["registry.corp.example/"],
            "allowedStoragePrefixes": ["s3://models-staging/"],
        },
        {
            "name": "prod",
            "mode": "enforce",
            "allowedRegistries": ["registry.corp.example/prod/"],
            "allowedStoragePrefixes": ["s3://models-prod/"],
        },
        {
            "name": "sandbox",
            "mode": "audit",
            "allowedRegistries": ["registry.corp.example/"],
            "allowedStoragePrefixes": ["s3://models-sandbox/"],
        },
        {
            "name": "quarantine",
            "mode": "enforce",
            "allowedRegistries": ["registry.corp.example/"],
        },
    ],
    "mutations": {"secureDefaults": True, "inheritOwnerLabel": True, "pinImageDigests": False},
    "exceptions": {"maxDays": 30, "requireApproval": True},
}
MODE_OF = {e["name"]: e["mode"] for e in BASE_POLICY["environments"]}


# --- small helpers -------------------------------------------------------------------------------


def wait_for(fetch: Callable[[], T | None], what: str, timeout: float = WAIT_S) -> T:
    try:
        return poll_until(fetch, what, timeout)
    except TimeoutError as exc:
        pytest.fail(str(exc))


_WARNING_RE = re.compile(r'^\d{3} \S+ "((?:[^"\\]|\\.)*)"')


def warnings_of(headers: Mapping[str, Any] | None) -> list[str]:
    """The texts of the ``Warning`` response headers (RFC 7234 ``299 - "text"``)."""
    if headers is None:
        return []
    values = headers.getlist("Warning") if hasattr(headers, "getlist") else []
    out = []
    for value in values:
        m = _WARNING_RE.match(value)
        assert m is not None, f"unparsable Warning header {value!r}"
        out.append(re.sub(r"\\(.)", r"\1", m.group(1)))
    return out


def kubectl_warnings(stderr: str) -> list[str]:
    return [
        ln.removeprefix("Warning: ") for ln in stderr.splitlines() if ln.startswith("Warning: ")
    ]


def pod(name: str, namespace: str, **change: Any) -> dict[str, Any]:
    """A Pod that passes every rule in every environment of BASE_POLICY; ``change`` edits it.

    Keys: ``env`` (list for the container), ``image``, ``labels``, ``container_sc`` (merged into
    the container's securityContext), ``drop_defaults`` (leave the four secure defaults unset).
    """
    container_sc: dict[str, Any] = {"readOnlyRootFilesystem": True}
    spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
        "containers": [
            {"name": "app", "image": change.get("image", IMAGE), "securityContext": container_sc}
        ],
    }
    if not change.get("drop_defaults"):
        spec["automountServiceAccountToken"] = False
        spec["securityContext"]["seccompProfile"] = {"type": "RuntimeDefault"}
        container_sc["allowPrivilegeEscalation"] = False
        container_sc["capabilities"] = {"drop": ["ALL"]}
    container_sc.update(change.get("container_sc", {}))
    if container_sc.get("privileged"):
        # the API server refuses privileged together with allowPrivilegeEscalation: false
        container_sc.pop("allowPrivilegeEscalation", None)
    if "env" in change:
        spec["containers"][0]["env"] = change["env"]
    labels = change.get("labels", {OWNER_LABEL: "team-a"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": spec,
    }


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admission_crds(e2e_cluster: E2ECluster) -> None:
    """Airlock's CRDs and the test-only AI kinds, applied the way `make demo` does."""
    kubectl = e2e_cluster.tool("kubectl")
    base = [kubectl, "--kubeconfig", str(e2e_cluster.kubeconfig)]
    for path in (REPO_ROOT / "manifests" / "crds", REPO_ROOT / "manifests" / "testing"):
        subprocess.run(
            [*base, "apply", "--server-side", "--force-conflicts", "-f", str(path)],
            check=True,
            capture_output=True,
            timeout=120,
        )
    subprocess.run(
        [*base, "wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"],
        check=True,
        capture_output=True,
        timeout=90,
    )
    custom = client.CustomObjectsApi(e2e_cluster.api_client)

    def served() -> bool | None:
        try:
            custom.list_cluster_custom_object(GROUP, VERSION, "policyexceptions", limit=1)
            custom.list_cluster_custom_object("kubeflow.org", "v1", "pytorchjobs", limit=1)
            custom.list_cluster_custom_object("ray.io", "v1", "rayclusters", limit=1)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return True

    wait_for(served, "the CRDs to be served", 60)


class Rig:
    """The running Airlock plus the API handles and policy operations the tests share."""

    def __init__(self, cluster: E2ECluster, airlock: Airlock) -> None:
        self.cluster = cluster
        self.airlock = airlock
        self.api = cluster.api_client
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.policy_name = airlock.policy_name

    # -- kubectl, as a user runs it ----------------------------------------------------------------

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.cluster.tool("kubectl"), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    # -- the policy --------------------------------------------------------------------------------

    def put_policy(self, spec: Mapping[str, Any]) -> int:
        """Replace the policy's spec; return the new metadata.generation (raises ApiException).

        The controller writes the policy's status at the same time, so a replace may meet a
        newer resourceVersion (409): read again and retry.
        """
        for _ in range(10):
            current = self.custom.get_cluster_custom_object(
                GROUP, VERSION, "baselinepolicies", self.policy_name
            )
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "BaselinePolicy",
                "metadata": {
                    "name": self.policy_name,
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
                "spec": dict(spec),
            }
            try:
                out = self.custom.replace_cluster_custom_object(
                    GROUP, VERSION, "baselinepolicies", self.policy_name, body
                )
            except ApiException as exc:
                if exc.status == 409:
                    time.sleep(0.1)
                    continue
                raise
            return int(out["metadata"]["generation"])
        pytest.fail("the policy kept changing under ten replace attempts")

    def policy_generation(self) -> int:
        obj = self.custom.get_cluster_custom_object(
            GROUP, VERSION, "baselinepolicies", self.policy_name
        )
        return int(obj["metadata"]["generation"])

    def wait_policy_in_force(self, generation: int, timeout: float = POLICY_CHANGE_S) -> None:
        """Until the webhook reports this generation as the policy in force."""
        labels = {"policy": self.policy_name, "generation": str(generation)}

        def in_force() -> bool | None:
            text = self.airlock.webhook_metrics()
            return True if metric_value(text, "airlock_policy_info", labels) == 1.0 else None

        wait_for(in_force, f"policy generation {generation} in the webhook", timeout)

    def restore_policy(self) -> None:
        self.wait_policy_in_force(self.put_policy(BASE_POLICY))

    # -- requests ----------------------------------------------------------------------------------

    def create_pod(self, body: Mapping[str, Any], *, dry_run: bool = False) -> list[str]:
        """Create the Pod; return the warnings. Raises ApiException when refused."""
        ns = body["metadata"]["namespace"]
        kwargs = {"dry_run": "All"} if dry_run else {}
        _, _, headers = self.core.create_namespaced_pod_with_http_info(ns, body, **kwargs)
        return warnings_of(headers)

    def denial(self, body: Mapping[str, Any], *, dry_run: bool = True) -> ApiException | None:
        """The refusal of creating ``body`` (None if it was admitted)."""
        try:
            self.create_pod(body, dry_run=dry_run)
        except ApiException as exc:
            return exc
        return None

    def pod_exists(self, namespace: str, name: str) -> bool:
        try:
            self.core.read_namespaced_pod(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def rule_results(self, rule: str, environment: str, result: str = "fail") -> float:
        labels = {"rule": rule, "environment": environment, "result": result, "source": "admission"}
        return metric_value(self.airlock.webhook_metrics(), "airlock_rule_results_total", labels)

    # -- webhook availability ----------------------------------------------------------------------

    def wait_webhooks_in_force(self) -> None:
        """Both configurations are called by the API server (probed with dry-runs in `default`,
        an unlabelled namespace, so in the enforcing `quarantine` environment)."""
        privileged = pod("airlock-probe", "default", container_sc={"privileged": True})
        needs_defaults = pod("airlock-probe", "default", drop_defaults=True)

        def validating() -> bool:
            exc = self.denial(privileged)
            return exc is not None and "airlock denied Pod" in message_of(exc)

        def mutating() -> bool:
            try:
                warnings = self.create_pod(needs_defaults, dry_run=True)
            except ApiException:
                return False
            return any(w.startswith("airlock set ") for w in warnings)

        self.airlock.wait_until(validating, "the validating webhook to deny")
        self.airlock.wait_until(mutating, "the mutating webhook to patch")


@pytest.fixture(scope="module")
def rig(
    e2e_cluster: E2ECluster,
    admission_crds: None,
    webhook_ca: WebhookCA,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Rig]:
    """Airlock running and registered, following a BaselinePolicy of this module."""
    work = tmp_path_factory.mktemp("airlock-admission")
    cert, key = webhook_ca.issue_serving_cert(work / "tls")
    tag = uuid.uuid4().hex[:8]
    airlock = Airlock(
        api=e2e_cluster.api_client,
        kubeconfig=e2e_cluster.kubeconfig,
        ca_cert=webhook_ca.cert,
        serving_cert=cert,
        serving_key=key,
        workdir=work / "run",
        policy_name=f"e2e-admission-{tag}",
        tag=tag,
    )
    custom = client.CustomObjectsApi(e2e_cluster.api_client)
    custom.create_cluster_custom_object(
        GROUP,
        VERSION,
        "baselinepolicies",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "BaselinePolicy",
            "metadata": {"name": airlock.policy_name},
            "spec": BASE_POLICY,
        },
    )
    the_rig = Rig(e2e_cluster, airlock)
    try:
        try:
            airlock.start()
            airlock.register()
            the_rig.wait_webhooks_in_force()
            the_rig.wait_policy_in_force(the_rig.policy_generation())
        except (AirlockStartError, pytest.fail.Exception, TimeoutError):
            print(airlock.tails())
            raise
        yield the_rig
    finally:
        airlock.stop()
        try:
            custom.delete_cluster_custom_object(
                GROUP, VERSION, "baselinepolicies", airlock.policy_name
            )
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(autouse=True)
def _airlock_logs_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a failed test, print the tail of the webhook and controller logs."""
    failed_before = request.session.testsfailed
    yield
    if request.session.testsfailed == failed_before or "rig" not in request.fixturenames:
        return
    the_rig: Rig = request.getfixturevalue("rig")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
        print(f"\n{the_rig.airlock.tails()}", flush=True)


@pytest.fixture
def make_ns(rig: Rig, namespace_factory: Callable[..., str]) -> Callable[[str], str]:
    """make(environment) -> a fresh namespace labelled with it, once the webhook knows the label.

    Until the webhook's namespace watch delivers the label, a request is judged in the default
    environment (quarantine, enforce); a dry-run of a privileged Pod shows which one applies.
    """

    def make(environment: str) -> str:
        ns = namespace_factory(f"adm-{environment}", {ENV_LABEL: environment})
        probe = pod("env-probe", ns, container_sc={"privileged": True})
        mode = MODE_OF[environment]

        def known() -> bool | None:
            try:
                warnings = rig.create_pod(probe, dry_run=True)
            except ApiException as exc:
                ok = mode == "enforce" and f"(environment {environment})" in message_of(exc)
                return True if ok else None
            if mode == "warn":
                return True if any("[privileged-container]" in w for w in warnings) else None
            return True if mode == "audit" and not warnings else None

        wait_for(known, f"the webhook to know namespace {ns} is {environment}")
        return ns

    return make


@pytest.fixture
def restore_policy(rig: Rig) -> Iterator[None]:
    yield
    rig.restore_policy()


# --- 1. every rule family in enforce, warn and audit ---------------------------------------------

# family -> (what to change in the clean Pod, the rule, the JSON path of the finding)
FAMILIES: dict[str, tuple[dict[str, Any], str, str]] = {
    "secrets": (
        {"env": [{"name": "HF_TOKEN", "value": SECRET}]},
        "plaintext-secret-env",
        "spec.containers[0].env[0].value",
    ),
    "images": (
        {"image": "registry.corp.example/prod/app:latest"},
        "image-tag-latest",
        "spec.containers[0].image",
    ),
    "segregation": (
        {"env": [{"name": "MODEL_URI", "value": "s3://models-elsewhere/llama/"}]},
        "cross-env-model-source",
        "spec.containers[0].env[0].value",
    ),
    "hardening": (
        {"container_sc": {"privileged": True}},
        "privileged-container",
        "spec.containers[0].securityContext.privileged",
    ),
    "governance": ({"labels": {}}, "owner-label-missing", "metadata.labels"),
}
ENV_FOR_MODE = {"enforce": "staging", "warn": "dev", "audit": "sandbox"}


@pytest.mark.parametrize("mode", ["enforce", "warn", "audit"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_rule_family_verdict(
    rig: Rig, make_ns: Callable[[str], str], family: str, mode: str
) -> None:
    change, rule, path = FAMILIES[family]
    assert RULE_INFO[rule].family == family
    fix = RULE_INFO[rule].fix
    environment = ENV_FOR_MODE[mode]
    ns = make_ns(environment)
    body = pod(f"{family}-{mode}", ns, **change)
    before = rig.rule_results(rule, environment)

    if mode == "enforce":
        exc = rig.denial(body, dry_run=False)
        assert exc is not None, f"{family}: admitted in {environment}"
        message = message_of(exc)
        assert exc.status == 403
        assert f'admission webhook "{POD_WEBHOOK}" denied the request' in message
        assert f"airlock denied Pod {ns}/{family}-{mode} (environment {environment})" in message
        assert f"[{rule}] {path}: " in message
        assert f"— fix: {fix}" in message
        assert SECRET not in (exc.body or "")
        assert not rig.pod_exists(ns, body["metadata"]["name"])
    else:
        warnings = rig.create_pod(body)
        assert rig.pod_exists(ns, body["metadata"]["name"])
        if mode == "warn":
            ours = [w for w in warnings if w.startswith(f"airlock [{rule}] {path}: ")]
            assert len(ours) == 1, warnings
            assert ours[0].endswith(f"; fix: {fix}")
        else:
            assert warnings == [], "audit mode must admit silently"
        assert all(SECRET not in w for w in warnings)
    # one request, one count, in the right environment
    assert rig.rule_results(rule, environment) == before + 1
    assert SECRET not in rig.airlock.webhook.log.read_text(errors="replace")


# --- 2. AI kinds -------------------------------------------------------------------------------


def _pod_template(container: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    **container,
                }
            ],
            **spec,
        }
    }


def test_ai_kinds_denied_at_apply_with_exact_paths(rig: Rig, make_ns: Callable[[str], str]) -> None:
    ns = make_ns("prod")
    meta = {"namespace": ns, "labels": {OWNER_LABEL: "llm-team"}}
    pytorchjob = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "finetune", **meta},
        "spec": {
            "pytorchReplicaSpecs": {
                "Master": {
                    "replicas": 1,
                    "template": _pod_template({"name": "pytorch", "image": IMAGE}),
                },
                "Worker": {
                    "replicas": 2,
                    "template": _pod_template(
                        {
                            "name": "pytorch",
                            "image": IMAGE,
                            "env": [
                                {"name": "EPOCHS", "value": "3"},
                                {"name": "HF_TOKEN", "value": SECRET},
                            ],
                        }
                    ),
                },
            }
        },
    }
    raycluster = {
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "serve", **meta},
        "spec": {
            "headGroupSpec": {"template": _pod_template({"name": "head", "image": IMAGE})},
            "workerGroupSpecs": [
                {
                    "groupName": "gpu",
                    "template": _pod_template(
                        {"name": "worker", "image": "docker.io/rayproject/ray:2.9.0" + DIGEST},
                        hostNetwork=True,
                    ),
                }
            ],
        },
    }
    cases = [
        (
            pytorchjob,
            "kubeflow.org",
            "pytorchjobs",
            {
                "plaintext-secret-env": (
                    "spec.pytorchReplicaSpecs.Worker.template.spec.containers[0].env[1].value"
                )
            },
        ),
        (
            raycluster,
            "ray.io",
            "rayclusters",
            {
                "host-namespaces": "spec.workerGroupSpecs[0].template.spec.hostNetwork",
                "image-registry-not-allowed": (
                    "spec.workerGroupSpecs[0].template.spec.containers[0].image"
                ),
            },
        ),
    ]
    for obj, group, plural, expected in cases:
        kind, name = obj["kind"], obj["metadata"]["name"]
        with pytest.raises(ApiException) as caught:
            rig.custom.create_namespaced_custom_object(group, "v1", ns, plural, obj)
        message = message_of(caught.value)
        assert caught.value.status == 403
        assert f'admission webhook "{WORKLOADS_WEBHOOK}" denied the request' in message
        assert f"airlock denied {kind} {ns}/{name} (environment prod)" in message
        findings = re.findall(r"^\[([a-z-]+)\] (\S+): ", message, re.MULTILINE)
        assert set(findings) == set(expected.items()), message
        assert SECRET not in (caught.value.body or "")
        with pytest.raises(ApiException) as missing:
            rig.custom.get_namespaced_custom_object(group, "v1", ns, plural, name)
        assert missing.value.status == 404


# --- 4. mutation ----------------------------------------------------------------------------------


def test_mutation_fills_secure_defaults_and_says_so(
    rig: Rig, make_ns: Callable[[str], str], tmp_path: Path
) -> None:
    # In prod (enforce) the pod would be denied for four hardening rules; the mutating webhook
    # runs first and fills them, so it is admitted, and every change is a Warning: line.
    ns = make_ns("prod")
    body = pod("needs-defaults", ns, drop_defaults=True)
    side = {
        "name": "side",
        "image": IMAGE,
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "capabilities": {"add": ["NET_BIND_SERVICE"]},
        },
    }
    body["spec"]["containers"].append(side)
    manifest = tmp_path / "pod.yaml"
    manifest.write_text(yaml.safe_dump(body))
    proc = rig.kubectl("apply", "-f", str(manifest))
    assert proc.returncode == 0, proc.stderr
    assert sorted(kubectl_warnings(proc.stderr)) == sorted(
        [
            "airlock set spec.automountServiceAccountToken = false (unset before)",
            "airlock set spec.securityContext.seccompProfile = {type: RuntimeDefault} "
            "(unset before)",
            "airlock set spec.containers[0].securityContext.allowPrivilegeEscalation = false "
            "(unset before)",
            "airlock set spec.containers[0].securityContext.capabilities = {drop: [ALL]} "
            "(unset before)",
            "airlock set spec.containers[1].securityContext.allowPrivilegeEscalation = false "
            "(unset before)",
            "airlock set spec.containers[1].securityContext.capabilities.drop = [ALL] "
            "(unset before)",
        ]
    )
    stored = rig.core.read_namespaced_pod("needs-defaults", ns)
    assert stored.spec.automount_service_account_token is False
    assert stored.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert stored.spec.security_context.run_as_user == 1000  # written values stay
    first, second = stored.spec.containers
    for c in (first, second):
        assert c.security_context.allow_privilege_escalation is False
        assert c.security_context.capabilities.drop == ["ALL"]
        assert c.security_context.read_only_root_filesystem is True
    assert first.security_context.capabilities.add is None
    assert second.security_context.capabilities.add == ["NET_BIND_SERVICE"]  # never overridden

    # an explicit value is never overridden: the warn environment keeps it and says why not
    dev = make_ns("dev")
    explicit = pod(
        "explicit", dev, container_sc={"allowPrivilegeEscalation": True}, drop_defaults=True
    )
    warnings = rig.create_pod(explicit)
    stored = rig.core.read_namespaced_pod("explicit", dev)
    assert stored.spec.containers[0].security_context.allow_privilege_escalation is True
    assert not any("allowPrivilegeEscalation = false" in w for w in warnings), warnings
    assert any(
        w.startswith(
            "airlock [privilege-escalation] spec.containers[0].securityContext."
            "allowPrivilegeEscalation: "
        )
        for w in warnings
    ), warnings


# --- 5. dry-run -----------------------------------------------------------------------------------


def test_dry_run_gives_the_real_verdict_and_creates_nothing(
    rig: Rig, make_ns: Callable[[str], str]
) -> None:
    prod, dev = make_ns("prod"), make_ns("dev")
    bad = pod(
        "bad", prod, env=[{"name": "HF_TOKEN", "value": SECRET}], container_sc={"privileged": True}
    )
    before = rig.rule_results("plaintext-secret-env", "prod")
    dry = rig.denial(bad, dry_run=True)
    assert dry is not None
    assert rig.rule_results("plaintext-secret-env", "prod") == before  # a dry-run is no workload
    real = rig.denial(bad, dry_run=False)
    assert real is not None
    assert (dry.status, message_of(dry)) == (real.status, message_of(real))
    assert "[plaintext-secret-env] spec.containers[0].env[0].value" in message_of(real)
    assert "[privileged-container] spec.containers[0].securityContext.privileged" in message_of(
        real
    )
    assert rig.rule_results("plaintext-secret-env", "prod") == before + 1

    warned = pod("warned", dev, image="registry.corp.example/dev/tool:latest", drop_defaults=True)
    dry_warnings = rig.create_pod(warned, dry_run=True)
    assert not rig.pod_exists(dev, "warned")
    assert any(w.startswith("airlock [image-tag-latest] ") for w in dry_warnings)
    assert any(w.startswith("airlock set ") for w in dry_warnings)  # the patch is reported too
    real_warnings = rig.create_pod(warned)
    assert real_warnings == dry_warnings
    assert rig.pod_exists(dev, "warned")


# --- 6. PolicyExceptions: four eyes, exactly the waived rules, expiry -----------------------------


def _exception(name: str, ns: str, rules: list[str], names: list[str], expires: datetime) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PolicyException",
            "metadata": {
                "name": name,
                "namespace": ns,
                # forged: Airlock records creator and approver itself
                "annotations": {APPROVED_BY_ANNOTATION: "mallory", CREATED_BY_ANNOTATION: "bob"},
            },
            "spec": {
                "rules": rules,
                "match": {"names": names},
                "expires": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "owner": "gpu-team@corp.example",
                "reason": "the GPU driver installer needs privileges until the operator ships",
            },
        }
    )


def test_exception_needs_a_second_person_waives_its_rules_and_expires(
    rig: Rig, make_ns: Callable[[str], str]
) -> None:
    ns = make_ns("prod")
    waived = ["privileged-container", "privilege-escalation"]
    alice = ("--as=alice", "--as-group=system:masters")
    bob = ("--as=bob", "--as-group=system:masters")
    lifetime = 20
    expires = (datetime.now(UTC) + timedelta(seconds=lifetime + 1)).replace(microsecond=0)
    for name, names in (("pending", ["pending-*"]), ("approved", ["approved-*"])):
        proc = rig.kubectl(
            *alice, "apply", "-f", "-", stdin=_exception(name, ns, waived, names, expires)
        )
        assert proc.returncode == 0, proc.stderr
        assert "airlock set annotation airlock.dev/created-by=alice" in kubectl_warnings(
            proc.stderr
        )

    def annotations(name: str) -> dict[str, str]:
        obj = rig.custom.get_namespaced_custom_object(GROUP, VERSION, ns, "policyexceptions", name)
        return {
            k: v for k, v in obj["metadata"].get("annotations", {}).items() if k.startswith(GROUP)
        }

    assert annotations("pending") == {CREATED_BY_ANNOTATION: "alice"}  # forgeries dropped

    # the creator cannot approve their own exception
    proc = rig.kubectl(
        *alice, "annotate", "-n", ns, "policyexception/pending", f"{APPROVE_ANNOTATION}=true"
    )
    assert proc.returncode != 0
    assert "cannot be approved by its creator (four-eyes rule)" in proc.stderr
    assert f'metadata.annotations["{APPROVE_ANNOTATION}"]' in proc.stderr
    assert annotations("pending") == {CREATED_BY_ANNOTATION: "alice"}

    # a second person approves the other one
    proc = rig.kubectl(
        *bob, "annotate", "-n", ns, "policyexception/approved", f"{APPROVE_ANNOTATION}=true"
    )
    assert proc.returncode == 0, proc.stderr
    assert annotations("approved") == {
        CREATED_BY_ANNOTATION: "alice",
        APPROVED_BY_ANNOTATION: "bob",
    }

    privileged = {"container_sc": {"privileged": True}}
    # The approval is in force once this is admitted; the webhook's exception watch delivers
    # events in order, so it has then seen "pending" (created earlier) as well.
    wait_for(
        lambda: True if rig.denial(pod("approved-a", ns, **privileged)) is None else None,
        "the approved exception to waive privileged-container",
        lifetime - 8,
    )
    pending = rig.denial(pod("pending-a", ns, **privileged))
    assert pending is not None, "an unapproved exception waived a rule"
    assert "[privileged-container]" in message_of(pending)

    # exactly its rules: the missing owner label still denies, and is the only finding listed
    partly = rig.denial(pod("approved-b", ns, labels={}, **privileged))
    assert partly is not None
    listed = re.findall(r"^\[([a-z-]+)\] ", message_of(partly), re.MULTILINE)
    assert listed == ["owner-label-missing"], message_of(partly)

    exempted_before = rig.rule_results("privileged-container", "prod", "exempted")
    assert rig.create_pod(pod("approved-c", ns, **privileged)) == []
    assert rig.rule_results("privileged-container", "prod", "exempted") == exempted_before + 1

    # expiry: the waiver ends on time, without any restart or edit
    remaining = (expires - datetime.now(UTC)).total_seconds()
    assert remaining > 0, "the test was too slow to see the waiver before it expired"
    time.sleep(remaining)
    expired = wait_for(
        lambda: rig.denial(pod("approved-d", ns, **privileged)),
        "the expired exception to stop waiving",
        10,
    )
    assert "[privileged-container] spec.containers[0].securityContext.privileged" in message_of(
        expired
    )

    def state() -> str | None:
        obj = rig.custom.get_namespaced_custom_object(
            GROUP, VERSION, ns, "policyexceptions", "approved"
        )
        value = obj.get("status", {}).get("state")
        return value if value == "Expired" else None

    wait_for(state, "the controller to mark the exception Expired", 15)


# --- 7. the policy itself -------------------------------------------------------------------------


def test_invalid_policy_rejected_with_field_path_and_old_one_stays(
    rig: Rig, make_ns: Callable[[str], str], restore_policy: None
) -> None:
    ns = make_ns("prod")
    secret_pod = pod("leaky", ns, env=[{"name": "HF_TOKEN", "value": SECRET}])
    generation = rig.policy_generation()
    # Both patterns pass the CRD schema; either would switch the credential detectors off.
    invalid = {**BASE_POLICY, "detectors": {"allowValues": [".*", "(["]}}
    with pytest.raises(ApiException) as caught:
        rig.put_policy(invalid)
    message = message_of(caught.value)
    assert caught.value.status == 422
    assert f"airlock denied BaselinePolicy {rig.policy_name}: invalid policy, 2 errors" in message
    assert "spec.detectors.allowValues[0]: pattern matches the empty string" in message
    assert "spec.detectors.allowValues[1]: invalid regular expression" in message
    assert rig.policy_generation() == generation
    rig.wait_policy_in_force(generation)
    exc = rig.denial(secret_pod)
    assert exc is not None, "the rejected policy's allowValues took effect"
    assert "[plaintext-secret-env] spec.containers[0].env[0].value" in message_of(exc)


def test_policy_change_takes_effect_without_restart(
    rig: Rig, make_ns: Callable[[str], str], restore_policy: None
) -> None:
    dev = make_ns("dev")
    body = pod("flip", dev, container_sc={"privileged": True})
    assert rig.denial(body) is None
    pid = rig.airlock.webhook.process.pid if rig.airlock.webhook.process else None
    enforced = json.loads(json.dumps(BASE_POLICY))
    enforced["environments"][0]["mode"] = "enforce"
    started = time.monotonic()
    rig.put_policy(enforced)
    exc = wait_for(lambda: rig.denial(body), "dev to enforce", POLICY_CHANGE_S)
    took = time.monotonic() - started
    assert "(environment dev)" in message_of(exc)
    assert "[privileged-container]" in message_of(exc)
    assert rig.airlock.webhook.alive()
    assert rig.airlock.webhook.process is not None
    assert rig.airlock.webhook.process.pid == pid
    print(f"policy change in force after {took:.2f} s")


# --- 3 and 8. the webhook down: Pods fail closed, workloads are let through -----------------------


def _events(rig: Rig, ns: str, involved: str) -> list[str]:
    items = rig.core.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={involved},reason=FailedCreate"
    ).items
    return [e.message or "" for e in items]


def _deployment(name: str, ns: str, **container_sc: Any) -> dict[str, Any]:
    template = pod(name, ns, container_sc=container_sc)
    template_meta = {"labels": {"app": name, OWNER_LABEL: "team-a"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns, "labels": {OWNER_LABEL: "team-a"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": template_meta, "spec": template["spec"]},
        },
    }


def test_deployment_admitted_but_its_pods_denied_by_the_pod_check(
    rig: Rig, make_ns: Callable[[str], str]
) -> None:
    ns = make_ns("prod")
    body = _deployment("web", ns, privileged=True)
    # with the webhook up the Deployment itself is refused, with the Pod template's path
    with pytest.raises(ApiException) as caught:
        rig.apps.create_namespaced_deployment(ns, body, dry_run="All")
    message = message_of(caught.value)
    assert f'admission webhook "{WORKLOADS_WEBHOOK}" denied the request' in message
    assert "[privileged-container] spec.template.spec.containers[0].securityContext.privileged" in (
        message
    )

    rig.airlock.stop_webhook()
    try:
        rig.apps.create_namespaced_deployment(ns, body)  # failurePolicy Ignore: admitted

        def replicaset() -> str | None:
            items = rig.apps.list_namespaced_replica_set(ns).items
            return items[0].metadata.name if items else None

        rs = wait_for(replicaset, "the Deployment's ReplicaSet")
        wait_for(
            lambda: (
                True
                if any(f'failed calling webhook "{POD_WEBHOOK}"' in m for m in _events(rig, ns, rs))
                else None
            ),
            "a FailedCreate event while the webhook is down",
        )
    finally:
        rig.airlock.start_webhook()
    # No Pod was created during the outage (the Pod webhook fails closed), nor as the webhook came
    # back: a review that arrives before its initial listings are loaded gets 503, not a verdict
    # judged without the policy (which admitted a privileged Pod in about half the runs).
    assert rig.core.list_namespaced_pod(ns).items == []
    # The ReplicaSet controller retries a failed create with exponential backoff, which grows
    # past the wait below when the webhook was down long (a loaded machine). A change to the
    # ReplicaSet syncs it at once, as kubectl's edits do; it is repeated every few seconds, as
    # the first create after the restart may still fail (the API server's connection to the
    # stopped webhook) and put the next retry out of reach again.
    nudged = [-1e9]
    seen: list[str] = []

    def airlock_denial() -> str | None:
        seen[:] = _events(rig, ns, rs)
        found = next((m for m in seen if "airlock denied Pod" in m), None)
        if found is None and time.monotonic() - nudged[0] > 5:
            nudged[0] = time.monotonic()
            annotation = {"airlock.test/nudge": str(nudged[0])}
            rig.apps.patch_namespaced_replica_set(rs, ns, {"metadata": {"annotations": annotation}})
        return found

    try:
        denied = poll_until(airlock_denial, "the ReplicaSet's Pod to be denied by airlock", 60)
    except TimeoutError as exc:
        pytest.fail(f"{exc}; its FailedCreate events: {seen}")
    assert f'admission webhook "{POD_WEBHOOK}" denied the request' in denied
    assert rig.core.list_namespaced_pod(ns).items == []
    # Events elide the middle of long messages, so the full denial of a Pod made from the same
    # template is read from the API's answer instead.
    template = body["spec"]["template"]
    same_pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "from-template", "namespace": ns, **template["metadata"]},
        "spec": template["spec"],
    }
    refused = rig.denial(same_pod)
    assert refused is not None
    full = message_of(refused)
    assert "(environment prod)" in full
    assert "[privileged-container] spec.containers[0].securityContext.privileged" in full


def test_webhook_down_pods_fail_closed_system_and_workloads_pass(
    rig: Rig, make_ns: Callable[[str], str]
) -> None:
    ns = make_ns("prod")
    system_pod = pod(
        f"airlock-e2e-{rig.airlock.tag}", "kube-system", container_sc={"privileged": True}
    )
    rig.create_pod(pod("running", ns))  # admitted while Airlock is up
    rig.airlock.stop_webhook()
    try:
        # a metadata-only update (what controllers do to finalizers and labels) needs no check,
        # so the fail-closed Pod webhook's matchConditions keep it working during the outage
        labelled = rig.core.patch_namespaced_pod(
            "running", ns, {"metadata": {"labels": {"touched": "during-outage"}}}
        )
        assert labelled.metadata.labels["touched"] == "during-outage"
        # …while a spec change (a new image) still cannot pass unchecked
        new_image = {
            "spec": {"containers": [{"name": "app", "image": IMAGE.replace(":1.0", ":1.1")}]}
        }
        with pytest.raises(ApiException) as caught:
            rig.core.patch_namespaced_pod("running", ns, new_image)
        assert f'failed calling webhook "{POD_WEBHOOK}"' in message_of(caught.value)

        # even a Pod with nothing to object to: nobody could check it
        with pytest.raises(ApiException) as caught:
            rig.create_pod(pod("clean", ns))
        assert caught.value.status == 500
        assert f'failed calling webhook "{POD_WEBHOOK}"' in message_of(caught.value)
        assert not rig.pod_exists(ns, "clean")

        # kube-system is excluded by namespaceSelector: the API server does not call Airlock
        rig.create_pod(system_pod)
        assert rig.pod_exists("kube-system", system_pod["metadata"]["name"])

        # workloads fail open (the Pod check behind them stays closed)
        _, status, _ = rig.apps.create_namespaced_deployment_with_http_info(
            ns, _deployment("api", ns)
        )
        assert status == 201
    finally:
        try:
            rig.core.delete_namespaced_pod(
                system_pod["metadata"]["name"], "kube-system", grace_period_seconds=0
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
        rig.airlock.start_webhook()
    rig.wait_webhooks_in_force()


def test_no_log_holds_a_secret_value(rig: Rig) -> None:
    """Last: every test above sent SECRET through the webhook (and the controller audited it)."""
    for proc in (rig.airlock.webhook, rig.airlock.controller):
        text = proc.log.read_text(errors="replace")
        assert text, f"{proc.name} wrote no log at all"
        assert SECRET not in text, f"the {proc.name} log holds the credential"
