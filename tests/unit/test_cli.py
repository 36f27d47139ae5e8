"""`airlock` end to end: exit codes, formats, inputs, policy flags, explain, version, redaction.

Most tests call ``main(argv)`` in-process (fast); two run the installed console script.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from airlock import __version__
from airlock.cli import COMMANDS, Command, _use_color, build_parser, main
from airlock.rules import RULE_INFO

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "scan"
CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ai-workloads"
AIRLOCK = Path(sys.executable).parent / "airlock"


@pytest.fixture(autouse=True)
def _in_fixtures(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES)
    monkeypatch.delenv("NO_COLOR", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def scan_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code, out, _ = run(capsys, "scan", "--format", "json", *argv)
    return code, json.loads(out)


def hits(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["name"], f["rule"], f["path"]) for f in report["findings"]}


# ------------------------------------------------------------------------------ exit codes


def test_clean_manifest_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "clean.yaml")
    assert code == 0
    assert out.splitlines()[0] == "No findings."
    assert err == ""


def test_violations_exit_1_and_name_object_rule_and_path(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "scan", "--no-color", "violating.yaml")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == (
        "Deployment ml-dev/trainer (violating.yaml, document 1, line 2) [environment default]"
    )
    assert any(
        line.startswith("  DENY   critical privileged-container  ")
        and "spec.template.spec.containers[0].securityContext.privileged: " in line
        for line in lines
    )
    assert "Pod ml-dev/debug (violating.yaml, document 2, line 34) [environment default]" in lines
    assert any("host-namespaces  spec.hostNetwork: " in line for line in lines)
    assert lines[-1].startswith("2 objects scanned in 1 file: ")


def test_unusable_input_exits_2_with_every_error_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "broken.yaml", "missing-kind.yaml", "nowhere.yaml")
    assert code == 2
    errors = err.splitlines()
    assert errors[0] == (
        "airlock: error: broken.yaml, document 2: line 8: expected a Kubernetes object "
        "(a mapping), found a list"
    )
    assert errors[1].startswith(
        "airlock: error: broken.yaml, document 3: line 15: mapping values are not allowed"
    )
    assert errors[2:] == [
        "airlock: error: missing-kind.yaml, document 1: line 1: missing kind",
        "airlock: error: missing-kind.yaml, document 2: line 5: missing apiVersion",
        "airlock: error: nowhere.yaml: no such file or directory",
    ]
    # the readable document is still reported, and the summary counts the errors
    assert out.splitlines()[-1].endswith("; 5 input errors.")


def test_input_errors_win_over_findings(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "violating.yaml", "broken.yaml")
    assert code == 2
    assert "broken.yaml, document 3" in err


def test_yaml_bomb_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "bomb.yaml")
    assert code == 2
    assert err.startswith("airlock: error: bomb.yaml, document 1: line 1: YAML aliases expand")


def test_fail_on_audit_counts_audit_findings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    policy = tmp_path / "audit.yaml"
    policy.write_text(
        "apiVersion: airlock.dev/v1alpha1\nkind: BaselinePolicy\nmetadata: {name: default}\n"
        "spec:\n  environments:\n    - {name: dev, mode: audit}\n"
    )
    assert run(capsys, "scan", "--policy", str(policy), "violating.yaml")[0] == 0
    assert (
        run(capsys, "scan", "--policy", str(policy), "--fail-on", "warn", "violating.yaml")[0] == 0
    )
    code, out, _ = run(
        capsys, "scan", "--policy", str(policy), "--fail-on", "audit", "violating.yaml"
    )
    assert code == 1
    assert "  AUDIT  critical privileged-container  " in out


# ------------------------------------------------------------------------------ formats


def test_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan_json(capsys, "violating.yaml", "clean.yaml")
    assert code == 1
    priv = [f for f in report["findings"] if f["rule"] == "privileged-container"]
    assert len(priv) == 1
    assert priv[0] == {
        **priv[0],
        "kind": "Deployment",
        "namespace": "ml-dev",
        "name": "trainer",
        "path": "spec.template.spec.containers[0].securityContext.privileged",
        "severity": "critical",
        "action": "enforce",
        "file": "violating.yaml",
        "document": 1,
        "line": 26,
        "environment": "default",
    }
    for key in ("message", "fix", "references", "family"):
        assert priv[0][key]
    assert ("debug", "host-namespaces", "spec.hostNetwork") in hits(report)
    order = [(f["file"], f["document"], f["path"], f["rule"]) for f in report["findings"]]
    assert order == sorted(order)
    assert report["summary"]["objects"] == 4
    assert report["summary"]["files"] == 2
    assert report["summary"]["exit_code"] == 1


def test_sarif_report(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", "--format", "sarif", "violating.yaml")
    assert code == 1
    sarif = json.loads(out)
    assert sarif["version"] == "2.1.0"
    assert "$schema" in sarif
    (run_,) = sarif["runs"]
    driver = run_["tool"]["driver"]
    assert (driver["name"], driver["version"]) == ("airlock", __version__)
    assert [r["id"] for r in driver["rules"]] == list(RULE_INFO)
    for rule in driver["rules"]:
        info = RULE_INFO[rule["id"]]
        assert rule["shortDescription"]["text"] == info.title
        assert rule["fullDescription"]["text"] == info.reason
        assert info.fix in rule["help"]["text"]
        assert info.family in rule["properties"]["tags"]
        assert rule["properties"]["security-severity"] in {"9.5", "8.0", "5.5", "3.0"}
    assert run_["results"]
    for res in run_["results"]:
        assert driver["rules"][res["ruleIndex"]]["id"] == res["ruleId"]
        assert res["level"] == "error"
        assert res["message"]["text"]
        assert res["partialFingerprints"]
        phys = res["locations"][0]["physicalLocation"]
        assert phys["artifactLocation"]["uri"] == "violating.yaml"
        assert phys["region"]["startLine"] >= 2
    priv = next(r for r in run_["results"] if r["ruleId"] == "privileged-container")
    assert priv["locations"][0]["physicalLocation"]["region"]["startLine"] == 26
    assert priv["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == (
        "Deployment/ml-dev/trainer"
    )


def test_quiet_prints_only_the_summary(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "scan", "-q", "violating.yaml")
    assert code == 1
    assert out.count("\n") == 1
    assert out.startswith("2 objects scanned in 1 file: ")


def test_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "report.sarif"
    code, out, err = run(capsys, "scan", "-o", "sarif", "--output", str(target), "violating.yaml")
    assert code == 1
    assert out == ""
    assert err.startswith("2 objects scanned in 1 file: ")
    assert json.loads(target.read_text())["version"] == "2.1.0"


def test_unwritable_output_is_an_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "scan", "--output", str(tmp_path / "no" / "dir.txt"), "clean.yaml")
    assert code == 2
    target = tmp_path / "no" / "dir.txt"
    assert err == f"airlock: error: {target}: cannot write: No such file or directory\n"


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_a_tty_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["scan", "x.yaml"])
    assert _use_color(args, _Stream(tty=True)) is True
    assert _use_color(args, _Stream(tty=False)) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert _use_color(args, _Stream(tty=True)) is False
    monkeypatch.delenv("NO_COLOR")
    no_color = build_parser().parse_args(["scan", "--no-color", "x.yaml"])
    assert _use_color(no_color, _Stream(tty=True)) is False


# ------------------------------------------------------------------------------ inputs


def test_stdin_helm_template_output(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "helm.yaml").read_text()))
    code, out, _ = run(capsys, "scan", "--no-color", "-")
    assert code == 1
    assert out.splitlines()[0] == (
        "Deployment serving/llm (- (llm/templates/deployment.yaml), document 3, line 11) "
        "[environment default]"
    )
    monkeypatch.setattr(sys, "stdin", io.StringIO((FIXTURES / "helm.yaml").read_text()))
    _, report = scan_json(capsys, "-")
    tag = next(f for f in report["findings"] if f["rule"] == "image-tag-latest")
    assert (tag["file"], tag["source"], tag["document"], tag["line"]) == (
        "-",
        "llm/templates/deployment.yaml",
        3,
        27,
    )


def test_directory_is_scanned_recursively(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan_json(capsys, "tree")
    assert code == 1
    assert {f["name"] for f in report["findings"]} == {"tree-a", "tree-b"}
    assert {f["file"] for f in report["findings"]} == {"tree/a.yaml", "tree/sub/b.yml"}
    assert report["summary"]["files"] == 2  # kustomization.yaml, notes.txt and .hidden/ skipped


def test_list_items_are_scanned_with_item_index(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = scan_json(capsys, "list.yaml")
    listed = [f for f in report["findings"] if f["name"] == "listed"]
    assert listed
    assert {(f["document"], f["item"]) for f in listed} == {(1, 1)}
    assert ("listed", "image-tag-latest", "spec.containers[0].image") in hits(report)
    assert all(not f["path"].startswith("items") for f in listed)


def test_json_input_file(capsys: pytest.CaptureFixture[str]) -> None:
    _, report = scan_json(capsys, "deploy.json")
    assert ("from-json", "image-tag-latest", "spec.containers[0].image") in hits(report)


# ------------------------------------------------------------------------------ policy flags


def test_policy_modes_follow_namespace_environment(capsys: pytest.CaptureFixture[str]) -> None:
    # ml-dev is in "dev" (warn): findings warn, so only --fail-on warn fails the scan
    dev = ("scan", "--policy", "policy.yaml", "--namespace-env", "ml-dev=dev", "violating.yaml")
    code, out, _ = run(capsys, *dev)
    assert code == 0
    assert "  WARN   critical privileged-container  " in out
    assert "DENY" not in out
    assert run(capsys, *dev, "--fail-on", "warn")[0] == 1
    # the same objects in "prod" are denied
    code, out, _ = run(
        capsys,
        "scan",
        "--policy",
        "policy.yaml",
        "--namespace-env",
        "ml-dev=prod",
        "violating.yaml",
    )
    assert code == 1
    assert "  DENY   critical privileged-container  " in out


def test_namespace_env_splits_one_scan(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan_json(
        capsys,
        "--policy",
        "policy.yaml",
        "--namespace-env",
        "ml-dev=dev",
        "--namespace-env",
        "ml-prod=prod",
        "tree",
    )
    assert code == 1
    by_name = {(f["name"], f["environment"], f["action"]) for f in report["findings"]}
    assert by_name == {("tree-a", "dev", "warn"), ("tree-b", "prod", "enforce")}


def test_environment_flag_sets_unknown_namespaces(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = scan_json(capsys, "--policy", "policy.yaml", "--environment", "prod", "tree")
    assert code == 1
    assert {(f["environment"], f["action"]) for f in report["findings"]} == {("prod", "enforce")}
    # without it the policy's defaultEnvironment (dev, warn) applies
    code, report = scan_json(capsys, "--policy", "policy.yaml", "tree")
    assert code == 0
    assert {(f["environment"], f["action"]) for f in report["findings"]} == {("dev", "warn")}


def test_namespace_objects_lend_their_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    ns = tmp_path / "ns.yaml"
    ns.write_text(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ml-prod\n"
        "  labels: {airlock.dev/environment: prod}\n"
    )
    _, report = scan_json(capsys, "--policy", "policy.yaml", str(ns), "tree/sub/b.yml")
    assert {(f["name"], f["environment"]) for f in report["findings"]} == {("tree-b", "prod")}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--namespace-env", "ml-dev"], "expected NAMESPACE=ENVIRONMENT, got 'ml-dev'"),
        (["--namespace-env", "=dev"], "expected NAMESPACE=ENVIRONMENT, got '=dev'"),
        (["--format", "xml"], "invalid choice: 'xml'"),
        (["--fail-on", "off"], "invalid choice: 'off'"),
    ],
)
def test_bad_flags_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = run(capsys, "scan", *argv, "clean.yaml")
    assert code == 2
    assert message in err


def test_undeclared_environments_are_errors(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "scan", "--policy", "policy.yaml", "--environment", "staging", "clean.yaml"
    )
    assert code == 2
    assert err.startswith("airlock: error: environment 'staging' is not declared by the policy")
    assert err.count("\n") == 1
    code, _, err = run(
        capsys, "scan", "--policy", "policy.yaml", "--namespace-env", "ml-dev=stage", "clean.yaml"
    )
    assert code == 2
    assert err.startswith(
        "airlock: error: --namespace-env ml-dev=stage: environment 'stage' is not declared"
    )
    # both wrong: --namespace-env is named first, whether the scan forks or not
    for jobs in ("1", "2"):
        code, _, err = run(
            capsys,
            "scan",
            *("--policy", "policy.yaml", "--environment", "staging", "-j", jobs),
            *("--namespace-env", "ml-dev=stage", "clean.yaml"),
        )
        assert code == 2
        assert err.startswith("airlock: error: --namespace-env ml-dev=stage"), err


def test_invalid_policy_names_file_and_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "--policy", "policy-invalid.yaml", "clean.yaml")
    assert code == 2
    assert out == ""
    assert err.startswith("airlock: error: policy-invalid.yaml: invalid BaselinePolicy: ")
    assert "spec.environments[1].mode" in err
    assert err.count("\n") == 1


def test_missing_policy_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "--policy", "nope.yaml", "clean.yaml")
    assert code == 2
    assert err == "airlock: error: nope.yaml: cannot read: No such file or directory\n"


def test_policy_in_scanned_files_is_validated_not_applied(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # policy.yaml would make ml-dev warn-only; found among the inputs it changes nothing
    code, report = scan_json(capsys, "policy.yaml", "violating.yaml")
    assert code == 1
    assert {f["action"] for f in report["findings"]} == {"enforce"}
    code, _, err = run(capsys, "scan", "policy-invalid.yaml", "clean.yaml")
    assert code == 2
    assert err.startswith("airlock: error: policy-invalid.yaml, document 1: invalid BaselinePolicy")
    assert "spec.environments[1].mode" in err


def _exception(tmp_path: Path, *, approved: bool = True, **spec: Any) -> Path:
    expires = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    annotations = {"airlock.dev/created-by": "alice"}
    if approved:
        annotations["airlock.dev/approved-by"] = "bob"
    obj = {
        "apiVersion": "airlock.dev/v1alpha1",
        "kind": "PolicyException",
        "metadata": {"name": "trainer-gpu", "namespace": "ml-dev", "annotations": annotations},
        "spec": {
            "rules": ["privileged-container"],
            "match": {"kinds": ["Deployment"], "names": ["trainer"]},
            "expires": expires,
            "owner": "research-team",
            "reason": "GPU driver debugging until the node image is fixed",
            **spec,
        },
    }
    path = tmp_path / "exception.json"
    path.write_text(json.dumps(obj))
    return path


def test_policy_exception_among_inputs_waives_its_rule(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exc = _exception(tmp_path)
    code, report = scan_json(capsys, "violating.yaml", str(exc))
    priv = next(f for f in report["findings"] if f["rule"] == "privileged-container")
    assert priv["exempted_by"] == "ml-dev/trainer-gpu"
    assert report["summary"]["findings"]["exempted"] == 1
    assert code == 1  # the other findings still deny
    code, out, _ = run(capsys, "scan", "--show-exempted", "violating.yaml", str(exc))
    assert "  EXEMPT critical privileged-container  " in out
    assert "(exempted by ml-dev/trainer-gpu)" in out
    _, out, _ = run(capsys, "scan", "violating.yaml", str(exc))
    assert "privileged-container" not in out


def test_unapproved_exception_waives_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exc = _exception(tmp_path, approved=False)
    _, report = scan_json(capsys, "violating.yaml", str(exc))
    priv = next(f for f in report["findings"] if f["rule"] == "privileged-container")
    assert "exempted_by" not in priv


def test_invalid_exception_is_an_input_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    exc = _exception(tmp_path, rules=["no-such-rule"])
    code, _, err = run(capsys, "scan", "violating.yaml", str(exc))
    assert code == 2
    assert err.startswith(f"airlock: error: {exc}, document 1: invalid PolicyException: spec.rules")


def test_workload_consuming_a_credential_configmap_is_flagged(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    manifest = tmp_path / "cm.yaml"
    manifest.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: v1
            kind: ConfigMap
            metadata: {{name: creds, namespace: ml-dev}}
            data:
              AWS_ACCESS_KEY_ID: {AWS_KEY}
            ---
            apiVersion: v1
            kind: Pod
            metadata: {{name: reader, namespace: ml-dev}}
            spec:
              containers:
                - name: app
                  image: busybox:1.36
                  envFrom:
                    - configMapRef: {{name: creds}}
            """
        )
    )
    _, report = scan_json(capsys, str(manifest))
    assert ("creds", "plaintext-secret-configmap", "data.AWS_ACCESS_KEY_ID") in hits(report)
    assert (
        "reader",
        "plaintext-secret-configmap",
        "spec.containers[0].envFrom[0].configMapRef",
    ) in hits(report)


