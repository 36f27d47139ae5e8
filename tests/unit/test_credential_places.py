"""Where credentials are looked for, names as evidence, and redaction in the new places.

Every credential is synthetic and assembled at run time ("hf" "_" ...), so no token-shaped
literal sits in this file.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import string
from typing import Any

import pytest
from airlock.detectors import DEFAULT_DETECTORS as D
from airlock.engine import Verdict, credential_configmaps, evaluate
from airlock.rules import RULE_INFO
from airlock.scan.jsonfmt import format_json
from airlock.scan.loader import LoadResult, load_text
from airlock.scan.result import run_scan
from airlock.scan.sarif import format_sarif
from airlock.scan.text import format_text
from airlock.state import EvalContext

from tests.support.builders import clean_pod, deployment

_rng = random.Random(23)  # noqa: S311 - synthetic test data, not keys
ALNUM = string.ascii_letters + string.digits


def rnd(n: int) -> str:
    return "".join(_rng.choice(ALNUM) for _ in range(n))


def hf_token() -> str:
    return "hf" + "_" + rnd(34)


CTX = EvalContext.build(None)


# -- names are evidence, not verdict ---------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "os.environ.get('API_TOKEN')",  # code
        "getToken(config).value",
        "the token is rotated by the platform team every week",  # prose
        "/var/run/secrets/tokens/api",  # path
        "https://auth.corp.example/oauth/token",  # URL without credentials
        "&lt;YOURPASSWORD&gt;",  # escaped placeholder
        "'$API_TOKEN'",  # shell reference in quotes
        "$(API_TOKEN)",  # Kubernetes reference
        "${API_TOKEN}",
        "input[type=password] { color: red }",  # CSS selector
    ],
)
def test_credential_names_with_non_secret_values_are_not_findings(value: str) -> None:
    for name in ("API_TOKEN", "DB_PASSWORD", "CLIENT_SECRET"):
        assert D.check_env(name, value) is None, (name, value)


def test_provider_formats_are_findings_under_any_name() -> None:
    token = hf_token()
    for name in ("APP_CONFIG_1", "MODEL_NAME", "X", "API_TOKEN"):
        det = D.check_env(name, token)
        assert det is not None
        assert det.kind == "Hugging Face token"
        assert det.rule == "huggingface-token"
    assert [d.kind for _i, d in D.check_args(["serve", "--model", "m", token])] == [
        "Hugging Face token"
    ]


def test_lookalike_of_a_format_is_not_reported_by_name() -> None:
    # "gh" "p_" + 36 characters whose checksum does not hold: refused by the GitHub rule
    lookalike = "gh" + "p_" + rnd(36)
    assert D.check_env("GITHUB_TOKEN", lookalike) is None


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (f"Server=tcp:db.corp.example,1433;Database=ml;User ID=svc;Password={rnd(16)};", None),
        (f"Driver={{ODBC Driver 18}};Server=db;Uid=svc;Pwd={rnd(14)};", None),
        (f"postgresql://trainer:{rnd(16)}@db.ml-data:5432/features", "password in URL"),
        (f"postgresql+psycopg2://trainer:{rnd(16)}@db/features?sslmode=require", None),
        (f"mongodb+srv://svc:{rnd(16)}@cluster0.corp.example/ml", "password in URL"),
        (f"jdbc:postgresql://db:5432/app?user=svc&password={rnd(14)}", None),
        (
            "Endpoint=https://cfg.azconfig.io;Id=" + rnd(12) + ";Sec" + "ret=" + rnd(44),
            "Azure App Configuration connection string",
        ),
        (f"https://:{rnd(20)}@redis.corp.example:6380", "password in URL"),
        # a documentation word decorated into a weak password is a password someone chose
        ("mysql://api:" + "passW0rd!" + "@db.corp.example:3306/api", "password in URL"),
    ],
)
def test_connection_strings_and_urls_with_passwords_are_findings(
    value: str, kind: str | None
) -> None:
    for name in ("APP_CONFIG_1", "DATABASE_URL", "SETTINGS"):
        det = D.check_env(name, value)
        assert det is not None, (name, value[:20])
        if kind is not None:
            assert det.kind == kind


@pytest.mark.parametrize(
    "value",
    [
        "Server=db;Database=ml;User ID=svc;Password=${DB_PASSWORD};",
        "postgresql://trainer:$(DB_PASSWORD)@db:5432/features",
        "postgresql://db.ml-data:5432/features",
        "postgresql://user:" + "password" + "@db.ml-data:5432/features",  # the word itself
        "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://x/",
    ],
)
def test_connection_strings_without_a_literal_password_are_not(value: str) -> None:
    assert D.check_env("APP_CONFIG_1", value) is None


def test_weak_password_assigned_inside_a_value() -> None:
    det = D.check_env("JAVA_OPTS", "-Xmx4g -Ddb.password=letmein42 -Dlog=info")
    assert det is not None
    assert det.kind == "password"


def test_base64_encoded_token_is_found() -> None:
    token = hf_token()
    encoded = base64.b64encode(token.encode()).decode()
    det = D.check_env("APP_CONFIG_1", encoded)
    assert det is not None
    assert det.kind == "base64-encoded Hugging Face token"


# -- new places: annotations, binaryData, PolicyException and BaselinePolicy text ----------


def _redacted_everywhere(verdict: Verdict, secret: str) -> None:
    for f in verdict.findings:
        for shown in (f.message, f.path, repr(f)):
            assert secret not in shown
            assert secret[3:20] not in shown


def _text_rule_paths(verdict: Verdict) -> list[str]:
    """Where the ConfigMap-and-free-text rule (annotations too) reported a credential."""
    return [f.path for f in verdict.findings if f.rule == "plaintext-secret-configmap"]


def test_workload_annotation_holding_a_token_is_found_and_redacted() -> None:
    token = hf_token()
    pod = clean_pod("ml-prod")
    pod["metadata"]["annotations"] = {"ci.corp.example/deploy-token": token}
    verdict = evaluate(pod, CTX)
    assert 'metadata.annotations["ci.corp.example/deploy-token"]' in _text_rule_paths(verdict)
    _redacted_everywhere(verdict, token)


def test_pod_template_annotation_holding_a_token_is_found_and_redacted() -> None:
    """Every Pod a Deployment or a CronJob creates carries its template's annotations."""
    token = hf_token()
    pod = clean_pod("ml-prod")
    pod["metadata"]["annotations"] = {"ci.corp.example/deploy-token": token}
    dep = deployment(pod)
    dep["spec"]["template"]["metadata"]["annotations"] = pod["metadata"]["annotations"]
    verdict = evaluate(dep, CTX)
    assert 'spec.template.metadata.annotations["ci.corp.example/deploy-token"]' in (
        _text_rule_paths(verdict)
    )
    _redacted_everywhere(verdict, token)
    # the Pod itself: its own annotations, reported once
    own = [f for f in evaluate(pod, CTX).findings if "annotations" in f.path]
    assert [f.path for f in own] == ['metadata.annotations["ci.corp.example/deploy-token"]']
    # a template's last-applied-configuration or non-string value is not read
    dep["spec"]["template"]["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": token,
        "ci.corp.example/replicas": 3,
    }
    assert [f for f in evaluate(dep, CTX).findings if "annotations" in f.path] == []


