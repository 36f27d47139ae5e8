"""Every rule of the catalog: a positive case (which rule, which path) and a negative case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from airlock.engine import evaluate
from airlock.findings import Action
from airlock.images import SignatureCheck, SignatureStatus
from airlock.model import RULE_IDS, load_policy
from airlock.rules import RULE_INFO, RULES
from airlock.state import EvalContext

from tests.support.builders import DIGEST, clean_container, clean_pod, deployment

POLICY = load_policy(
    {
        "defaultEnvironment": "dev",
        "environments": [
            {
                "name": "dev",
                "mode": "warn",
                "allowedRegistries": ["registry.corp.example/dev/"],
                "allowedStoragePrefixes": ["s3://models-dev/"],
            },
            {
                "name": "prod",
                "mode": "enforce",
                "allowedRegistries": ["registry.corp.example/prod/"],
                "allowedStoragePrefixes": ["s3://models-prod/"],
            },
        ],
    }
)
NS_ENV = {"team-a": "prod", "ml-dev": "dev", "ml-prod": "prod"}
C0 = "spec.containers[0]"


def ctx(**kw: Any) -> EvalContext:
    return EvalContext.build(POLICY, namespace_env=NS_ENV, **kw)


def hits(obj: dict[str, Any], context: EvalContext | None = None) -> set[tuple[str, str]]:
    return {(f.rule, f.path) for f in evaluate(obj, context or ctx()).findings}


def rules_of(obj: dict[str, Any], context: EvalContext | None = None) -> set[str]:
    return {rule for rule, _ in hits(obj, context)}


def test_registry_lists_every_catalog_rule_in_order() -> None:
    assert tuple(r.id for r in RULES) == RULE_IDS
    for info in RULE_INFO.values():
        assert info.reason
        assert info.fix
        assert info.rationale
        assert info.references


def test_clean_hardened_pod_has_no_finding() -> None:
    assert hits(clean_pod()) == set()


Mut = Callable[[dict[str, Any]], None]


def _c(p: dict[str, Any]) -> dict[str, Any]:
    c: dict[str, Any] = p["spec"]["containers"][0]
    return c


def _sc(p: dict[str, Any]) -> dict[str, Any]:
    sc: dict[str, Any] = _c(p)["securityContext"]
    return sc


def _env(name: str, value: str) -> Mut:
    return lambda p: _c(p)["env"].append({"name": name, "value": value})


POSITIVE: list[tuple[str, Mut, str]] = [
    (
        "plaintext-secret-env",
        _env("HF_TOKEN", "hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq"),
        f"{C0}.env[1].value",
    ),
    (
        "plaintext-secret-args",
        lambda p: _c(p).update(args=["--api-key=sk-proj-" + "Zr8Kp2Wq9Xt4Lm7Nb3Vc6Hd1Fg5Js0Ay"]),
        f"{C0}.args[0]",
    ),
    (
        "image-tag-latest",
        lambda p: _c(p).update(image="registry.corp.example/prod/x"),
        f"{C0}.image",
    ),
    (
        "image-digest-missing",
        lambda p: _c(p).update(image="registry.corp.example/prod/x:1.0"),
        f"{C0}.image",
    ),
    (
        "image-registry-not-allowed",
        lambda p: _c(p).update(image=f"registry.corp.example/production/x:1@{DIGEST}"),
        f"{C0}.image",
    ),
    (
        "cross-env-service-reference",
        _env("FEATURES_URL", "http://features.ml-dev.svc.cluster.local:8080/v1"),
        f"{C0}.env[1].value",
    ),
    (
        "cross-env-node-pool",
        lambda p: p["spec"].update(nodeSelector={"airlock.dev/environment": "dev"}),
        "spec.nodeSelector",
    ),
    (
        "cross-env-model-source",
        _env("MODEL_URI", "s3://models-dev/llama/7b"),
        f"{C0}.env[1].value",
    ),
    (
        "privileged-container",
        lambda p: _sc(p).update(privileged=True),
        f"{C0}.securityContext.privileged",
    ),
    ("host-namespaces", lambda p: p["spec"].update(hostPID=True), "spec.hostPID"),
    (
        "host-path-volume",
        lambda p: p["spec"].update(volumes=[{"name": "h", "hostPath": {"path": "/"}}]),
        "spec.volumes[0].hostPath",
    ),
    (
        "privilege-escalation",
        lambda p: _sc(p).pop("allowPrivilegeEscalation"),
        f"{C0}.securityContext.allowPrivilegeEscalation",
    ),
    ("run-as-root", lambda p: _sc(p).update(runAsUser=0), f"{C0}.securityContext.runAsUser"),
    (
        "dangerous-capabilities",
        lambda p: _sc(p).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        f"{C0}.securityContext.capabilities.add",
    ),
    (
        "seccomp-unconfined",
        lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}),
        f"{C0}.securityContext.seccompProfile.type",
    ),
    (
        "service-account-token-automount",
        lambda p: p["spec"].pop("automountServiceAccountToken"),
        "spec.automountServiceAccountToken",
    ),
    (
        "writable-root-filesystem",
        lambda p: _sc(p).update(readOnlyRootFilesystem=False),
        f"{C0}.securityContext.readOnlyRootFilesystem",
    ),
    (
        "host-ports",
        lambda p: _c(p).update(ports=[{"containerPort": 8080, "hostPort": 8080}]),
        f"{C0}.ports[0].hostPort",
    ),
    (
        "apparmor-profile",
        lambda p: _sc(p).update(appArmorProfile={"type": "Unconfined"}),
        f"{C0}.securityContext.appArmorProfile.type",
    ),
    (
        "selinux-options",
        lambda p: _sc(p).update(seLinuxOptions={"type": "spc_t"}),
        f"{C0}.securityContext.seLinuxOptions",
    ),
    (
        "proc-mount",
        lambda p: _sc(p).update(procMount="Unmasked"),
        f"{C0}.securityContext.procMount",
    ),
    (
        "unsafe-sysctls",
        lambda p: p["spec"]["securityContext"].update(sysctls=[{"name": "kernel.msgmax"}]),
        "spec.securityContext.sysctls[0].name",
    ),
    (
        "restricted-volume-types",
        lambda p: p["spec"].update(volumes=[{"name": "n", "nfs": {"server": "nfs", "path": "/"}}]),
        "spec.volumes[0].nfs",
    ),
    (
        "windows-host-process",
        lambda p: _sc(p).update(windowsOptions={"hostProcess": True}),
        f"{C0}.securityContext.windowsOptions.hostProcess",
    ),
    (
        "host-probes",
        lambda p: _c(p).update(
            livenessProbe={"httpGet": {"host": "169.254.169.254", "path": "/", "port": 80}}
        ),
        f"{C0}.livenessProbe.httpGet.host",
    ),
    ("owner-label-missing", lambda p: p["metadata"].update(labels={}), "metadata.labels"),
]


@pytest.mark.parametrize(("rule", "spoil", "path"), POSITIVE, ids=[r for r, _, _ in POSITIVE])
def test_rule_fires_at_its_path_and_nothing_else_changes(rule: str, spoil: Mut, path: str) -> None:
    p = clean_pod()
    spoil(p)
    found = hits(p)
    assert (rule, path) in found
    assert {r for r, _ in found} == {rule, *ALSO.get(rule, ())}, found


# a spoiled pod may rightly break a second rule too: an untagged image has no digest either
# and at restricted level a hostPath volume is also a restricted volume type
ALSO = {
    "image-tag-latest": ("image-digest-missing",),
    "host-path-volume": ("restricted-volume-types",),
}


def test_catalog_is_covered_by_positive_cases() -> None:
    covered = {r for r, _, _ in POSITIVE} | {
        "plaintext-secret-configmap",
        "namespace-environment-missing",
        "network-isolation-missing",
        # they need bindings in the context: positive cases in test_rbac.py
        "cross-env-rbac-binding",
        "workload-cluster-admin",
        # it needs signature checks in the context: positive cases in test_signature_rule_*
        "image-signature-unverified",
    }
    assert covered == set(RULE_IDS)


NEGATIVE: list[tuple[str, Mut]] = [
    ("plaintext-secret-env", _env("HF_TOKEN", "${HF_TOKEN}")),
    ("plaintext-secret-env", _env("TOKENIZERS_PARALLELISM", "false")),
    ("plaintext-secret-args", lambda p: _c(p).update(args=["--api-key-file=/etc/secrets/key"])),
    ("image-tag-latest", lambda p: _c(p).update(image=f"registry.corp.example/prod/x@{DIGEST}")),
    (
        "image-digest-missing",
        lambda p: _c(p).update(image="registry.corp.example/prod/x:1@sha256:" + "b" * 64),
    ),
    ("cross-env-service-reference", _env("FEATURES_URL", "http://features.ml-prod.svc:8080")),
    ("cross-env-service-reference", _env("CONFIG", "config.json")),
    (
        "cross-env-node-pool",
        lambda p: p["spec"].update(nodeSelector={"airlock.dev/environment": "prod"}),
    ),
    ("cross-env-model-source", _env("MODEL_URI", "s3://models-prod/llama/7b")),
    ("privileged-container", lambda p: _sc(p).update(privileged=False)),
    ("host-namespaces", lambda p: p["spec"].update(hostNetwork=False)),
    ("host-path-volume", lambda p: p["spec"].update(volumes=[{"name": "t", "emptyDir": {}}])),
    (
        "run-as-root",
        lambda p: (
            p["spec"]["securityContext"].update(runAsNonRoot=True),
            _sc(p).pop("runAsNonRoot"),
        ),
    ),
    (
        "dangerous-capabilities",
        lambda p: _sc(p).update(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
    ),
    ("seccomp-unconfined", lambda p: _sc(p).update(seccompProfile={"type": "Localhost"})),
]


@pytest.mark.parametrize(("rule", "change"), NEGATIVE, ids=[r for r, _ in NEGATIVE])
def test_rule_stays_silent_on_compliant_variants(rule: str, change: Mut) -> None:
    p = clean_pod()
    change(p)
    assert rule not in rules_of(p)


def test_secret_value_never_in_finding() -> None:
    token = "hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq"
    p = clean_pod()
    _env("HF_TOKEN", token)(p)
    _c(p)["args"] = [f"--token={token}"]
    verdict = evaluate(p, ctx())
    assert verdict.findings
    for f in verdict.findings:
        assert token not in repr(f)
        assert token[3:12] not in f.message


def test_configmap_credential_and_its_consumers() -> None:
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "app", "namespace": "team-a"},
        "data": {"db.password": "Xk9#mQ2$vL7pR4wZ", "LOG_LEVEL": "debug"},
    }
    assert hits(cm) == {("plaintext-secret-configmap", 'data["db.password"]')}
    p = clean_pod()
    _c(p)["envFrom"] = [{"configMapRef": {"name": "app"}}]
    p["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "app"}}]
    flagged = ctx(credential_configmaps={("team-a", "app"): frozenset({"db.password"})})
    assert hits(p, flagged) == {
        ("plaintext-secret-configmap", f"{C0}.envFrom[0].configMapRef"),
        ("plaintext-secret-configmap", "spec.volumes[0].configMap"),
    }
    # the same name in another namespace is another ConfigMap
    assert hits(clean_pod("ml-prod"), flagged) == set()


def test_namespace_environment_missing_only_for_known_unlabelled_namespace() -> None:
    known = ctx(namespace_labels={"loose": {"team": "x"}})
    found = evaluate(clean_pod("loose"), known)
    assert {(f.rule, f.action) for f in found.findings} >= {
        ("namespace-environment-missing", Action.AUDIT)
    }
    assert "namespace-environment-missing" not in rules_of(clean_pod("unknown-ns"), known)
    assert "namespace-environment-missing" not in rules_of(clean_pod("team-a"), known)


def test_network_isolation_missing_only_when_known() -> None:
    assert "network-isolation-missing" not in rules_of(clean_pod())
    isolated = ctx(isolated_namespaces=frozenset({"ml-prod"}))
    found = evaluate(clean_pod("team-a"), isolated)
    assert [(f.rule, f.path, f.action) for f in found.findings] == [
        ("network-isolation-missing", "metadata.namespace", Action.AUDIT)
    ]
    assert rules_of(clean_pod("ml-prod"), isolated) == set()


def test_service_reference_forms() -> None:
    from airlock.rules.segregation import service_namespaces

    text = (
        "a.ml-dev b.ml-dev.svc c.ml-dev.svc.cluster.local postgres://u:p@d.ml-dev:5432/db "
        "https://e.ml-dev.svc.cluster.local/path?x=1 example.com/x "
        "MASTER=w-0.trainer.ml-dev.svc:23456"
    )
    assert [h for h, _ in service_namespaces(text)] == [
        "a.ml-dev",
        "b.ml-dev.svc",
        "c.ml-dev.svc.cluster.local",
        "d.ml-dev",
        "e.ml-dev.svc.cluster.local",
        "example.com",
        "w-0.trainer.ml-dev.svc",
    ]
    assert {ns for _, ns in service_namespaces(text)} == {"ml-dev", "com"}


def test_reachable_environment_may_be_named() -> None:
    policy = load_policy(
        {
            "environments": [
                {"name": "dev", "reachableEnvironments": ["shared"]},
                {"name": "shared"},
            ]
        }
    )
    context = EvalContext.build(policy, namespace_env={"a": "dev", "s": "shared"})
    p = clean_pod("a")
    _env("URL", "http://api.s.svc:80")(p)
    assert "cross-env-service-reference" not in rules_of(p, context)
    context2 = EvalContext.build(policy, namespace_env={"a": "shared", "s": "dev"})
    p2 = clean_pod("a")
    _env("URL", "http://api.s.svc:80")(p2)
    assert "cross-env-service-reference" in rules_of(p2, context2)


def test_a_service_named_in_args_only_is_reported_unless_its_environment_is_reachable() -> None:
    policy = load_policy(
        {"environments": [{"name": "dev", "reachableEnvironments": ["shared"]}, {"name": "shared"}]}
    )
    p = clean_pod("a")
    _c(p)["args"] = ["--features", "http://features.s.svc:8080"]
    context = EvalContext.build(policy, namespace_env={"a": "shared", "s": "dev"})
    assert ("cross-env-service-reference", f"{C0}.args[1]") in hits(p, context)
    reachable = EvalContext.build(policy, namespace_env={"a": "dev", "s": "shared"})
    assert "cross-env-service-reference" not in rules_of(p, reachable)


def test_rules_run_under_each_environments_own_actions_however_many_there_are() -> None:
    """The rules to run are resolved once per environment's actions: alternating environments,
    and more environments than are kept resolved at once, each get their own."""
    p = clean_pod()
    _sc(p)["readOnlyRootFilesystem"] = False
    modes = ["off", "audit", "warn", "enforce"]
    policies = [  # 90 environments: more than the 64 kept resolved
        load_policy(
            {
                "environments": [
                    {"name": f"e{i}", "rules": {"writable-root-filesystem": modes[(i + k) % 4]}}
                    for i in range(30)
                ]
            }
        )
        for k in range(3)
    ]
    expected = {"off": None, "audit": Action.AUDIT, "warn": Action.WARN, "enforce": Action.ENFORCE}
    for _ in range(2):
        for k, policy in enumerate(policies):
            for i in range(30):
                verdict = evaluate(p, EvalContext.build(policy, environment=f"e{i}"))
                found = {f.action for f in verdict.findings if f.rule == "writable-root-filesystem"}
                want = expected[modes[(i + k) % 4]]
                assert found == (set() if want is None else {want}), (k, i)


def test_node_affinity_and_tolerations() -> None:
    p = clean_pod()
    p["spec"]["affinity"] = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "airlock.dev/environment", "operator": "In", "values": ["dev"]}
                        ]
                    }
                ]
            }
        }
    }
    p["spec"]["tolerations"] = [
        {
            "key": "airlock.dev/environment",
            "operator": "Equal",
            "value": "dev",
            "effect": "NoSchedule",
        },
        {"key": "airlock.dev/environment", "operator": "Equal", "value": "prod"},
        {"operator": "Exists"},
    ]
    base = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
    assert hits(p) == {
        ("cross-env-node-pool", f"{base}.nodeSelectorTerms[0].matchExpressions[0]"),
        ("cross-env-node-pool", "spec.tolerations[0]"),
        ("cross-env-node-pool", "spec.tolerations[2]"),
    }


def test_registry_prefix_matches_whole_segments() -> None:
    from airlock.rules.images import registry_allowed

    allowed = ("registry.corp.example/prod/", "docker.io/library/python")
    assert registry_allowed("registry.corp.example/prod/x", allowed)
    assert not registry_allowed("registry.corp.example/production/x", allowed)
    assert registry_allowed("docker.io/library/python", allowed)
    assert not registry_allowed("docker.io/library/python-evil", allowed)


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (SignatureStatus.NO_SIGNATURE, "has no signature"),
        (SignatureStatus.WRONG_KEY, "has no signature by a trusted key"),
        (SignatureStatus.DIGEST_MISMATCH, "has a signature made for another digest"),
        (SignatureStatus.UNAVAILABLE, "could not be checked for a signature"),
    ],
)
def test_signature_rule_names_the_image_and_what_failed(status: SignatureStatus, says: str) -> None:
    p = clean_pod()
    p["spec"]["initContainers"] = [clean_container("init")]
    image = _c(p)["image"]
    checks = {image: SignatureCheck(status, DIGEST, "detail here")}
    findings = [
        f for f in evaluate(p, ctx(image_signatures=checks)).findings if f.rule != "run-as-root"
    ]
    assert [(f.rule, f.path) for f in findings] == [
        ("image-signature-unverified", f"{C0}.image"),
        ("image-signature-unverified", "spec.initContainers[0].image"),
    ]
    assert findings[0].message == f"image {image} {says} (detail here)"  # the digest is in it
    assert findings[0].action is Action.ENFORCE  # team-a is prod


def test_signature_rule_names_the_digest_checked_for_a_tag() -> None:
    p = clean_pod()
    image = "registry.corp.example/prod/x:1.0"
    _c(p)["image"] = image
    checks = {image: SignatureCheck(SignatureStatus.NO_SIGNATURE, DIGEST)}
    (finding,) = [
        f
        for f in evaluate(p, ctx(image_signatures=checks)).findings
        if f.rule == "image-signature-unverified"
    ]
    assert finding.message == f"image {image} at {DIGEST} has no signature"


def test_signature_rule_silent_when_verified_or_not_checked() -> None:
    p = clean_pod()
    image = _c(p)["image"]
    verified = {image: SignatureCheck(SignatureStatus.VERIFIED, DIGEST)}
    other = {"registry.corp.example/prod/other:1": SignatureCheck(SignatureStatus.NO_SIGNATURE)}
    for checks in ({}, verified, other):
        assert "image-signature-unverified" not in rules_of(p, ctx(image_signatures=checks))


def test_malformed_digests_are_not_pins() -> None:
    for bad in ("sha256:" + "A" * 64, "sha256:" + "a" * 63, "md5:" + "a" * 32):
        p = clean_pod()
        _c(p)["image"] = f"registry.corp.example/prod/x:1@{bad}"
        assert "image-digest-missing" in rules_of(p)


def test_actions_follow_precedence() -> None:
    policy = load_policy(
        {
            "rules": {"writable-root-filesystem": "audit", "owner-label-missing": "off"},
            "environments": [
                {"name": "dev", "mode": "warn", "rules": {"writable-root-filesystem": "enforce"}},
                {"name": "prod", "mode": "enforce"},
            ],
        }
    )
    p = clean_pod()
    _sc(p)["readOnlyRootFilesystem"] = False
    p["metadata"]["labels"] = {}
    _c(p)["image"] = "registry.corp.example/prod/x:1"
    for env, expected in (
        ("dev", {"writable-root-filesystem": Action.ENFORCE, "image-digest-missing": Action.WARN}),
        (
            "prod",
            {"writable-root-filesystem": Action.AUDIT, "image-digest-missing": Action.ENFORCE},
        ),
    ):
        verdict = evaluate(p, EvalContext.build(policy, environment=env))
        assert {f.rule: f.action for f in verdict.findings} == expected


def test_excluded_namespace_is_not_evaluated() -> None:
    p = clean_pod("kube-system")
    _sc(p)["privileged"] = True
    verdict = evaluate(p, ctx())
    assert verdict.excluded
    assert verdict.findings == ()
    assert verdict.allowed


def test_every_finding_reported_at_once_in_deployment() -> None:
    p = clean_pod()
    spec = p["spec"]
    spec["containers"].append(clean_container("sidecar", image="busybox"))
    spec["hostNetwork"] = True
    d = deployment(p)
    verdict = evaluate(d, ctx())
    assert not verdict.allowed
    paths = {(f.rule, f.path) for f in verdict.enforced}
    assert ("host-namespaces", "spec.template.spec.hostNetwork") in paths
    assert ("image-tag-latest", "spec.template.spec.containers[1].image") in paths
    assert ("image-registry-not-allowed", "spec.template.spec.containers[1].image") in paths
    assert all(f.kind == "Deployment" and f.name == "d" for f in verdict.findings)


def test_command_and_args_are_read_as_one_command_line() -> None:
    p = clean_pod()
    _c(p)["command"] = ["mysql", "-h", "db"]
    _c(p)["args"] = ["-pS3cr3tPassw0rd!x", "-e", "select 1"]
    assert hits(p) == {("plaintext-secret-args", f"{C0}.args[0]")}


def _exception(**annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {
            "name": "legacy",
            "namespace": "team-a",
            "creationTimestamp": "2026-11-01T00:00:00Z",
            "annotations": annotations,
        },
        "spec": {
            "rules": ["run-as-root", "writable-root-filesystem"],
            "match": {"kinds": ["Pod"], "names": ["p*"]},
            "expires": "2026-12-01T00:00:00Z",
            "owner": "ml-platform",
            "reason": "legacy image needs root until it is rebuilt",
        },
    }


def test_exceptions_waive_exactly_their_rules_only_while_active() -> None:
    from datetime import UTC, datetime

    from airlock.model import ExceptionRecord

    p = clean_pod()
    _sc(p).update(runAsUser=0, readOnlyRootFilesystem=False, privileged=True)
    approved = ExceptionRecord.from_object(
        _exception(**{"airlock.dev/created-by": "alice", "airlock.dev/approved-by": "bob"})
    )
    self_approved = ExceptionRecord.from_object(
        _exception(**{"airlock.dev/created-by": "alice", "airlock.dev/approved-by": "alice"})
    )
    during = datetime(2026, 11, 20, tzinfo=UTC)
    after = datetime(2026, 12, 2, tzinfo=UTC)

    def waived(rec: ExceptionRecord, now: datetime) -> dict[str, str | None]:
        verdict = evaluate(p, ctx(exceptions=[rec], now=now))
        return {f.rule: f.exempted_by for f in verdict.findings}

    assert waived(approved, during) == {
        "run-as-root": "team-a/legacy",
        "writable-root-filesystem": "team-a/legacy",
        "privileged-container": None,  # not named by the exception: still enforced
    }
    assert set(waived(self_approved, during).values()) == {None}
    assert set(waived(approved, after).values()) == {None}
    verdict = evaluate(p, ctx(exceptions=[approved], now=during))
    assert [f.rule for f in verdict.enforced] == ["privileged-container"]


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("s3://models-dev/llama#sig={t}", "s3://models-dev/llama"),
        ("s3://models-dev/{t}/weights", "s3://models-dev/…/weights"),
        ("s3://models-dev/llama?X-Amz-Signature={t}", "s3://models-dev/llama"),
        ("s3://ci:{t}@models-dev/x", "s3://models-dev/x"),
        ("hf://models-dev/{t}", "hf://models-dev/…"),
        ("gs://models-dev/ghp_{t}/x", "gs://models-dev/…/x"),
        ("s3://svc:{t}@models-dev", "s3://models-dev"),
        ("s3://AKIA:abc/{t}@models-dev/llama", "s3://models-dev/llama"),
        ("s3://svc:Kx9?{t}@models-dev/x", "s3://models-dev/x"),
        ("s3://svc:Kx9#{t}@models-dev/x", "s3://models-dev/x"),
    ],
)
def test_a_store_uri_in_a_message_never_shows_what_could_be_a_credential(
    uri: str, shown: str
) -> None:
    token = "Zx8Kq2Wm9Rt4Lp7Nv3Bc6Hd1Fg5Js0AyQw2E"  # random-looking, in no provider's format
    p = clean_pod()
    _c(p)["env"].append({"name": "MODEL_URI", "value": uri.format(t=token)})
    (f,) = [f for f in evaluate(p, ctx()).findings if f.rule == "cross-env-model-source"]
    assert token not in f.message
    assert f" {shown} " in f.message


def test_host_runs_are_cut_as_the_reference_pattern_finds_them() -> None:
    """The service-name parse cuts dotted runs with str.translate and str.split; the regex it
    replaced is the specification, on any string (ASCII or not)."""
    import random
    import re

    from airlock.rules.segregation import _host_tokens

    spec = re.compile(r"[a-z0-9-]+\.[a-z0-9.-]+")
    rng = random.Random(5)  # noqa: S311 - synthetic
    for _ in range(50_000):
        s = "".join(rng.choice("ab-.9 /:@_\n\u0130é\udcfe\x00") for _ in range(rng.randint(0, 24)))
        assert list(_host_tokens(s)) == [(m.start(), m.group()) for m in spec.finditer(s)], s


def test_env_values_are_searched_together_and_each_finding_names_its_own_entry() -> None:
    """The cross-environment rules search a container's env values as one text: each finding
    still names its own entry, past many short entries, entries that are not literal, values
    holding line breaks and values that lower-casing lengthens (İ)."""
    p = clean_pod("ml-prod")
    p["spec"]["containers"][0]["env"] = [
        *({"name": f"N{k}", "value": str(k)} for k in range(12)),
        {"name": "FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "B", "value": "one\nhttp://api.ml-dev.svc:80\nthree"},
        {"name": "C", "value": "s3://models-dev/x"},
        {"name": "D", "value": "db.ml-dev"},
        {"name": "LAST", "value": "x.y"},
    ]
    side = clean_container("side")
    side["env"] = [
        {"name": "A", "value": "\u0130" * 12},
        {"name": "E", "value": "q.ml-dev"},
        {"name": "F", "value": "x.y"},
        {"name": "G", "value": "z.y"},
    ]
    p["spec"]["containers"].append(side)
    found = {h for h in hits(p) if h[0].startswith("cross-env")}
    assert found == {
        ("cross-env-service-reference", f"{C0}.env[13].value"),
        ("cross-env-model-source", f"{C0}.env[14].value"),
        ("cross-env-service-reference", f"{C0}.env[15].value"),
        ("cross-env-service-reference", "spec.containers[1].env[1].value"),
    }
    messages = [f.message for f in evaluate(p, ctx()).findings if f.path.endswith("env[15].value")]
    assert messages == ["references Service db.ml-dev in namespace ml-dev of environment dev "
                        "from environment prod"]  # fmt: skip


def test_service_references_follow_each_context_namespace_map() -> None:
    """What a namespace's environment is comes from the context in hand: contexts built one
    after another (as the controller does when namespaces change) are never confused."""
    p = clean_pod("ml-prod")
    _env("URL", "http://api.data.svc:80")(p)
    prod = EvalContext.build(POLICY, namespace_env={"ml-prod": "prod", "data": "prod"})
    dev = EvalContext.build(POLICY, namespace_env={"ml-prod": "prod", "data": "dev"})
    for _ in range(2):
        assert "cross-env-service-reference" not in rules_of(p, prod)
        assert "cross-env-service-reference" in rules_of(p, dev)
        again = EvalContext.build(POLICY, namespace_env={"ml-prod": "prod", "data": "dev"})
        assert "cross-env-service-reference" in rules_of(p, again)


def test_a_storage_uri_never_spans_two_env_values_or_a_line_break() -> None:
    """A value ending in a scheme and the next one starting with "://" are two values, not a
    URI; neither is a scheme, a line break, then "://" inside one value."""
    for env in (
        [{"name": "BACKEND", "value": "s3"}, {"name": "SUFFIX", "value": "://models-prod/x"}],
        [{"name": "BACKEND", "value": "s3\n://models-prod/x"}],
    ):
        p = clean_pod("ml-dev")
        p["spec"]["containers"][0]["env"] = env
        assert "cross-env-model-source" not in rules_of(p)
    p = clean_pod("ml-dev")
    _env("BACKEND", "s3://models-prod/x")(p)
    assert ("cross-env-model-source", f"{C0}.env[1].value") in hits(p)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("S3A://Bucket/k", [("S3A://Bucket/k", 0)]),
        ("x=WebHdfs://nn:9870/p", [("WebHdfs://nn:9870/p", 2)]),
        ("s3://a/gs://b", [("s3://a/gs://b", 0), ("gs://b", 7)]),  # one inside the other
        ("a-s3://b c,gs://d;hf://e", [("s3://b", 2), ("gs://d", 11), ("hf://e", 18)]),
        ("'pvc://claim/x' minio://h/b\"", [("pvc://claim/x", 1), ("minio://h/b", 16)]),
        ("xs3://b 9gs://b s3a3://b http://h/s3 s3:/b s3:// s3://\n", []),
        ("abcwebhdfs://h", []),  # the whole alphanumeric run is the scheme, or there is none
        ("\u017f3://b", []),  # a long s is no "s" (ASCII schemes, ASCII case)
    ],
)
def test_storage_uris_are_read_with_their_whole_scheme(text: str, want: list[Any]) -> None:
    from airlock.rules.segregation import storage_uris

    assert list(storage_uris(text)) == want


def test_every_storage_scheme_is_read_with_its_length() -> None:
    from airlock.rules.segregation import _STORAGE_SCHEMES, storage_uris

    for scheme in _STORAGE_SCHEMES:
        for written in (scheme, scheme.upper()):
            assert storage_uris(f"v={written}://b/k") == ((f"{written}://b/k", 2),)


def test_a_namespace_name_that_is_not_utf8_hides_no_other_namespace() -> None:
    """A namespace named with a lone surrogate (a scanned manifest's "\\udcfe" escape) cannot
    be matched by a host name; the namespaces beside it must still be."""
    for junk in ("x\udcfe", "\ud800", "caf\u00e9"):
        ns_env = {"ml-dev": "dev", "ml-prod": "prod", junk: "prod"}
        context = EvalContext.build(POLICY, namespace_env=ns_env)
        p = clean_pod("ml-dev")
        _env("URL", "http://db.ml-prod:5432")(p)
        assert ("cross-env-service-reference", f"{C0}.env[1].value") in hits(p, context), junk


def _memo_texts() -> str:
    """Everything the cross-environment rules and the image parse remember, as text."""
    import gc

    from airlock.rules import base, segregation

    memos = [m for m in vars(segregation).values() if isinstance(m, segregation._HashMemo)]
    assert len(memos) >= 2
    held = [repr(m._found) for m in memos]
    caches = (segregation._storage_uris, segregation._service_namespaces, segregation._shown_path)
    for cache in (base._cached_image, *caches):
        held += [repr(o) for o in gc.get_referents(cache)]
    return repr(segregation._FINDERS) + "".join(held)


def test_no_memo_of_the_cross_environment_rules_keeps_a_credential() -> None:
    """A container's env values are searched together. What is remembered of them between
    requests holds no value: neither a credential that was reported, nor one that was not (a
    short password, a random value under a neutral name, a token the policy allows), nor a
    URL's userinfo."""
    from airlock.rules import segregation

    token = "hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq"
    unreported = [
        "Pw9!x",
        "Zq8Kp3Lm7Xw2Rt9V",
        "s3://AKIA" + "EXAMPLE:" + "Zq8Kp3Lm7Xw2@models-prod/m",
    ]
    allowing = load_policy(
        {
            **POLICY.model_dump(by_alias=True, exclude_none=True),
            "detectors": {"allowValues": ["^hf_"]},
        }
    )
    for context, reported in (
        (ctx(), True),
        (EvalContext.build(allowing, namespace_env=NS_ENV), False),
    ):
        for extra in (token, *unreported):
            p = clean_pod("ml-dev")
            p["spec"]["containers"][0]["env"] = [
                {"name": "MODEL_URI", "value": "s3://models-prod/llama"},
                {"name": "DB", "value": "postgres.ml-prod.svc"},
                {"name": "SETTING", "value": extra},
            ]
            for _ in range(2):
                found = rules_of(p, context)
                assert {"cross-env-model-source", "cross-env-service-reference"} <= found
            if extra == token:  # reported, unless the policy allows it
                assert ("plaintext-secret-env" in found) is reported
            assert extra not in _memo_texts()
    # a list found clean is remembered, its parse with it
    p = clean_pod("ml-dev")
    p["spec"]["containers"][0]["env"] = [
        {"name": "MODEL_URI", "value": "s3://models-prod/llama"},
        {"name": "DB", "value": "postgres.ml-prod.svc"},
    ]
    before = segregation._env_storage_uris.hits
    for _ in range(3):
        assert {"cross-env-model-source", "cross-env-service-reference"} <= rules_of(p)
    assert segregation._env_storage_uris.hits > before


def test_a_reference_inside_a_credential_is_still_found_when_remembered() -> None:
    """A URL with a password names a Service: the credentials rule reports the value, and the
    cross-environment rules (which do not remember a container holding a credential) still
    read the reference in it, at its own entry, in the order of the entries, every time."""
    secret = "postgres://admin:" + "Zq9rT4vX2mLp" + "@db.ml-prod.svc:5432/app"
    store = "s3://models-prod/" + "x?sig=" + "Zq9rT4vX2mLp"
    p = clean_pod("ml-dev")
    p["spec"]["containers"][0]["env"] = [
        {"name": "DATABASE_URL", "value": secret},
        {"name": "A", "value": "api.ml-prod.svc"},
        {"name": "MODEL", "value": store},
        {"name": "B", "value": "s3://models-prod/y"},
        {
            "name": "CONFIG",
            "value": "uri=s3://models-prod/z token=hf_" + "Qx7Lm2Np9Rt4Vw8Yz3Bc6Df1Gh5Jk0Ms2Pq",
        },
    ]
    expected = {
        ("cross-env-model-source", f"{C0}.env[4].value"),
        ("plaintext-secret-env", f"{C0}.env[4].value"),
        ("cross-env-service-reference", f"{C0}.env[0].value"),
        ("cross-env-service-reference", f"{C0}.env[1].value"),
        ("cross-env-model-source", f"{C0}.env[2].value"),
        ("cross-env-model-source", f"{C0}.env[3].value"),
        ("plaintext-secret-env", f"{C0}.env[0].value"),
    }
    for _ in range(3):
        assert expected <= hits(p)
    order = [f.path for f in evaluate(p, ctx()).findings if f.rule.startswith("cross-env")]
    assert order == sorted(order)  # in the order of the entries, as read one by one


def test_an_image_reference_with_a_password_is_neither_quoted_nor_remembered() -> None:
    """``user:password@registry/…`` is not a valid reference: the finding names it without the
    userinfo (a password may hold '/' or '@'), and no memo keeps the string."""
    import gc

    from airlock.rules import base

    password = "S3cr3t" + "Passw0rdXyz"
    digest = "sha256:" + "ab" * 32
    for image, shown in (
        (f"user:{password}@registry.corp.example/dev/x:1", "…@registry.corp.example/dev/x:1"),
        (f"user:{password}/x@registry/x@{digest}", f"…@registry/x@{digest}"),
    ):
        p = clean_pod("ml-prod")
        p["spec"]["containers"][0]["image"] = image
        found = evaluate(p, ctx()).findings
        messages = [f.message for f in found if f.path == f"{C0}.image"]
        assert f"image {shown!r} is not a valid image reference" in messages
        assert not any(password in f.message or password in f.path for f in found)
        assert not any(password in repr(o) for o in gc.get_referents(base._cached_image))
    assert base.cached_image(f"busybox@{digest}") is not None  # a digest is no userinfo


def test_a_password_in_a_url_is_never_quoted_as_a_service_name() -> None:
    """``postgres://admin:xq.ml-prod@db…``: the password has the shape of a Service name in
    another environment. What stands before a URL's "@" is userinfo, never a host: the
    reference to the real host is reported, the password appears in no finding (env, args,
    ConfigMap)."""
    password = "xq" + ".ml-prod"
    url = f"postgres://admin:{password}@db.ml-prod.svc:5432/app"
    p = clean_pod("ml-dev")
    p["spec"]["containers"][0]["env"].append({"name": "DB", "value": url})
    p["spec"]["containers"][0]["args"] = ["--db", url]
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ml-dev"},
        "data": {"db": url},
    }
    for obj, path in ((p, f"{C0}.env[1].value"), (p, f"{C0}.args[1]"), (cm, "data.db")):
        found = evaluate(obj, ctx()).findings
        refs = [f.message for f in found if f.rule == "cross-env-service-reference"]
        assert any(f.path == path for f in found if f.rule == "cross-env-service-reference")
        assert refs
        assert all("Service db.ml-prod.svc " in m for m in refs), refs
        assert not any(password in f.message or password in f.path for f in found)