# ------------------------------------------------------------------------------ redaction

_SEED = hashlib.sha256(b"airlock test credentials, not real").digest()
HF_TOKEN = "hf_" + hashlib.sha256(_SEED + b"hf").hexdigest()[:34].replace("0", "Q")
AWS_KEY = "AKIA" + hashlib.sha256(_SEED + b"aws").hexdigest()[:16].upper()
_PEM_BODY = base64.b64encode(
    b"".join(hashlib.sha256(_SEED + bytes([i])).digest() for i in range(24))
)
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "\n".join(_PEM_BODY[i : i + 64].decode() for i in range(0, len(_PEM_BODY), 64))
    + "\n-----END RSA PRIVATE KEY-----\n"
)
API_KEY = "sk-" + hashlib.sha256(_SEED + b"api").hexdigest()[:40]


def _secret_manifest(tmp_path: Path) -> Path:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "leaky", "namespace": "ml-dev"},
        "spec": {
            "containers": [
                {
                    "name": "train",
                    "image": "busybox:1.36",
                    "env": [
                        {"name": "HF_TOKEN", "value": HF_TOKEN},
                        {"name": "AWS_ACCESS_KEY_ID", "value": AWS_KEY},
                    ],
                    "args": [f"--api-key={API_KEY}"],
                }
            ]
        },
    }
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "tls", "namespace": "ml-dev"},
        "data": {"key.pem": PEM},
    }
    path = tmp_path / "leaky.yaml"
    path.write_text(json.dumps(pod) + "\n---\n" + json.dumps(cm) + "\n")
    return path