def test_cronjob_job_template_annotation_holding_a_token_is_found() -> None:
    token = hf_token()
    pod = clean_pod("ml-prod")
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "ml-prod"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {
                "metadata": {"annotations": {"ci.corp.example/token": token}},
                "spec": {"template": {"metadata": {}, "spec": pod["spec"]}},
            },
        },
    }
    verdict = evaluate(cronjob, CTX)
    assert _text_rule_paths(verdict) == [
        'spec.jobTemplate.metadata.annotations["ci.corp.example/token"]'
    ]
    _redacted_everywhere(verdict, token)


def test_last_applied_configuration_is_not_scanned_twice() -> None:
    token = hf_token()
    pod = clean_pod("ml-prod")
    pod["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"token": token})
    }
    assert [f for f in evaluate(pod, CTX).findings if "annotations" in f.path] == []


def _configmap(**fields: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "trainer-config", "namespace": "ml-prod"},
        **fields,
    }


def test_configmap_binary_data_is_decoded_and_redacted() -> None:
    token = hf_token()
    blob = base64.b64encode(f"HF_TOKEN={token}\n".encode()).decode()
    cm = _configmap(
        binaryData={"app.env": blob, "weights.bin": base64.b64encode(b"\x00\xff").decode()}
    )
    verdict = evaluate(cm, CTX)
    assert [(f.rule, f.path) for f in verdict.findings] == [
        ("plaintext-secret-configmap", 'binaryData["app.env"]')
    ]
    assert verdict.credential_keys == frozenset({"app.env"})
    assert credential_configmaps([verdict]) == {
        ("ml-prod", "trainer-config"): frozenset({"app.env"})
    }
    _redacted_everywhere(verdict, token)
    assert blob not in str(verdict)