def _fragments() -> list[str]:
    body = _PEM_BODY.decode()
    return [
        HF_TOKEN,
        HF_TOKEN[3:15],
        HF_TOKEN[-12:],
        AWS_KEY,
        AWS_KEY[4:14],
        API_KEY,
        API_KEY[3:15],
        body[:24],
        body[100:124],
    ]


@pytest.mark.parametrize(
    "flags",
    [
        ["--format", "text", "--show-exempted"],
        ["--format", "json"],
        ["--format", "sarif"],
        ["--quiet"],
    ],
)
def test_secrets_never_reach_any_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str]
) -> None:
    manifest = _secret_manifest(tmp_path)
    code, out, err = run(capsys, "scan", *flags, str(manifest))
    assert code == 1
    for fragment in _fragments():
        assert fragment not in out
        assert fragment not in err
    _, report = scan_json(capsys, str(manifest))
    found = hits(report)
    # the secrets were seen (so the check above means something)
    assert ("leaky", "plaintext-secret-env", "spec.containers[0].env[0].value") in found
    assert ("leaky", "plaintext-secret-env", "spec.containers[0].env[1].value") in found
    assert ("leaky", "plaintext-secret-args", "spec.containers[0].args[0]") in found
    assert ("tls", "plaintext-secret-configmap", 'data["key.pem"]') in found


def test_secrets_never_reach_parse_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        f"apiVersion: v1\nkind: ConfigMap\ndata:\n  token: {HF_TOKEN}: {AWS_KEY}\n"
        f"  other: [{API_KEY}\n"
    )
    code, out, err = run(capsys, "scan", str(broken))
    assert code == 2
    assert err.startswith(f"airlock: error: {broken}, document 1: line 4: ")
    for fragment in _fragments():
        assert fragment not in out + err


# ------------------------------------------------------------------------------ explain, version


def test_explain_a_rule(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "plaintext-secret-env")
    info = RULE_INFO["plaintext-secret-env"]
    assert code == 0
    assert out.splitlines()[0] == f"plaintext-secret-env: {info.title}"
    assert f"  family:   {info.family}" in out
    assert f"  severity: {info.severity.value}" in out
    flat = " ".join(out.split())
    for text in (info.reason, info.rationale, info.fix, *info.references):
        assert " ".join(text.split()) in flat


def test_explain_unknown_rule_suggests_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "privileged-containers")
    assert code == 2
    assert out == ""
    assert err.startswith(
        "airlock: error: unknown rule 'privileged-containers'; did you mean privileged-container"
    )
    code, _, err = run(capsys, "explain", "zzz")
    assert code == 2
    assert "airlock explain --list" in err