def test_engine_gives_the_keys_for_the_second_phase() -> None:
    token = hf_token()
    cm = _configmap(data={"HF_TOKEN": token, "LOG_LEVEL": "info"})
    verdict = evaluate(cm, CTX)
    assert verdict.credential_keys == frozenset({"HF_TOKEN"})
    pod = clean_pod("ml-prod")
    pod["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "trainer-config"}}]
    second = EvalContext.build(None, credential_configmaps=credential_configmaps([verdict]))
    assert ("plaintext-secret-configmap", "spec.containers[0].envFrom[0].configMapRef") in {
        (f.rule, f.path) for f in evaluate(pod, second).findings
    }


def test_the_same_configmap_defined_twice_flags_the_keys_of_both() -> None:
    first = evaluate(_configmap(data={"HF_TOKEN": hf_token()}), CTX)
    second = evaluate(_configmap(data={"WANDB_API_KEY": rnd(40).lower()}), CTX)
    clean = evaluate(_configmap(data={"LOG_LEVEL": "info"}), CTX)
    assert credential_configmaps([first, clean, second]) == {
        ("ml-prod", "trainer-config"): frozenset({"HF_TOKEN", "WANDB_API_KEY"})
    }


def _exception(reason: str, owner: str = "team-ml") -> dict[str, Any]:
    return {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "legacy-root", "namespace": "ml-prod"},
        "spec": {
            "rules": ["run-as-root"],
            "match": {"kinds": ["Pod"], "names": ["legacy-*"]},
            "expires": "2099-01-01T00:00:00Z",
            "owner": owner,
            "reason": reason,
        },
    }


def test_policy_exception_text_is_scanned_and_redacted() -> None:
    token = hf_token()
    verdict = evaluate(_exception(f"temporary, the job pulls with {token} until rotation"), CTX)
    assert [(f.rule, f.path) for f in verdict.findings] == [
        ("plaintext-secret-configmap", "spec.reason")
    ]
    _redacted_everywhere(verdict, token)
    # a clean exception is not judged as a workload (no owner-label or image rules)
    assert (
        evaluate(_exception("vendor image runs as root until the 2.0 release"), CTX).findings == ()
    )


def test_baseline_policy_strings_are_scanned_but_not_its_allow_list() -> None:
    token = hf_token()
    policy = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "BaselinePolicy",
        "metadata": {"name": "default"},
        "spec": {
            "environments": [{"name": "prod", "mode": "enforce", "description": f"use {token}"}],
            "detectors": {"allowValues": ["^hf_[A-Za-z]{34}$"], "extraCredentialNames": []},
        },
    }
    verdict = evaluate(policy, CTX)
    assert [f.path for f in verdict.findings] == ["spec.environments[0].description"]
    _redacted_everywhere(verdict, token)