def test_explain_list(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--list")
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(RULE_INFO)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "version")
    assert code == 0
    assert out.splitlines()[0] == f"airlock {__version__}"
    assert out.splitlines()[1].startswith("Python 3.")
    assert run(capsys, "--version") == (0, out, "")


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys)
    assert code == 2
    assert "usage: airlock" in err


def test_every_command_is_registered_once() -> None:
    names = [c.name for c in COMMANDS]
    assert {"scan", "explain", "version"} <= set(names)
    assert len(names) == len(set(names))


def test_unexpected_exception_exits_3_without_its_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def boom(_args: object) -> int:
        raise RuntimeError(f"cannot handle {HF_TOKEN}")

    broken = Command("boom", "always fails", lambda _p: None, boom)
    code = main(["boom"], commands=(*COMMANDS, broken))
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    assert err.startswith("airlock: internal error: RuntimeError at test_cli.py:")
    assert HF_TOKEN not in err


# ------------------------------------------------------------------------------ the real script


def test_console_script_end_to_end() -> None:
    r = subprocess.run(
        [str(AIRLOCK), "scan", "--format", "json", "violating.yaml", "clean.yaml"],
        capture_output=True,
        text=True,
        cwd=FIXTURES,
        check=False,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stderr == ""
    report = json.loads(r.stdout)
    assert (
        "trainer",
        "privileged-container",
        "spec.template.spec.containers[0].securityContext.privileged",
    ) in hits(report)


def test_console_script_reads_stdin_and_exits_2_on_bad_yaml() -> None:
    r = subprocess.run(
        [str(AIRLOCK), "scan", "-"],
        input="apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n  labels: a: b\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.startswith("airlock: error: -, document 1: line 5: mapping values")
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"third-party corpus not present at {CORPUS}")
def test_every_container_of_the_ai_corpus_is_seen(capsys: pytest.CaptureFixture[str]) -> None:
    # the corpus holds a few unparsable samples upstream; the rest must all be evaluated
    code, report = scan_json(capsys, str(CORPUS))
    assert code == 2
    assert report["summary"]["objects"] > 400
    kinds = {f["kind"] for f in report["findings"]}
    assert {"PyTorchJob", "InferenceService", "RayCluster", "JobSet"} <= kinds


# What the kubelet injects into every pod of a namespace holding the chart's Services (service
# links): one of these made every Airlock pod crash at start (`int('tcp://…')`).
SERVICE_LINKS = {
    "AIRLOCK_WEBHOOK_PORT": "tcp://10.0.0.12:443",
    "AIRLOCK_WEBHOOK_SERVICE_HOST": "10.0.0.12",
    "AIRLOCK_WEBHOOK_SERVICE_PORT": "443",
    "AIRLOCK_WEBHOOK_METRICS_PORT": "tcp://10.0.0.13:8080",
    "AIRLOCK_WEBHOOK_PORT_443_TCP": "tcp://10.0.0.12:443",
    "AIRLOCK_CONTROLLER_METRICS_PORT": "tcp://10.0.0.14:8080",
    "AIRLOCK_CONTROLLER_METRICS_SERVICE_PORT": "8080",
}


@pytest.mark.parametrize("command", ["webhook", "controller", "uninstall-webhooks"])
def test_service_link_variables_change_nothing(
    monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    for name, value in SERVICE_LINKS.items():
        monkeypatch.setenv(name, value)
    args = build_parser(argv=[command]).parse_args([command])
    if command == "webhook":
        assert (args.port, args.metrics_port, args.host) == (8443, 8080, "0.0.0.0")  # noqa: S104
        assert args.policy_name == "default"
        assert args.fail_open is False
    elif command == "controller":
        assert args.metrics_port == 8080
        assert args.peering_name == "airlock"


def test_the_webhook_help_says_settings_are_flags_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SERVICE_LINKS.items():
        monkeypatch.setenv(name, value)
    code, out, _ = run(capsys, "webhook", "--help")
    assert code == 0
    assert "flags only" in " ".join(out.split())


def test_the_webhook_limit_flags_default_to_the_server_settings() -> None:
    from airlock.admission.settings import ServerSettings

    args = build_parser(argv=["webhook"]).parse_args(["webhook"])
    defaults = ServerSettings()
    assert (
        args.header_timeout,
        args.body_timeout,
        args.keepalive_timeout,
        args.max_connections,
        args.max_pending_body_bytes,
        args.unready_wait,
    ) == (
        defaults.header_timeout,
        defaults.body_timeout,
        defaults.keepalive_timeout,
        defaults.max_connections,
        defaults.max_pending_body_bytes,
        defaults.unready_wait,
    )


@pytest.mark.parametrize(
    "flags",
    [
        ["--header-timeout", "0"],
        ["--body-timeout", "-1"],
        ["--keepalive-timeout", "0"],
        ["--max-connections", "0"],
        ["--max-pending-body-bytes", "1000"],
        ["--unready-wait", "-1"],
        ["--unready-wait", "nan"],
        ["--unready-wait", "31"],
        ["--drain-seconds", "nan"],
        ["--registry-budget", "0"],
        ["--registry-budget", "60"],
        ["--registry-ca-file", "/nonexistent/ca.pem"],
    ],
)
def test_the_webhook_refuses_limits_that_cannot_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, flags: list[str]
) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("not read before the flags are checked")
    key.write_text("idem")
    code, _, err = run(
        capsys, "webhook", "--tls-cert-file", str(cert), "--tls-key-file", str(key), *flags
    )
    assert code == 2
    assert flags[0] in err


def test_the_webhook_registry_flags_become_its_registry_settings(tmp_path: Path) -> None:
    from airlock.admission.settings import RegistrySettings
    from airlock.webhook_process import settings_from_args

    cert, key, ca = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.pem"
    for f in (cert, key, ca):
        f.write_text("-")
    base = ["webhook", "--tls-cert-file", str(cert), "--tls-key-file", str(key)]
    defaults = settings_from_args(build_parser(argv=base).parse_args(base))
    assert defaults.registry == RegistrySettings()
    assert not defaults.registry.read_pull_secrets  # reading Secrets is opted into
    argv = [*base, "--registry-budget", "1.5", "--read-pull-secrets", "--registry-ca-file", str(ca)]
    chosen = settings_from_args(build_parser(argv=argv).parse_args(argv)).registry
    assert (chosen.budget, chosen.read_pull_secrets, chosen.ca_file) == (1.5, True, ca)
    assert defaults.server.unready_wait > 0
    waiting = [*base, "--unready-wait", "0"]
    assert (
        settings_from_args(build_parser(argv=waiting).parse_args(waiting)).server.unready_wait == 0
    )


def test_the_controller_without_credentials_says_so_and_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    code, _, err = run(capsys, "controller", "--standalone", "--metrics-port", "0")
    assert code == 2
    assert err.startswith("airlock: error: no usable Kubernetes credentials in ")
    assert "Traceback" not in err


@pytest.mark.parametrize("fmt", ["text", "json", "sarif"])
def test_half_a_surrogate_pair_in_json_input_is_reported_as_the_api_server_reads_it(
    fmt: str, tmp_path: Path
) -> None:
    # "\ud800" escapes a character UTF-8 cannot encode: every report crashed writing it
    pod = (
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x\\ud800y", "namespace": '
        '"d\\uDFFF"}, "spec": {"containers": [{"name": "c\\ud83d\\ude00", "image": "nginx"}]}}'
    )
    (tmp_path / "pod.json").write_text(pod)
    r = subprocess.run(
        [str(AIRLOCK), "scan", "--format", fmt, "pod.json"],
        capture_output=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    out = r.stdout.decode("utf-8")  # valid UTF-8 throughout
    assert "x\ufffdy" in out
    if fmt == "json":
        names = {f["name"] for f in json.loads(out)["findings"]}
        assert names == {"x\ufffdy"}
        assert {f["namespace"] for f in json.loads(out)["findings"]} == {"d\ufffd"}


@pytest.mark.parametrize("enabled", [True, False])
def test_importing_the_cli_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    # the import pauses the cyclic collector and sets what it built aside (gc.freeze): a
    # process that collects must go on collecting, one that does not must not start
    code = (
        "import gc\n"
        f"gc.enable() if {enabled} else gc.disable()\n"
        "import airlock.cli\n"
        f"assert gc.isenabled() is {enabled}, gc.isenabled()\n"
        "assert gc.get_freeze_count() > 1000, gc.get_freeze_count()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