def _scan_outputs(docs: list[dict[str, Any]]) -> str:
    text = "---\n".join(json.dumps(d) + "\n" for d in docs)
    docs_loaded, errors = load_text(text, "objects.yaml")
    result = run_scan(LoadResult(docs_loaded, errors, 1), evaluate)
    return "\n".join((format_text(result), format_json(result), format_sarif(result, RULE_INFO)))


def test_scan_reports_never_show_the_new_places_in_clear() -> None:
    tokens = [hf_token() for _ in range(3)]
    pod = clean_pod("ml-prod")
    pod["metadata"]["annotations"] = {"ci.corp.example/token": tokens[0]}
    blob = base64.b64encode(f"token: {tokens[1]}\n".encode()).decode()
    cm = _configmap(binaryData={"config.yaml": blob})
    exc = _exception(f"pulls with {tokens[2]}")
    out = _scan_outputs([pod, copy.deepcopy(cm), exc])
    for token in tokens:
        assert token not in out
        assert token[3:20] not in out
    assert blob not in out
    assert out.count("plaintext-secret-configmap") >= 3


def test_this_stops_new_places_are_found_and_never_shown_in_clear() -> None:
    """XML configuration, a PostgreSQL password file, redis.conf, a URL query parameter and a
    generated password with symbols: found, and in no report (text, JSON, SARIF) in clear."""
    secrets = [rnd(16) for _ in range(4)] + ["x7]Lq(2" + rnd(12) + "->k"]
    cm = _configmap(
        data={
            "settings.xml": f"<settings>\n  <password>{secrets[0]}</password>\n</settings>\n",
            ".pgpass": f"db.corp.example:5432:app:app:{secrets[1]}\n",
            "redis.conf": f"bind 0.0.0.0\nrequirepass {secrets[2]}\n",
        }
    )
    pod = clean_pod("ml-prod")
    pod["spec"]["containers"][0]["env"] = [
        {"name": "FEED_URL", "value": f"https://feed.example/v1?api_key={secrets[3]}"},
        {"name": "DB_PASSWORD", "value": secrets[4]},
    ]
    verdicts = [evaluate(cm, CTX), evaluate(pod, CTX)]
    paths = {f.path for v in verdicts for f in v.findings if f.rule.startswith("plaintext")}
    assert {'data["settings.xml"]', 'data[".pgpass"]', 'data["redis.conf"]'} <= paths
    assert {"spec.containers[0].env[0].value", "spec.containers[0].env[1].value"} <= paths
    out = _scan_outputs([cm, pod])
    for secret in secrets:
        for v in verdicts:
            _redacted_everywhere(v, secret)
        assert secret not in out
        assert secret[3:14] not in out


def test_annotations_of_digests_and_secrets_integrations_are_not_credentials() -> None:
    """Helm's checksum/secret holds a digest of the Secret; Vault Agent Injector's annotations
    hold where the secret is kept (their names end in a file name the user chose). A token
    pasted into one is still found by its format."""
    import hashlib

    token = hf_token()
    pod = clean_pod("ml-prod")
    pod["metadata"]["annotations"] = {
        "checksum/secret": hashlib.sha256(token.encode()).hexdigest(),
        "vault.hashicorp.com/agent-inject": "true",
        "vault.hashicorp.com/agent-inject-secret-db-creds": "database/creds/db-app",
        "vault.hashicorp.com/agent-inject-template-db-creds": (
            '{{- with secret "database/creds/db-app" -}}'
            "postgresql://{{ .Data.username }}:{{ .Data.password }}@db:5432/app{{- end }}"
        ),
        "secret.reloader.stakater.com/reload": "db-credentials,hf-token",
    }
    assert [f.rule for f in evaluate(pod, CTX).findings if f.rule.startswith("plaintext")] == []
    pod["metadata"]["annotations"]["vault.hashicorp.com/agent-inject-secret-hf"] = token
    found = [f for f in evaluate(pod, CTX).findings if f.rule.startswith("plaintext")]
    assert [f.path for f in found] == [
        'metadata.annotations["vault.hashicorp.com/agent-inject-secret-hf"]'
    ]
