"""Credential detectors: every format positive and negative, the name traps, placeholders,
command lines, ConfigMap files, policy tuning, redaction, and property tests.

Every credential here is synthetic, built at run time from a seeded random source. Provider
prefixes are written split ("hf" "_") so that secret scanners reading this file see no token.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import string
import time
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import airlock.detectors as detectors_module
import pytest
import yaml
from airlock.detectors import DEFAULT_DETECTORS, Detection, DetectorSet, fingerprint, redact
from airlock.detectors._values import looks_random
from airlock.errors import PolicyError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

D = DEFAULT_DETECTORS
REPO = Path(__file__).resolve().parents[2]
LABELLED = REPO / "tests" / "fixtures" / "credentials" / "labelled.yaml"
POLARIS = REPO.parent / "shared" / "corpus" / "polaris-checks"

ALNUM = string.ascii_letters + string.digits
_rng = random.Random(7)  # noqa: S311 - synthetic test data, not keys
_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def rnd(n: int, alphabet: str = ALNUM, rng: random.Random = _rng) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def crc_token(prefix: str) -> str:
    """A token in the GitHub / npm format: 30 random base62 characters and their CRC32."""
    body = rnd(30)
    n, check = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        check = _B62[r] + check
    return prefix + body + check.rjust(6, "0")


def hexs(n: int) -> str:
    return rnd(n, "0123456789abcdef")


def pem(kind: str = "RSA", *, body: str | None = None, escaped: bool = False) -> str:
    if body is None:
        raw = base64.b64encode(bytes(_rng.getrandbits(8) for _ in range(200))).decode()
        body = "\n".join(raw[i : i + 64] for i in range(0, len(raw), 64))
    label = f"{kind} PRIVATE KEY".strip() if kind else "PRIVATE KEY"
    text = f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n"
    return text.replace("\n", "\\n") if escaped else text


def jwt() -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
    claims = base64.urlsafe_b64encode(b'{"sub":"trainer","exp":1767225600}').decode().rstrip("=")
    return f"{head}.{claims}.{rnd(60, ALNUM + '_-')}"


# kind -> factory of a fresh synthetic token in that format
TOKENS: dict[str, Callable[[], str]] = {
    "OpenAI API key": lambda: (
        "sk" + "-proj-" + rnd(74, ALNUM + "_-") + "T3Blbk" + "FJ" + rnd(74, ALNUM + "_-")
    ),
    "Anthropic API key": lambda: "sk" + "-ant-api03-" + rnd(93, ALNUM + "_-") + "AA",
    "Hugging Face token": lambda: "hf" + "_" + rnd(34, string.ascii_letters),
    "GitHub token": lambda: crc_token("gh" + _rng.choice("pous") + "_"),
    "GitLab token": lambda: "gl" + "pat-" + rnd(20, ALNUM + "_-"),
    "Slack token": lambda: "xo" + "xb-" + rnd(12, string.digits) + "-" + rnd(24),
    "Slack webhook URL": lambda: (
        "https://hooks." + "slack.com/services/T" + rnd(10) + "/B" + rnd(10) + "/" + rnd(24)
    ),
    "Stripe secret key": lambda: _rng.choice("sr") + "k" + "_live_" + rnd(24),
    "AWS access key id": lambda: _rng.choice(["AK", "AS"]) + "IA" + rnd(16, string.ascii_uppercase),
    "GCP API key": lambda: "AI" + "za" + rnd(35, ALNUM + "_-"),
    "Google OAuth client secret": lambda: "GOCSPX" + "-" + rnd(28, ALNUM + "_-"),
    "Azure storage account key": lambda: (
        "AccountName=x;Account" + "Key=" + rnd(86, ALNUM + "+/") + "=="
    ),
    "Azure SAS token": lambda: (
        "https://a.blob.core.windows.net/c?sv=2022-11-02&s" + "ig=" + rnd(43, ALNUM) + "%3D"
    ),
    "Replicate API token": lambda: "r8" + "_" + rnd(37),
    "Groq API key": lambda: "gs" + "k_" + rnd(52),
    "xAI API key": lambda: "xa" + "i-" + rnd(80),
    "Perplexity API key": lambda: "pp" + "lx-" + rnd(48),
    "NVIDIA API key": lambda: "nv" + "api-" + rnd(64, ALNUM + "_-"),
    "Pinecone API key": lambda: "pc" + "sk_" + rnd(70, ALNUM + "_"),
    "LangSmith API key": lambda: "lsv2" + "_pt_" + hexs(32) + "_" + hexs(10),
    "Databricks token": lambda: "da" + "pi" + hexs(32),
    "npm token": lambda: crc_token("np" + "m_"),
    "PyPI token": lambda: "pypi" + "-AgEIcHlwaS5vcmc" + rnd(120, ALNUM + "_-"),
    "Docker Hub token": lambda: "dckr" + "_pat_" + rnd(27, ALNUM + "_-"),
    "SendGrid API key": lambda: "S" + "G." + rnd(22, ALNUM + "_-") + "." + rnd(43, ALNUM + "_-"),
    "JWT": jwt,
    "RSA private key": lambda: pem("RSA"),
    "SSH private key": lambda: pem("OPENSSH"),
    "EC private key": lambda: pem("EC"),
    "private key": lambda: pem(""),
    "password in URL": lambda: "postgres://app:" + rnd(16) + "@db.ml-data:5432/features",
}

# A value in each format that is one character too short, or otherwise just off the format.
NEAR_MISSES: dict[str, Callable[[], str]] = {
    "OpenAI API key": lambda: "sk" + "-" + rnd(20),
    "Anthropic API key": lambda: "sk" + "-ant-" + rnd(12),
    "Hugging Face token": lambda: "hf" + "_" + rnd(20),
    "GitHub token": lambda: "gh" + "p_" + rnd(30),
    "GitLab token": lambda: "gl" + "pat-" + rnd(12),
    "Slack token": lambda: "xo" + "xb-" + rnd(5),
    "Stripe secret key": lambda: "sk" + "_live_" + rnd(12),
    "AWS access key id": lambda: "AK" + "IA" + rnd(12, string.ascii_uppercase),
    "GCP API key": lambda: "AI" + "za" + rnd(20),
    "JWT": lambda: "ey" + "J" + rnd(20) + ".notjson",
    "password in URL": lambda: "postgres://db.ml-data:5432/features",
    "private key": lambda: "-----BEGIN " + "PRIVATE KEY-----",
}


def detection_kinds(found: list[Detection]) -> list[str]:
    return [d.kind for d in found]


def kind_of(det: Detection | None) -> str | None:
    return det.kind if det is not None else None


# -- provider formats ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_provider_format_detected_as_its_kind_everywhere(kind: str) -> None:
    token = TOKENS[kind]()
    by_value = D.check_value(token)
    assert kind_of(by_value) == kind
    by_env = D.check_env("INNOCENT_SETTING", token)
    assert kind_of(by_env) == kind
    assert by_env is not None
    assert by_value is not None
    assert by_env.fingerprint == by_value.fingerprint
    assert kind in detection_kinds(D.check_text("settings.txt", f"line one\nvalue {token}\nend"))


@pytest.mark.parametrize("kind", sorted(NEAR_MISSES))
def test_near_miss_of_a_format_is_not_detected(kind: str) -> None:
    value = NEAR_MISSES[kind]()
    assert D.check_value(value) is None
    assert D.check_env("INNOCENT_SETTING", value) is None


@pytest.mark.parametrize(
    "glued",
    [
        "task" + "sk-" + "a1" * 20,  # "sk-" inside another word
        "disk-" + "a1B2" * 10,
        "XAKIA" + "ABCDEFGHIJKLMNOP",  # key id glued to a preceding letter
        "my" + "hf" + "_" + "abcdefghij" * 4,
    ],
)
def test_token_prefix_glued_to_a_word_is_not_a_token(glued: str) -> None:
    assert D.check_value(glued) is None


@pytest.mark.parametrize(
    "value",
    [
        "AK" + "IA" + "ABCDEFGHI" + "EXAMPLE",
        "hf" + "_" + "your" + "-token-here" + "a" * 30,
        "postgres://app:${DB_PASSWORD}@db:5432/x",
        "postgres://app:$(DB_PASSWORD)@db:5432/x",
        "redis://:<password>@redis:6379",
        "https://user:password@git.corp.example/x.git",
    ],
)
def test_placeholder_inside_a_format_is_not_detected(value: str) -> None:
    assert D.check_value(value) is None


def test_credentialed_urls() -> None:
    for url in (
        "postgres://app:" + rnd(12) + "@db:5432/x",
        "redis://:" + rnd(12) + "@redis-master:6379/0",
        "https://bot:" + rnd(20) + "@git.corp.example/ml/data.git",
        "mongodb+srv://trainer:" + rnd(14) + "@cluster0.example.net/ml",
        "jdbc:mysql://root:" + rnd(10) + "@mysql:3306/app",
    ):
        det = D.check_value(url)
        assert kind_of(det) == "password in URL"
        assert det is not None
        assert det.reason == "credentialed URL"
    for url in (
        "https://user@host/path",
        "https://host:8443/a@b",
        "s3://models/llama:v1@2",
        "git@github.com:org/repo.git",
        "http://[::1]:8080/",
    ):
        assert D.check_value(url) is None, url


def test_url_password_fingerprint_is_of_the_password_only() -> None:
    password = rnd(16)
    a = D.check_value(f"postgres://a:{password}@db-a:5432/x")
    b = D.check_value(f"mysql://b:{password}@db-b:3306/y")
    assert a is not None
    assert b is not None
    assert a.fingerprint == b.fingerprint == fingerprint(password)


def test_provider_token_used_as_url_password_is_named_by_its_provider() -> None:
    token = TOKENS["GitLab token"]()
    det = D.check_value(f"https://oauth2:{token}@gitlab.corp.example/ml/x.git")
    assert kind_of(det) == "GitLab token"


# -- private keys, service accounts, JWTs ---------------------------------------------------


def test_private_key_stub_or_header_alone_is_not_a_key() -> None:
    assert D.check_value(pem("OPENSSH", body="xxxxx")) is None
    assert D.check_value(pem("", body="xxxxxxxx")) is None
    assert D.check_value("grep -q 'BEGIN " + "PRIVATE KEY' key.pem && echo ok") is None
    # three dashes, as hand-written in some fixtures, still counts when the body is real
    real = pem("OPENSSH").replace("-----", "---")
    det = D.check_value(real)
    assert kind_of(det) == "SSH private key"


def _der_keys() -> dict[str, bytes]:
    """Private keys of each DER form, generated for the test."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP521R1())  # its base64 ends in a 4-character line
    dsa_key = dsa.generate_private_key(key_size=2048)
    plain = ser.NoEncryption()
    der = ser.Encoding.DER
    return {
        "RSA private key": rsa_key.private_bytes(der, ser.PrivateFormat.TraditionalOpenSSL, plain),
        "private key": rsa_key.private_bytes(der, ser.PrivateFormat.PKCS8, plain),
        "EC private key": ec_key.private_bytes(der, ser.PrivateFormat.TraditionalOpenSSL, plain),
        "Ed25519 in PKCS#8": ed25519.Ed25519PrivateKey.generate().private_bytes(
            der, ser.PrivateFormat.PKCS8, plain
        ),
        "EC in PKCS#8": ec_key.private_bytes(der, ser.PrivateFormat.PKCS8, plain),
        "DSA private key": dsa_key.private_bytes(der, ser.PrivateFormat.TraditionalOpenSSL, plain),
        "DSA in PKCS#8": dsa_key.private_bytes(der, ser.PrivateFormat.PKCS8, plain),
    }


def test_a_private_key_without_its_pem_lines_is_known_by_its_der_structure() -> None:
    """The base64 body of a key file pasted alone (no BEGIN line), as one line or in lines,
    under any name: the DER inside says PKCS#1, PKCS#8 or SEC1."""
    for label, der in _der_keys().items():
        body = base64.b64encode(der).decode()
        kind = label if label.endswith("private key") else "private key"
        lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
        escaped = lines.replace("\n", "\\n")  # a JSON string's or an env value's "\n"
        indented = lines.replace("\n", "\n  ")
        for value in (body, lines + "\n", f"key: |\n  {indented}", f'{{"key": "{escaped}"}}'):
            det = D.check_env("APP_CONFIG_1", value)
            assert (kind_of(det), det and det.fingerprint) == (kind, fingerprint(body)), label
        assert [d.kind for _i, d in D.check_args(["serve", "--tls-key", body])] == [kind]


def test_base64_that_only_starts_like_a_der_key_is_not_one() -> None:
    der = _der_keys()["RSA private key"]
    body = base64.b64encode(der).decode()
    for other in (
        body[:64] + rnd(len(body) - 64, ALNUM + "+/"),  # the first bytes, then noise
        base64.b64encode(der[:-3]).decode(),  # cut short: the SEQUENCE's length is wrong
        base64.b64encode(b"\x30\x82\x01\x00\x02\x01\x00\x30" + bytes(250)).decode(),
    ):
        assert D.check_env("APP_CONFIG_1", other) is None


def test_letters_of_a_certificate_or_of_base64_that_spell_a_token_are_no_token() -> None:
    """A CA bundle (trust-manager's ConfigMap) is about 200 KB of base64, whose letters spell a
    short-prefixed token now and then (JFrog's AKC…, AP3…): found in the system's bundle."""
    own = random.Random("cert-body")  # noqa: S311 - synthetic test data, not keys
    alphabet = ALNUM + "+/"
    akc = "AKC" + rnd(40, ALNUM, own)
    ap = "AP3" + rnd(20, ALNUM, own)
    body = rnd(300, alphabet, own) + "+" + akc + "/" + ap + "+" + rnd(300, alphabet, own)
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    for begin in ("CERTIFICATE", "PUBLIC KEY", "TRUSTED CERTIFICATE"):
        pem = f"-----BEGIN {begin}-----\n{lines}\n-----END {begin}-----\n"
        assert D.check_text("ca-certificates.crt", pem * 3) == [], begin
    assert D.check_env("TRUST_BUNDLE", body) is None  # base64 alone: inside a run
    assert D.check_text("notes", f"token={akc}\n{ap}\n") != []  # and where a token stands
    found = D.check_text(
        "ca.crt", f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\ntoken={akc}\n"
    )
    assert [d.fingerprint for d in found] == [fingerprint(akc)]


def test_a_token_in_lines_that_only_look_like_a_certificate_is_found() -> None:
    """A certificate's lines hide nothing: an unclosed BEGIN, a token wrapped in BEGIN/END
    lines, a body that is no DER, and an END of another label."""
    own = random.Random("not-a-cert")  # noqa: S311 - synthetic test data, not keys
    akc = "AKC" + rnd(40, ALNUM, own)
    texts = (
        f"-----BEGIN CERTIFICATE-----\ntoken: {akc}\n",
        f"-----BEGIN CERTIFICATE-----\n{akc}\n-----END CERTIFICATE-----\n",
        f"-----BEGIN CERTIFICATE-----\n{akc}\n-----END PUBLIC KEY-----\n",
    )
    for text in texts:
        assert [d.fingerprint for d in D.check_text("ca.crt", text)] == [fingerprint(akc)], text


def test_json_escaped_and_pgp_private_keys() -> None:
    det = D.check_env("TLS_KEY_JSON", json.dumps({"key": pem("EC")}))
    assert kind_of(det) == "EC private key"
    det = D.check_value(pem("RSA", escaped=True))
    assert kind_of(det) == "RSA private key"
    pgp = pem("PGP").replace("PRIVATE KEY-----", "PRIVATE KEY BLOCK-----")
    det = D.check_value(pgp)
    assert kind_of(det) == "PGP private key"


def test_gcp_service_account_json_is_one_detection_not_two() -> None:
    sa = {
        "type": "service_account",
        "project_id": "ml-prod",
        "private_key_id": hexs(40),
        "private_key": pem(""),
        "client_email": "trainer@ml-prod.iam.gserviceaccount.com",
    }
    found = D.check_text("key.json", json.dumps(sa, indent=2))
    assert detection_kinds(found) == ["GCP service account key"]
    det = D.check_env("GOOGLE_CREDENTIALS", json.dumps(sa))
    assert kind_of(det) == "GCP service account key"
    # the public half of a service account (no private key) is not a credential
    del sa["private_key"]
    assert D.check_text("sa.json", json.dumps(sa, indent=2)) == []


def test_jwt_needs_two_json_segments() -> None:
    token = jwt()
    det = D.check_value(f"Bearer {token}")
    assert kind_of(det) == "JWT"
    head, _claims, sig = token.split(".")
    assert D.check_value(f"{head}.{rnd(40)}.{sig}") is None


# -- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["SECRET_KEY", "API_KEY", "KAFKA_SASL_PASSWORD", "HMAC_SECRET"])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_a_base64_key_with_padding_is_a_literal_not_code(name: str, size: int) -> None:
    """Random bytes in base64 end in "=" or "==" at some sizes: padding, not the comparison
    operator of code (``a == b``), which is left alone."""
    own = random.Random(f"{name}-{size}")  # noqa: S311 - synthetic test data, not keys
    key = base64.b64encode(own.randbytes(size)).decode()
    assert D.check_env(name, key) is not None, key
    assert D.check_env(name, key.rstrip("=")) is not None
    for code in ("count==limit", "retries == 3", "token!=null&&token.size"):
        assert D.check_env(name, code) is None, code


_PUNCT = "!#$%&()*+,-./:;<=>?@[]^_{|}~"


@pytest.mark.parametrize("name", ["DB_PASSWORD", "CLIENT_SECRET", "API_KEY"])
def test_generated_passwords_with_symbols_are_reported(name: str) -> None:
    """A password manager's output draws symbols at random: "x(" , "->", "${" or a leading "/"
    turn up in one in five such values of 16-24 characters, and none of them makes it code, a
    template or a path."""
    rng = random.Random(3)  # noqa: S311 - synthetic test data, not keys
    values = [
        "".join(rng.choice(ALNUM + _PUNCT) for _ in range(rng.randint(16, 24))) for _ in range(1000)
    ]
    missed = [v for v in values if D.check_env(name, v) is None]
    assert len(missed) <= 50, missed[:10]  # was one in five


@pytest.mark.parametrize(
    "url",
    [
        "https://api.vendor.example/v1/data?api_key={}",
        "https://api.vendor.example/v1/data?units=metric&token={}",
        "wss://stream.vendor.example/feed?access_token={}&v=2",
    ],
)
def test_a_credential_in_a_url_query_is_reported(url: str) -> None:
    """A query parameter's value is a literal, even one that reads as an identifier (letters
    first): ``login(token=hf_token)`` is code, ``?token=Xk3p…`` is not."""
    value = "Xk3pQ9vL2mN8rT5wY1zA4bC7dE0f"
    assert D.check_env("APP_CONFIG_1", url.format(value)) is not None
    assert D.check_env("APP_CONFIG_1", url.format("your_token")) is None
    assert D.check_env("APP_CONFIG_1", "login(token=" + value + ")") is None
    assert D.check_env("APP_CONFIG_1", url.format(value).replace("://", "-")) is None


@pytest.mark.parametrize(
    ("key", "line"),
    [("app.env", "DB_PASSWORD={}"), ("app.properties", "spring.datasource.password={}")],
)
def test_generated_passwords_in_env_and_properties_files_are_reported(key: str, line: str) -> None:
    """Unquoted, the rest of the line is the value: a bracket in it (three in four generated
    passwords draw one) is no sign of code."""
    rng = random.Random(6)  # noqa: S311 - synthetic test data, not keys
    missed = []
    for _ in range(500):
        value = "".join(rng.choice(ALNUM + _PUNCT) for _ in range(20))
        if not D.check_text(key, "LOG_LEVEL=info\n" + line.format(value) + "\n"):
            missed.append(value)
    assert len(missed) <= 25, missed[:10]  # was three in four


def test_a_postgresql_password_file_and_a_redis_configuration() -> None:
    pw = rnd(16)
    entries = f"db.corp.example:5432:app:app:{pw}\n*:*:*:reader:{rnd(16)}\n"
    assert [d.kind for d in D.check_text(".pgpass", entries)] == ["password", "password"]
    assert [d.kind for d in D.check_text("pgpass", f"db:5432:app:app:{pw}")] == ["password"]
    assert D.check_text(".pgpass", "# host:port:db:user:password\ndb:5432:*:app:changeme\n") == []
    conf = f"bind 0.0.0.0\nport 6379\nrequirepass {pw}\nmasterauth {pw}\n"
    assert [d.kind for d in D.check_text("redis.conf", conf)] == ["password"]  # once a secret
    assert D.check_text("redis.conf", "bind 0.0.0.0\n# requirepass foobared\n") == []


@pytest.mark.parametrize("one_line", [False, True])
def test_xml_configuration_files(one_line: bool) -> None:
    """Maven's settings.xml holds passwords as elements, Hadoop's core-site.xml as name/value
    properties; placeholders, versions and settings about passwords are not credentials."""
    pw = rnd(16)
    settings = (
        "<settings>\n  <servers>\n    <server>\n      <id>nexus</id>\n"
        f"      <password>{pw}</password>\n    </server>\n  </servers>\n</settings>\n"
    )
    site = (
        "<configuration>\n  <property>\n    <name>fs.s3a.secret.key</name>\n"
        f"    <value>{rnd(40, ALNUM + '+/')}</value>\n  </property>\n</configuration>\n"
    )
    benign = (
        "<settings>\n  <password>${env.NEXUS_PASSWORD}</password>\n"
        "  <token>{{ .Values.token }}</token>\n  <passwordPolicy>strict</passwordPolicy>\n"
        "  <tokenizer.version>1.2.3</tokenizer.version>\n</settings>\n"
    )
    join = (lambda t: t.replace("\n", "")) if one_line else (lambda t: t)
    assert [d.kind for d in D.check_text("settings.xml", join(settings))] == ["password"]
    assert [d.kind for d in D.check_text("core-site.xml", join(site))] == ["secret key"]
    assert D.check_text("settings.xml", join(benign)) == []


@pytest.mark.parametrize(
    "line",
    [
        'password = settings["db"]["password"]',
        "token = sys.argv[1]",
        "secret = (user, key)",
        "api_key = config.api.key",
        "password = os.environ.get('DB_PASSWORD')",
    ],
)
def test_code_lines_in_configmap_files_are_not_reported(line: str) -> None:
    assert D.check_text("settings.py", "import os\n" + line + "\n") == []


_SECRET = "Zq9" + "rT4vX2mKp7WcLb3N"  # 19 random-looking characters, no provider's format


@pytest.mark.parametrize(
    "line",
    [
        f'snykToken := "{_SECRET}"',  # Go
        f"apiToken := `{_SECRET}`",  # Go, raw string
        f'var apiToken string = "{_SECRET}"',  # Go, typed
        f'private static final String API_TOKEN = "{_SECRET}";',  # Java
        f'string apiToken = "{_SECRET}";',  # C#
        f"const apiKey: string = '{_SECRET}';",  # TypeScript
        f'val clientSecret: String = "{_SECRET}"',  # Kotlin
        f"API_TOKEN ?= {_SECRET}",  # make
        f"API_TOKEN := {_SECRET}",
        f"'secret_key' => '{_SECRET}',",  # PHP array
        f"$password = '{_SECRET}';",  # PHP, Perl, PowerShell
        f"cohere token = '{_SECRET}'",  # a provider's name before the key
        f'$apiToken .= "{_SECRET}";',  # PHP, appended
        f'<add key="ApiKey" value="{_SECRET}" />',  # .NET appSettings, NuGet.config
        f"<apiToken>\n    {_SECRET}\n</apiToken>",  # an XML element over lines
        f'System.setProperty("API_TOKEN", "{_SECRET}");',  # a call given a key and a value
        f'os.Setenv("API_KEY", "{_SECRET}")',
        f"os.environ['HF_TOKEN'] = '{_SECRET}'",  # an index assigned
        f"cohere token = '{_SECRET}' | 'other'",  # a literal, then more code
        f'const API_KEY = "{_SECRET}"; // the key',
        f'{{"name": "API_TOKEN", "value": "{_SECRET}"}}',  # a Kubernetes env entry in JSON
        f'{{"key": "auth_token", "value": "{_SECRET}"}}',  # Postman's
        f"# API_TOKEN = '{_SECRET}'",  # commented out, still in the file
        f"// const apiKey = '{_SECRET}';",
        f"login({{user: 'ops', password: '{_SECRET}'}})",  # an object inline
        f"db: {{host: pg, password: '{_SECRET}'}}",  # a YAML flow mapping
        f":password => '{_SECRET}',",  # a Ruby symbol
        f"machine api.example.com login ops password {_SECRET}",  # .netrc on one line
    ],
)
def test_assignments_as_languages_write_them(line: str) -> None:
    """A credential-named key assigned a literal, in the syntax of the usual languages and of
    make: found in an env value (any name) and on a line of a ConfigMap file."""
    assert D.check_env("APP_CONFIG_1", line) is not None, line
    found = D.check_text("settings", "# settings\n" + line + "\nlevel = 3\n")
    assert len(found) == 1, line
    assert _SECRET not in repr(found)


@pytest.mark.parametrize(
    "line",
    [
        f'if token == "{_SECRET}" {{',  # a comparison, not an assignment
        'token := os.Getenv("API_TOKEN")',
        "const apiKey: string = process.env.API_KEY;",
        "var apiToken string = cfg.Token",
        "password := `${DB_PASSWORD}`",
        'headers.get("X-Api-Key", "")',
        'token = os.environ["HF_TOKEN"]',
        'if os.environ["HF_TOKEN"] == "unset":',
        '<add key="ApiKey" value="$(ApiKey)" />',
        '{"name": "API_TOKEN", "value": "$(TOKEN_FROM_FILE)"}',
        "# token: the one the CI job prints",
        "login({user: 'ops', password: ''})",
        'p.add_argument("--hf-token", "--hub-token", default=None)',  # an option's aliases
        'secret_key = "django-insecure-" + get_random_string(50)',  # a literal and more
        "auth_token = 'Bearer ' + token",
        "@token = params[:token]",  # Ruby
        "[security]\n;secret_key = SW2YcwTIb9zpOOhoPsMm",  # Grafana's published default
    ],
)
def test_code_that_assigns_no_literal_is_not_reported(line: str) -> None:
    assert D.check_text("main.go", "package main\n" + line + "\n") == []


def test_env_lists_in_a_configmap_file_are_read_by_name() -> None:
    """A ConfigMap holding manifests or chart values (`- name: X` then `value: …`): the value
    of a credential-named entry is judged, the others and valueFrom entries are not."""
    text = (
        "containers:\n  - name: app\n    env:\n"
        "      - name: LOG_LEVEL\n        value: debug-verbose\n"
        f"      - name: DB_PASSWORD\n        value: {_SECRET}\n"
        "      - name: API_TOKEN\n        valueFrom:\n          secretKeyRef: {name: t, key: t}\n"
        "      - name: HF_TOKEN\n        value: $(HF_TOKEN_FILE)\n"
    )
    found = D.check_text("values.yaml", text)
    assert detection_kinds(found) == ["password"]
    alone = D.check_env("DB_PASSWORD", _SECRET)
    assert alone is not None
    assert found[0].fingerprint == alone.fingerprint


@pytest.mark.parametrize(
    ("raw", "literal"),
    [
        (f"'{_SECRET}' | 'other'", _SECRET),
        (f'"{_SECRET}"; // note', _SECRET),
        ('"a\\"b"; x', 'a\\"b'),  # an escaped quote is the literal's
        ("'it''s here' # yaml", "it''s here"),  # YAML writes a quote twice
        ('"a"b"', 'a"b'),  # no code after the second quote: it belongs to the value
        ("", ""),
    ],
)
def test_the_literal_of_a_line_is_the_first_quoted_one_when_code_follows(
    raw: str, literal: str
) -> None:
    from airlock.detectors._core import _clean_text_value

    assert _clean_text_value(raw)[0] == literal


@pytest.mark.parametrize(
    "line",
    [
        "password: aHVudGVyMmh1bnRlcjI=",  # base64 padding is no type annotation
        "secret: Pa55w0rd=Rotated2024",
    ],
)
def test_a_value_with_an_equals_sign_is_read_whole(line: str) -> None:
    found = D.check_text("app.yaml", "x: 1\n" + line + "\n")
    key, _, value = line.partition(": ")
    alone = D.check_env(key.upper(), value)
    assert alone is not None
    assert [d.fingerprint for d in found] == [alone.fingerprint]


def test_values_that_only_look_like_credentials_in_other_formats() -> None:
    # git names a GPG signing key by its public fingerprint; a commit is 40 hex digits too
    gitconfig = "[user]\n\tname = bot\n\tsigningkey = 4AEE18F83AFDEB23B8A1B9E7C5C4A3D8F2D8E1C0\n"
    assert D.check_text(".gitconfig", gitconfig) == []
    assert D.check_env("SONAR_SCM_REVISION", "3f2a9c1b7d4e5f60718293a4b5c6d7e8f9012345") is None
    # a container publishing MySQL's port is no mysql -p; a client run as a command is
    assert D.check_args(["docker", "run", "--rm", "-p3306:3306", "mysql:8.0"]) == []
    assert D.check_env("DOCKER_ARGS", "--name mysql -p3306:3306 mysql:8.0") is None
    password = "Zq9rT4vX2mKp7W"
    assert D.check_env("INIT", f"sleep 5; mysql -h db -u root -p{password} shop") is not None
    # an Authorization scheme's name is no token (AWS SigV4, OAuth 1.0 parameters)
    for header in (
        "Authorization: AWS4-HMAC-SHA256 Credential=${AKID}/20240101/us-east-1/s3/aws4_request",
        'Authorization: OAuth oauth_consumer_key="${CK}", oauth_token="${T}"',
    ):
        assert D.check_env("EXAMPLE", header) is None, header


@pytest.mark.parametrize("raw", ['"django-insecure-" + get_random_string(50)', "'pre_' . $s"])
def test_a_literal_concatenated_with_more_is_not_the_whole_value(raw: str) -> None:
    from airlock.detectors._core import _clean_text_value

    assert _clean_text_value(raw)[0] != raw.split(raw[0])[1]


@pytest.mark.parametrize("first", ["=", ">", ":"])
def test_a_value_starting_with_an_operator_character_is_the_value(first: str) -> None:
    """`KEY==x`, `KEY=>x`, `key:=x` (.properties) and `key::x` are "=x", ">x", "=x" and ":x":
    the first character is the value's, not part of an operator."""
    value = first + _SECRET
    for text in (f"DB_PASSWORD={value}\n", f"db.password:{value}\n"):
        found = D.check_text("app.properties", text)
        assert detection_kinds(found) == ["password"], text
        alone = D.check_env("DB_PASSWORD", value)
        assert alone is not None
        assert found[0].fingerprint == alone.fingerprint  # the whole value, first character too


@pytest.mark.parametrize(
    "value",
    [
        "os.getenv('DB_PASSWORD')",
        "getpass()",
        'Vault.Read("db")',
        "${DB_PASSWORD}",
        "$(DB_PASSWORD)",
        "'$DB_PASS'",
        "$HOME/.pgpass",
        "{{ .Values.db.password }}",
        "#{password}",
        "&lt;YOURPASSWORD&gt;",
        ".login-form {",
        "/run/secrets/db-password",
        "count == limit",
        "obj->password",
        "std::string",
        "x => x.password",
        "$__file{/run/secrets/db_password}",  # Grafana
        "$__env{GF_DB_PASSWORD}",
        "%(ENV_SUPERVISOR_PASSWORD)s",  # configparser, supervisord
        "ENC(G6N718UuyPE5bHyWKyuLQSm02auQPUtm)",  # Jasypt: encrypted in place
        "ENC[AES256_GCM,data:Tr3Vt2gN8qkX,iv:1uJ9zQ7xR2mT5vW8yB3n,type:str]",  # SOPS
        "#add-password",  # an element's id or class naming the field
        ".api-key-input",
    ],
)
def test_code_templates_and_paths_under_a_credential_name_are_not_reported(value: str) -> None:
    assert D.check_env("DB_PASSWORD", value) is None


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("db-credentials", False),  # the Secret that holds it
        ("hf-token-secret", False),
        ("postgres-password", False),  # the key inside that Secret
        ("password-2024", True),  # digits: a weak password, not an object's name
        ("correct-horse-battery-staple", True),  # words, but none names a credential
    ],
)
def test_the_name_of_the_secret_that_holds_a_credential_is_not_one(
    value: str, secret: bool
) -> None:
    assert (D.check_env("DB_PASSWORD", value) is not None) is secret
    assert (D.check_env("CLIENT_SECRET", value) is not None) is secret


def test_a_base64_key_that_begins_with_a_slash_is_not_a_path() -> None:
    rng = random.Random(4)  # noqa: S311 - synthetic test data, not keys
    keys = [base64.b64encode(rng.randbytes(24)).decode() for _ in range(3000)]
    slashed = [k for k in keys if k.startswith("/")]
    assert len(slashed) >= 20
    missed = [k for k in slashed if D.check_env("SECRET_KEY", k) is None]
    # every one was a "path" before; a few have the vowels of words still (one in twelve here)
    assert len(missed) <= len(slashed) // 8, missed
    for path in ("/run/secrets/accessToken", "/etc/secret/clientSecret", "/run/secrets/hfToken"):
        assert D.check_env("ACCESS_TOKEN", path) is None, path


@pytest.mark.parametrize(
    ("name", "text", "secret"),
    [
        ("DB_PASSWORD", "dummy text data data data", False),  # a placeholder
        ("API_TOKEN", "your-token-here", False),
        ("API_KEY", "abcdefghijklmnop", False),  # letters in order: a name, not an issued key
        ("DB_PASSWORD", "Xk39-dfk2-LmQp", True),
        ("DB_PASSWORD", "v8#Lq2!zR7@wPn4", True),
    ],
)
def test_base64_of_text_is_judged_by_the_text(name: str, text: str, secret: bool) -> None:
    encoded = base64.b64encode(text.encode()).decode()
    assert (D.check_env(name, encoded) is not None) is secret
    assert (D.check_env(name, text) is not None) is secret


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("HF_TOKEN", "token"),
        ("HUGGING_FACE_HUB_TOKEN", "token"),
        ("ACCESS_TOKEN", "token"),
        ("hub-token", "token"),
        ("SECRET_ACCESS_KEY", "AWS secret access key"),
        ("MINIO_ACCESS_KEY", "access key"),
        ("OPENAI_API_KEY", "API key"),
        ("apiKey", "API key"),
        ("APIKEY", "API key"),
        ("openaiapikey", "API key"),
        ("DB_PASSWORD", "password"),
        ("dbPassword", "password"),
        ("Db_PassWord", "password"),
        ("smtpPassPhrase", "password"),
        ("my_password", "password"),
        ("PASSWD", "password"),
        ("MYSQL_PWD", "password"),
        ("SMTP_PASS", "password"),
        ("DB_PASSWORD_VALUE", "password"),
        ("DB_PASSWORD2", "password"),
        ("LDAP_BIND_PW", "password"),
        ("CLIENT_SECRET", "secret"),
        ("JWT_SECRET", "secret"),
        ("DJANGO_SECRET_KEY", "secret key"),
        ("PRIVATE_KEY", "private key"),
        ("GIT_CREDENTIALS", "credential"),
        ("db.password", "password"),
        ("spring.datasource.password", "password"),
        ("refreshtoken", "token"),  # run together in lower case: read as two words
        ("sessiontoken", "token"),
        ("appsecret", "secret"),
        ("webhooksecret", "secret"),
    ],
)
def test_credential_names_flag_any_real_literal(name: str, kind: str) -> None:
    det = D.check_env(name, "Pl4inLiteral-" + rnd(6))
    assert det is not None, name
    assert det.kind == kind
    assert det.reason == "credential-named variable with a literal value"


@pytest.mark.parametrize(
    "name",
    [
        "TOKENIZER",
        "TOKENIZER_NAME",
        "TOKENIZERS_PARALLELISM",
        "MAX_TOKENS",
        "MAX_NEW_TOKENS",
        "PASSWORD_FILE",
        "DB_PASSWORD_FILE",
        "TOKEN_PATH",
        "SECRET_DIR",
        "AUTH_URL",
        "TOKEN_ENDPOINT",
        "SECRET_NAME",
        "TOKEN_TTL",
        "PASSWORD_POLICY",
        "AUTH_TYPE",
        "AWS_ACCESS_KEY_ID",
        "KMS_KEY_ID",
        "PUBLIC_KEY",
        "SSH_PUBLIC_KEY",
        "PWD",
        "OLDPWD",
        "PW",
        "PAT",
        "BYPASS",
        "PASS_THROUGH",
        "KEYCLOAK_REALM",
        "SECRETS_MANAGER_REGION",
        "PAD_TOKEN",
        "EOS_TOKEN",
        "MAX_TOKEN",
        "IMAGE_PULL_SECRET",
        "TLS_SECRET",
        "NEXT_PAGE_TOKEN",
        "continuationToken",
        "checksum/secret",  # Helm: a digest of the Secret, to roll pods when it changes
        "SECRET_SHA256",
        "monkey",  # a word ending in a credential noun is not a run-together name
        "hotkey",
        "cachekey",
    ],
)
def test_name_traps_are_not_credential_names(name: str) -> None:
    # A literal that would be flagged under a credential name, but contains no provider format.
    assert D.check_env(name, "Pl4inLiteral-" + rnd(6)) is None


def test_a_pat_is_a_token_when_it_looks_issued_and_a_pattern_otherwise() -> None:
    value = "Xk3pQ9vL2mN8rT5wY1zA4bC7dE0f"
    for name in ("GITHUB_PAT", "azureDevopsPat"):
        assert kind_of(D.check_env(name, value)) == "token"
    assert D.check_env("FILE_PAT", "data-*.jsonl") is None
    assert D.check_env("EXCLUDE_PAT", "^ERROR.*timeout") is None


def test_a_page_token_is_a_cursor_after_next_and_a_credential_after_a_service() -> None:
    value = "EAAGm0PX4ZCpsBA" + "Xk3pQ9vL2mN8rT5wY1zA4bC7dE0f"
    assert D.check_env("NEXT_PAGE_TOKEN", value) is None
    assert D.check_env("FB_PAGE_TOKEN", value) is not None


def test_short_passwords_that_happen_to_be_base64_are_passwords() -> None:
    """An 8-character password decodes as 6 bytes, sometimes valid UTF-8: not text to judge."""
    for value in ("Qy9235Nn", "YyAjyKVG", "OEM5071X"):
        assert D.check_env("MYSQL_ROOT_PASSWORD", value) is not None, value


@pytest.mark.parametrize(
    "name", ["CACHE_KEY", "PARTITION_KEY", "S3_OBJECT_KEY", "IDEMPOTENCY_KEY", "messageKey"]
)
def test_keys_of_data_are_not_secret_keys(name: str) -> None:
    assert D.check_env(name, hexs(32)) is None
    assert D.check_env("SIGNING_KEY", hexs(32)) is not None
    assert D.check_env("azureFunctionkey", hexs(32)) is not None  # FUNCTION KEY, run together


def test_a_flag_or_variable_named_for_an_identifier_may_hold_a_random_value() -> None:
    """The entropy test on a flag's value that no name announces: ``--run-id``, ``RUN_ID``,
    ``--dataset-hash`` and ``--signature`` hold random-looking values by design."""
    value = "Xk3pQ9vL2mN8rT5wY1zA4bC7dE0fG6hJ9kL2mN5p"  # fixed: random-looking by construction
    assert looks_random(value, strict=True)  # else the entropy test has nothing to say
    for arg in (f"--request-id={value}", f"--dataset-sha256={value}", f"RUN_ID={value}"):
        assert D.check_args(["python", "train.py", arg]) == [], arg
    for arg in (f"--session={value}", value, f"EXTRA={value}"):
        assert D.check_args(["python", "train.py", arg]) != [], arg


def has_digit(value: str) -> bool:
    return any(c.isdigit() for c in value)


def test_a_uuid_is_judged_by_its_version_not_by_its_letters() -> None:
    """Hex has two vowels in six letters, so the share of vowels (the test for words) passed
    about half of all random UUIDs: the same kind of value was a key or not by chance."""
    own = random.Random("uuid-versions")  # noqa: S311 - synthetic test data, not keys
    v4 = [str(uuid.UUID(int=own.getrandbits(128), version=4)) for _ in range(200)]
    v1 = [str(uuid.UUID(int=own.getrandbits(128), version=1)) for _ in range(200)]
    assert all(looks_random(u) for u in v4)
    assert not any(looks_random(u) for u in v1)
    assert not any(looks_random(u, strict=True) for u in v4)  # bare arguments: ids, not keys
    assert all(D.check_env("AI21_KEY", u) is not None for u in v4[:50])
    assert all(D.check_env("AI21_KEY", u) is None for u in v1[:50])
    # random hex in a UUID's groups without version bits (how Vault prints a SecretID) is
    # random too; name-based ones (3, 5) and the nil UUID identify
    bare = [str(uuid.UUID(int=own.getrandbits(128))) for _ in range(200)]
    assert all(looks_random(u) for u in bare if u[14] not in "1235" and has_digit(u))
    for version in (3, 5):
        assert not looks_random(str(uuid.UUID(int=own.getrandbits(128), version=version)))
    assert not looks_random(str(uuid.UUID(int=0)))
    # hex in groups that is no UUID is judged as the hex it holds
    assert looks_random("-".join(v4[0].replace("-", "")[i : i + 8] for i in range(0, 32, 8)))
    assert not looks_random("3a5633e8-29d3c71a")  # 16 hex digits: too few for a key


@pytest.mark.parametrize(
    "name",
    ["SIGNING_KEY", "AZURE_BATCH_KEY", "OCI_CLI_KEY_CONTENT", "KEY", "SERVICEBUS_PRIMARY_KEY"],
)
def test_weak_key_names_need_a_random_looking_value(name: str) -> None:
    assert D.check_env(name, "model-cache-v2") is None
    assert D.check_env(name, "Meta-Llama-3-8B-Instruct") is None
    # a UUID identifies a thing unless it is random (version 4, how keys are issued as UUIDs)
    assert D.check_env(name, "5f0c8a2e-7d41-11ee-9c3a-2e6f1d9b7a44") is None  # version 1
    assert kind_of(D.check_env(name, "5f0c8a2e-7d41-4b8e-9c3a-2e6f1d9b7a44")) == "key"
    # its own seed: what other tests drew before must not change the value (one random key in
    # some hundreds has the vowels of a word, and a weak name needs the value to look random)
    own = random.Random(name)  # noqa: S311 - synthetic test data, not keys
    det = D.check_env(name, rnd(40, ALNUM + "+/", own))
    assert kind_of(det) == "key"
    det = D.check_env(name, hexs(64))
    assert kind_of(det) == "key"


def test_auth_names_need_user_password_shaped_values() -> None:
    assert D.check_env("PROXY_AUTH", "oidc-provider") is None
    det = D.check_env("BASIC_AUTH", "admin:" + rnd(12))
    assert kind_of(det) == "credential"
    encoded = base64.b64encode(("robot:" + rnd(20)).encode()).decode()
    det = D.check_env("REGISTRY_AUTH", encoded)
    assert kind_of(det) == "credential"
    assert D.check_env("REGISTRY_AUTH", base64.b64encode(b"robot:changeme").decode()) is None


def test_provider_context_names_give_specific_kinds() -> None:
    cases = {
        ("WANDB_API_KEY", hexs(40)): "Weights & Biases API key",
        ("COHERE_API_KEY", rnd(40)): "Cohere API key",
        ("CO_API_KEY", rnd(40)): "Cohere API key",
        ("AWS_SECRET_ACCESS_KEY", rnd(40, ALNUM + "+/")): "AWS secret access key",
        ("aws_secret_access_key", "/" + rnd(39, ALNUM + "+/")): "AWS secret access key",
        ("AWS_SECRET_ACCESS_KEY", "Pl4inLiteral-" + rnd(6)): "AWS secret access key",
    }
    for (name, value), kind in cases.items():
        det = D.check_env(name, value)
        assert kind_of(det) == kind, name
    # a 40-hex value under an unrelated name is a commit id, not a W&B key
    assert D.check_env("DATASET_REVISION", hexs(40)) is None


# -- placeholder filter ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        "abc",
        "12345",
        "changeme",
        "CHANGE_ME",
        "changeit",
        "password",
        "Password!",
        "secret",
        "xxxxxxxx",
        "XXXX-XXXX-XXXX",
        "********",
        "TODO",
        "dummy-password",
        "example-token-123",
        "placeholder",
        "your-api-key-here",
        "YOUR_TOKEN",
        "insert_token_here",
        "<hf-token>",
        "[REDACTED]",
        "${HF_TOKEN}",
        "$(HF_TOKEN)",
        "$HF_TOKEN",
        "{{ .Values.hfToken }}",
        "{{ secret('hf') }}",
        "#{HfToken}",
        "%HF_TOKEN%",
        "__HF_TOKEN__",
        "true",
        "False",
        "disabled",
        "none",
        "null",
        "3600",
        "30s",
        "1.5",
        "/var/run/secrets/hf/token",
        "/etc/secrets/db-password",
        "/run/secrets/token",
        "/secrets/api-key",
        "./secrets/token.txt",
        "~/.config/token",
        "file:///etc/secrets/token",
        "vault:secret/data/ml#hf",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:hf-AbCdEf",
        "projects/ml-prod/secrets/hf-token/versions/latest",
        "op://vault/item/field",
        "https://vault.corp.example/v1/secret/hf",
        "Ask the platform team for the token",
    ],
)
def test_placeholder_values_are_not_reported_under_credential_names(value: str) -> None:
    assert D.check_env("DB_PASSWORD", value) is None
    assert D.check_env("HF_TOKEN", value) is None


def test_short_real_password_is_reported() -> None:
    # Polaris' fixture value: weak, but a literal password all the same
    det = D.check_env("my_password", "abc123")
    assert kind_of(det) == "password"


# -- command lines ---------------------------------------------------------------------------


def test_flag_with_equals_and_flag_with_next_argument() -> None:
    key, password = rnd(40), "S3cure!" + rnd(8)
    hits = D.check_args(["--api-key=" + key, "--port", "8080", "--password", password, "-v"])
    assert [(i, d.kind, d.reason) for i, d in hits] == [
        (0, "API key", "credential-named flag with a literal value"),
        (4, "password", "credential-named flag with a literal value"),
    ]
    assert hits[1][1].fingerprint == fingerprint(password)


def test_provider_token_anywhere_in_args_is_reported_at_its_index() -> None:
    token = TOKENS["Hugging Face token"]()
    hits = D.check_args(["python", "dl.py", "--model", "meta-llama/Llama-3-8B", token])
    assert [(i, d.kind) for i, d in hits] == [(4, "Hugging Face token")]
    hits = D.check_args(["--hub_token", token])
    assert [(i, d.kind) for i, d in hits] == [(1, "Hugging Face token")]


@pytest.mark.parametrize(
    "args",
    [
        ["--max-tokens", "4096", "--tokenizer", "gpt2", "--tokenizer-mode", "auto"],
        ["--token-file", "/var/run/secrets/hf/token", "--password-file=/etc/secrets/db"],
        ["--api-key", "$(OPENAI_API_KEY)", "--hf-token=${HF_TOKEN}"],
        ["--secret-name", "hf-token", "--auth-type", "oidc"],
        ["--revision", "3f2a9c1b4d5e6f708192a3b4c5d6e7f8091a2b3c"],
        ["--image", "registry.corp.example/ml/trainer@sha256:" + "ab12" * 16],
        ["--run-id", "5f0c8a2e-7d41-4b8e-9c3a-2e6f1d9b7a44"],
        ["--model", "meta-llama/Meta-Llama-3.1-70B-Instruct", "--served-model-name", "llama"],
        ["-p", "8080", "-p8443", "--port=9000"],
        ["torchrun", "--rdzv_endpoint=$(MASTER_ADDR):$(MASTER_PORT)", "train.py"],
    ],
)
def test_ordinary_command_lines_are_clean(args: list[str]) -> None:
    assert D.check_args(args) == []


def test_mysql_p_is_a_password_only_for_mysql_clients() -> None:
    password = rnd(14)
    hits = D.check_args(["mysql", "-h", "db", "-uroot", "-p" + password, "features"])
    assert [(i, d.kind) for i, d in hits] == [(4, "password")]
    assert D.check_args(["server", "-p" + "8443", "-p" + rnd(14)]) == []


@pytest.mark.parametrize(
    ("args", "at"),
    [
        (["sshpass", "-p", "{s}", "ssh", "-p", "2222", "deploy@bastion"], 2),
        (["/usr/bin/sshpass", "-p{s}", "ssh", "deploy@bastion"], 1),
        (["sudo", "sshpass", "-p", "{s}", "rsync", "-a", "/data", "bastion:/srv"], 3),
        (["redis-cli", "-h", "cache", "-p", "6379", "-a", "{s}", "ping"], 6),
        (["smbclient", "//nas/models", "-U", "backup%{s}", "-c", "ls"], 3),
        (["C:\\Tools\\PsExec.exe", "\\\\10.0.0.5", "-u", "admin", "-p", "{s}", "cmd"], 5),
        (["smbget", "-U", "backup%{s}", "smb://nas/models/x.bin"], 2),
        (["smbclient", "//nas/models", "--user=backup%{s}"], 2),
        (["smbclient", "//nas/models", "-Ubackup%{s}"], 2),
        (["redis-cli", "--pass", "{s}", "ping"], 2),
        (["sshpass", "-P", "Password:", "-p", "{s}", "ssh", "deploy@bastion"], 4),
        (["sudo", "-E", "-u", "ops", "sshpass", "-p", "{s}", "ssh", "deploy@bastion"], 6),
        (["docker", "login", "-u", "ci", "-p", "{s}", "registry.corp.example"], 5),
        (["podman", "login", "--username", "ci", "-p", "{s}", "quay.io"], 5),
        (["helm", "registry", "login", "r.corp.example", "-u", "ci", "-p", "{s}"], 7),
        (["az", "login", "--service-principal", "-u", "http://ml", "-p", "{s}", "-t", "t1"], 6),
        (["/opt/mssql-tools/bin/sqlcmd", "-S", "db", "-U", "sa", "-P", "{s}"], 6),
        (["sqlcmd", "-S", "db", "-U", "sa", "-P{s}", "-Q", "select 1"], 5),
        (["ldapsearch", "-x", "-D", "cn=admin,dc=corp", "-w", "{s}", "-b", "dc=corp"], 5),
        (["mongosh", "mongodb://db:27017", "-u", "admin", "-p", "{s}"], 5),
        (["mongodump", "--host", "db", "-u", "backup", "-p", "{s}", "--out", "/dump"], 6),
        (["rabbitmqctl", "add_user", "ml", "{s}"], 3),
        (["rabbitmqctl", "-n", "rabbit@mq-0", "change_password", "ml", "{s}"], 5),
        (["openssl", "pkcs12", "-export", "-in", "c.pem", "-passout", "pass:{s}"], 6),
        (["redis-server", "--port", "6379", "--requirepass", "{s}"], 4),
        (["redis-server", "--masterauth", "{s}", "--replicaof", "redis-0", "6379"], 2),
        (["keytool", "-importkeystore", "-srcstorepass", "{s}", "-destkeystore", "k.jks"], 3),
        (["keytool", "-genkeypair", "-alias", "web", "-keypass", "{s}"], 5),
        (["cqlsh", "-u", "cassandra", "-p", "{s}", "cassandra-0.cassandra"], 4),
        (["cqlsh", "cassandra", "9042", "--username=app", "--password={s}"], 4),
        (["rabbitmqadmin", "-H", "mq", "-u", "admin", "-p", "{s}", "list", "queues"], 6),
        (["cqlsh", "-u", "cassandra", "-p{s}", "cassandra-0"], 3),  # optparse: glued on too
        (["rabbitmqadmin", "-u", "admin", "-p{s}", "list", "users"], 3),
        (["nats-server", "--user", "app", "--pass", "{s}", "--port", "4222"], 4),
        (["nats", "--server", "nats://nats:4222", "--user", "app", "--password", "{s}"], 6),
        (["etcdctl", "--endpoints", "https://etcd:2379", "--user", "root:{s}", "get", "/"], 4),
        (["etcdctl", "--user=root:{s}", "member", "list"], 1),
        (["lftp", "-u", "backup,{s}", "sftp://nas"], 2),
        (["vault", "kv", "put", "secret/db", "user=ml", "password={s}"], 5),
        (["vault", "write", "-address=https://vault:8200", "kv/ml", "db_password={s}"], 4),
    ],
)
def test_client_password_flags_in_argument_lists(args: list[str], at: int) -> None:
    """sshpass, PsExec, redis-cli and smbclient take a password as a flag's value: in an
    exec-form command list the flag and the password are two arguments (sshpass: or one)."""
    secret = "Zq9rT4vX" + rnd(12)
    hits = D.check_args([a.format(s=secret) for a in args])
    assert [(i, d.kind, d.fingerprint) for i, d in hits] == [(at, "password", fingerprint(secret))]


@pytest.mark.parametrize(
    "args",
    [
        ["sshpass", "-p", "$(SSH_PASS)", "ssh", "-p", "2222", "deploy@bastion"],
        ["sshpass", "-e", "ssh", "-p", "Zq9rT4vX2mKp7W", "deploy@bastion"],  # -e: from SSHPASS
        ["redis-cli", "-h", "cache", "-p", "6379", "ping"],
        ["redis-server", "--port", "6379", "-a", "Zq9rT4vX2mKp7W"],  # not redis-cli
        ["ssh", "-p", "2222", "-i", "/keys/id", "deploy@bastion"],
        ["smbclient", "//nas/models", "-U", "backup", "-c", "ls"],
        # PsExec's -p after its -u only: a remote program's flags are its own
        ["psexec", "\\\\host", "-s", "tool.exe", "-project", "ModelServing"],
        ["psexec", "\\\\host", "-p", "Zq9rT4vX2mKp7W", "cmd"],
        ["CMD-SHELL", "redis-cli -a $$REDIS_PASSWORD ping"],  # compose's escaped variable
        # -p is a password only after the login of a registry client or az
        ["docker", "run", "-p", "8080:80", "-p", "Zq9rT4vX2mKp7W", "nginx"],
        ["docker", "login", "-u", "ci", "--password-stdin", "registry.corp.example"],
        ["az", "vm", "create", "-n", "gpu-0", "-p", "Zq9rT4vX2mKp7W"],
        ["helm", "install", "ml", "./chart", "-p", "Zq9rT4vX2mKp7W"],
        ["ldapsearch", "-x", "-W", "-D", "cn=admin,dc=corp"],  # -W prompts
        ["mongod", "--port", "27017", "-p", "Zq9rT4vX2mKp7W"],  # the server, not a client
        ["sqlcmd", "-S", "db", "-U", "sa", "-P", "$(MSSQL_SA_PASSWORD)"],
        ["rabbitmqctl", "add_user", "ml", "$(RABBITMQ_PASSWORD)"],
        ["rabbitmqctl", "list_users"],
        ["openssl", "pkcs12", "-passin", "env:P12_PASSWORD", "-passout", "file:/run/pw"],
        ["keytool", "-list", "-storepass:env", "STORE_PASSWORD", "-keystore", "k.jks"],
        ["redis-server", "--requirepass", "$(REDIS_PASSWORD)"],
        ["cqlsh", "-u", "cassandra", "cassandra-0", "9042"],
        ["rabbitmqadmin", "-u", "admin", "-p", "$(RABBITMQ_PASSWORD)", "list", "queues"],
        ["nats-server", "--port", "4222", "--user", "app"],
        ["etcdctl", "--user", "root", "get", "/"],  # a name alone: etcdctl asks
        ["lftp", "-u", "backup", "sftp://nas"],
        ["lftp", "-u", "anonymous,ml-team@corp.example", "ftp.corp.example"],
    ],
)
def test_client_flags_without_a_literal_password_are_clean(args: list[str]) -> None:
    assert D.check_args(args) == []


def test_password_hashes_in_the_formats_crypt_writes() -> None:
    """An htpasswd line, a cloud-init user's passwd, an app's admin hash: offline-crackable,
    reported as a password hash wherever it stands; shell positionals are not one."""
    md5 = "$" + "apr1$" + rnd(8, ALNUM + "./") + "$" + rnd(22, ALNUM + "./")
    sha = "$" + "6$rounds=656000$" + rnd(16, ALNUM + "./") + "$" + rnd(86, ALNUM + "./")
    bcrypt = "$" + "2y$10$" + rnd(53, ALNUM + "./")
    htpasswd = f"# generated\nadmin:{md5}\nviewer:{bcrypt}\n"
    kinds = detection_kinds(D.check_text("users.htpasswd", htpasswd))
    assert kinds == ["password hash", "password hash"]
    cloud_init = f"#cloud-config\nusers:\n  - name: ops\n    passwd: {sha}\n"
    assert detection_kinds(D.check_text("user-data", cloud_init)) == ["password hash"]
    det = D.check_env("GRAFANA_ADMIN", bcrypt)
    assert det is not None
    assert det.kind == "password hash"
    assert det.fingerprint == fingerprint(bcrypt)
    for clean in ("echo $1$2 $5$6", 'set -- "$1$2"; exec "$@"', md5[:-1], sha[:-2], bcrypt[:40]):
        assert D.check_env("APP_CONFIG_1", clean) is None, clean
    # typed bodies are stand-ins, not hashes
    for typed in ("$" + "2b$12$" + "." * 53, "$" + "2y$10$" + string.ascii_letters + "0"):
        assert D.check_env("APP_CONFIG_1", typed) is None, typed


def test_kerberos_and_argon2_variants() -> None:
    """Kerberos roasting hashes of AES tickets (etype 17, 18: a 24-hex checksum after the user
    and realm) beside RC4's (23); Argon2 strings without their version field."""
    hexes = "0123456789abcdef"
    aes_tgs = f"$krb5tgs$18$svc$CORP.LOCAL$*http/web*${rnd(24, hexes)}${rnd(160, hexes)}"
    aes_asrep = f"$krb5asrep$17$ops$CORP.LOCAL${rnd(24, hexes)}${rnd(160, hexes)}"
    rc4_tgs = f"$krb5tgs$23$*svc$CORP.LOCAL$http/web*${rnd(32, hexes)}${rnd(160, hexes)}"
    for value in (aes_tgs, aes_asrep, rc4_tgs):
        assert kind_of(D.check_env("APP_CONFIG_1", value)) == "Kerberos ticket hash", value
    argon = "$argon2i$m=65536,t=2,p=1$" + rnd(16) + "$" + rnd(43)
    assert kind_of(D.check_env("APP_CONFIG_1", argon)) == "password hash"
    assert D.check_env("APP_CONFIG_1", aes_tgs.replace("$18$", "$19$")) is None


@pytest.mark.parametrize(
    "template",
    [
        '<input type="password" value="{s}" name="admin_password" />',
        "<input name='smtp' class=\"form-control\" TYPE='PASSWORD' value='{s}'>",
        '<INPUT VALUE="{s}" TYPE=password NAME=pw>',  # value first, unquoted type
        "<input type=password value={s} name=pass />",
    ],
)
def test_a_password_field_filled_in_html(template: str) -> None:
    """A login page or form template in a ConfigMap with its password field filled in."""
    secret = "Zq9rT4vX" + rnd(8)
    page = "<form action='/login'>\n  " + template.format(s=secret) + "\n</form>\n"
    found = D.check_text("login.html", page)
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    "tag",
    [
        '<input type="password" name="pw" value="">',  # empty: the user types it
        '<input type="text" value="Zq9rT4vX2mKp7W" name="user">',  # not a password field
        '<input type="password" value="{{ .Values.password }}">',  # a template
        '<input type="password-strength" value="Zq9rT4vX2mKp7W">',
        # built in code around the tag
        "el.innerHTML = '<input type=\"password\" value=\"' + pw + '\">';",
        "$html = \"<input type='password' value='\" . $pw . \"'>\";",
        '<input type="password" value="@Model.Password" />',  # Razor
        '<input title="type=password" value="Zq9rT4vX2mKp7W">',  # words in another attribute
        # a password field with no value, then another input's value (a CSRF token)
        '<input type="password" name="pw"><input type="hidden" value="Zq9rT4vX2mKp7W">',
    ],
)
def test_html_inputs_without_a_literal_password_are_clean(tag: str) -> None:
    assert D.check_text("login.html", f"<form>{tag}</form>") == []


def test_a_password_field_after_characters_that_lower_case_longer() -> None:
    """Offsets in a page holding "İ" (two characters lower-cased) stay those of the page."""
    secret = "Zq9rT4vX" + rnd(8)
    page = "<b>" + "İ" * 40 + f'</b><input type="password" value="{secret}">'
    assert [d.fingerprint for d in D.check_text("login.html", page)] == [fingerprint(secret)]
    csrf = "İ" * 40 + '<input type="password" name="pw">'
    csrf += '<input value="Zq9rT4vX2mKp7WcB" name="csrf">'
    assert D.check_text("login.html", csrf) == []


def test_a_windows_answer_file_password() -> None:
    """unattend.xml (a KubeVirt sysprep ConfigMap): a password is the Value child of its
    element, in clear (PlainText true) or base64 of its UTF-16 text."""
    secret = "Zq9rT4vX" + rnd(8)
    encoded = base64.b64encode((secret + "Password").encode("utf-16-le")).decode()
    xml = (
        '<UserAccounts><AdministratorPassword wcm:action="add"><Value>'
        + secret
        + "</Value><PlainText>true</PlainText></AdministratorPassword></UserAccounts>\n"
        + "<AutoLogon>\n  <Password>\n    <Value>"
        + encoded
        + "</Value>\n  </Password>\n</AutoLogon>\n"
    )
    found = D.check_text("autounattend.xml", xml)
    assert [d.kind for d in found] == ["password", "password"]
    assert found[0].fingerprint == fingerprint(secret)


@pytest.mark.parametrize(
    "line",
    [
        "$mail->Password = '{s}';  // SMTP password",  # PHPMailer
        '$this->api_token = "{s}";',
        'cfg->db_password = "{s}";',  # C
    ],
)
def test_a_member_written_with_an_arrow_is_a_key(line: str) -> None:
    secret = "Zq9rT4vX" + rnd(8)
    det = D.check_env("APP_CONFIG_1", line.format(s=secret))
    assert det is not None, line
    assert det.fingerprint == fingerprint(secret)


@pytest.mark.parametrize(
    "line",
    [
        '$mail->Password = $config->get("smtp_password");',
        '$this->token = getenv("TOKEN");',
        "if ($user->password == $input) {",
        # a member is assigned code unless its value is quoted
        "$user->password = md5($plain);",
        "$mail->Password = $pw . '';",
        "$mail->Password = (string) $pw;",
        "s->password = pwd_buffer;",
        # a sequence diagram, a log line: ":" after an arrow is no assignment
        "kubelet->Secret: mountVolume",
        "[INFO] user->password: updated successfully",
    ],
)
def test_a_member_given_code_is_not_a_literal(line: str) -> None:
    assert D.check_env("APP_CONFIG_1", line) is None


def test_json_inside_a_string_literal_and_a_headers_index() -> None:
    """JSON escaped inside a string (``"{\\"api_token\\": \\"…\\"}"``) is read for its keys,
    and a headers map indexed by name (``headers['Authorization'] = 'Basic …'``) is a header."""
    secret = "Zq9rT4vX" + rnd(10)
    escaped = 'payload = "{\\"api_token\\": \\"' + secret + '\\"}"'
    det = D.check_env("APP_CONFIG_1", escaped)
    assert det is not None
    assert det.fingerprint == fingerprint(secret)
    basic = base64.b64encode(("svc:" + rnd(14)).encode()).decode()
    det = D.check_env("APP_CONFIG_1", f"headers['Authorization'] = 'Basic {basic}'")
    assert det is not None
    assert det.kind == "HTTP basic credentials"
    for built in (
        'payload = "{\\"api_token\\": \\"$TOKEN\\"}"',
        "body = '{\\\"password\\\": \\\"' + pw + '\\\"}'",  # a concatenation
        'curl -d "{\\"password\\": \\"`cat /run/pw`\\"}" https://x.example',
        'curl -d "{\\"password\\": \\"pre-$PW\\"}" https://x.example',
    ):
        assert D.check_env("APP_CONFIG_1", built) is None, built


def test_network_device_configuration_secrets() -> None:
    """A switch or router configuration kept in a ConfigMap (network automation): the enable
    password, an SNMP community, a key, in clear (type 0) or reversibly encoded (type 7). A
    type 9 secret is a hash, reported as one."""
    enable, community, key = ("Zq9rT4vX" + rnd(6) for _ in range(3))
    type9 = "$" + "9$" + rnd(14, ALNUM + "./") + "$" + rnd(43, ALNUM + "./")
    config = (
        "hostname edge-1\n!\n"
        f"enable password {enable}\n"
        f"enable secret 9 {type9}\n"
        f"snmp-server community {community} RO 10\n"
        "snmp-server community public RO\n"  # the well-known default: no secret
        f"pac key 7 {key}\n!\n"
    )
    found = D.check_text("edge-1.cfg", config)
    assert sorted(d.kind for d in found) == ["password", "password", "password", "password hash"]
    assert {d.fingerprint for d in found if d.kind == "password"} == {
        fingerprint(enable),
        fingerprint(community),
        fingerprint(key),
    }
    for prose in (
        "Enable password authentication for the admin console",
        "Set the snmp-server community string in the UI",
        "enable secret 5 ",
        # prose and command references: capitalised, one lower-case word, no IOS access
        "Enable secret scanning",
        "enable password policy",
        "pac key rotation",
        "snmp-server community strings view the MIB",
        "snmp-server community string, RO access",
        "snmp-server community string ro",
    ):
        assert D.check_text("notes.txt", prose) == [], prose
        assert D.check_env("DESCRIPTION", prose) is None, prose
    # an Ansible ios_config task lists the same lines
    playbook = (
        f'  lines:\n    - "enable secret 0 {enable}"\n    - snmp-server community {community} RW\n'
    )
    assert {d.fingerprint for d in D.check_text("site.yml", playbook)} == {
        fingerprint(enable),
        fingerprint(community),
    }


def test_jvm_property_flags_in_argument_lists() -> None:
    """``-Dsonar.login=…`` as its own argument (exec form) is read as the property it sets."""
    token = rnd(40, "0123456789abcdef")
    hits = D.check_args(["java", f"-Dsonar.login={token}", "-jar", "scanner.jar"])
    assert [(i, d.kind) for i, d in hits] == [(1, "SonarQube token")]


def test_shell_scripts_in_a_single_argument() -> None:
    token = TOKENS["Hugging Face token"]()
    bearer = rnd(40, ALNUM + "._-")
    api_key = rnd(32)
    script = (
        f"export HF_TOKEN={token}\n"
        f"curl -sf -H 'Authorization: Bearer {bearer}' https://api.corp.example/v1\n"
        f"curl -H 'x-api-key: {api_key}' https://vendor.example\n"
        "python train.py --token $HF_TOKEN --max-tokens 512\n"
    )
    hits = D.check_args(["sh", "-c", script])
    assert {i for i, _d in hits} == {2}
    assert detection_kinds([d for _i, d in hits]) == [
        "Hugging Face token",
        "bearer token",
        "API key",
    ]


def test_shell_assignments_and_basic_auth() -> None:
    secret = rnd(30)
    hits = D.check_args(["sh", "-c", f"HF_TOKEN={secret} python download.py"])
    assert [(i, d.kind, d.fingerprint) for i, d in hits] == [(2, "token", fingerprint(secret))]
    basic = base64.b64encode(("svc:" + rnd(16)).encode()).decode()
    hits = D.check_args(["curl", "-H", f"Authorization: Basic {basic}", "https://x.example"])
    assert [(i, d.kind) for i, d in hits] == [(2, "HTTP basic credentials")]
    password = rnd(12)
    hits = D.check_args(["sh", "-c", f"curl -u admin:{password} https://x.example"])
    assert [(i, d.fingerprint) for i, d in hits] == [(2, fingerprint(password))]


@pytest.mark.parametrize(
    ("command", "kind"),
    [
        ("curl -u admin:{s} https://x.example", "password"),
        ("curl --user 'svc:{s}' https://x.example", "password"),
        ("curl --user kevin:'{s}' -X PATCH https://x.example", "password"),  # quoted apart
        ("curl -s https://x.example \\\n  --user ops:{s} --data a=b", "password"),  # continued
        ("curl -H 'X-Api-Key: {s}' https://x.example", "API key"),
        ("mysql -h db -u root -p{s} shop", "password"),
        ("curl -H 'Authorization: Api-Token {s}' https://x.example", "authorization token"),
        ("curl -H 'Authorization: SSWS {s}' https://x.example", "authorization token"),
        ("curl --header 'Authorization:  {s}'", "authorization token"),  # no scheme
        ("curl --header='X-Api-Key: {s}' https://x.example", "API key"),  # --header=
        ("Connect-VIServer -Server vc.example -User admin -Password {s}", "password"),  # a flag
        ("sshpass -p {s} ssh -p 2222 deploy@bastion", "password"),  # sshpass's -p, not ssh's
        ("sshpass -p'{s}' scp model.bin deploy@bastion:/srv", "password"),
        ("PsExec.exe \\\\10.0.0.5 -u CORP\\admin -p {s} cmd /c dir", "password"),
        ("redis-cli -h cache -p 6379 -a {s} ping", "password"),  # -a, not the port
        ("smbclient //nas/models -U backup%{s} -c ls", "password"),
        ("smbclient //nas/models --user backup%{s} -c ls", "password"),
        ("smbget -U backup%{s} smb://nas/models/x.bin", "password"),
        ("redis-cli -h cache --pass {s} ping", "password"),  # -a's long name
        ("sshpass -P 'Password:' -p {s} ssh deploy@bastion", "password"),  # -P: its prompt
    ],
)
def test_command_lines_in_env_values_and_arguments(command: str, kind: str) -> None:
    """A command in an env value (a start-up or health-check command) is read like one in
    `sh -c`: curl's -u and credential-named -H headers, mysql -p, Authorization schemes."""
    secret = "Zq9rT4vX" + rnd(16)
    line = command.format(s=secret)
    det = D.check_env("STARTUP_COMMAND", line)
    assert det is not None, line
    assert (det.kind, det.fingerprint) == (kind, fingerprint(secret))
    assert [(i, d.kind) for i, d in D.check_args(["sh", "-c", line])] == [(2, kind)]


@pytest.mark.parametrize(
    "command",
    [
        'curl -u "$USERNAME:$PASSWORD" https://x.example',
        "curl -u '${{ secrets.user }}:${{ secrets.password }}' https://x.example",
        "curl -u <user:password> https://x.example",
        "curl --user username:password https://x.example",
        'curl -H "Authorization: Bearer $API_KEY" https://x.example',
        'curl -H "Authorization: Token **********" https://x.example',
        "curl -H 'Authorization: application/json' https://x.example",
        "mysql -h db -u root -p shop",
        'sshpass -p "$SSH_PASS" ssh -p 2222 deploy@bastion',
        "sshpass -f /run/secrets/ssh ssh -p 2222 deploy@bastion",
        "ssh -p 2222 deploy@bastion",
        "redis-cli -h cache -p 6379 ping",
        "redis-cli -a $(REDIS_PASSWORD) ping",
        "psexec \\\\host -u admin -p %ADMIN_PW% cmd",
        "smbclient //nas/models -U backup -c ls",
        # command substitutions: the password is what the command prints
        "redis-cli -a $(kubectl get secret redis -o jsonpath='{.data.pw}' | base64 -d) ping",
        "sshpass -p $(vault kv get -field=pw secret/ssh) ssh deploy@bastion",
        "mysql -uroot -p$(kubectl get secret db -o name) shop",
        # a variable escaped for make or compose ($$) or for a shell (\$)
        "redis-cli -a $$REDIS_PASSWORD ping",
        "redis-cli -a \\$REDIS_PASSWORD ping",
        # PsExec's -p only after its -u: its usage text, a remote program's -p
        "PsExec -p   Specifies optional password for user name",
        "PsExec64.exe -accepteula -s \\\\host powershell -File C:\\deploy.ps1 -p Production",
        'cp "$1$SEP$HOME/.config/app/x.yml" /tmp',  # shell positionals and variables
    ],
)
def test_command_lines_without_a_literal_credential_are_clean(command: str) -> None:
    assert D.check_env("STARTUP_COMMAND", command) is None
    assert D.check_args(["sh", "-c", command]) == []


def _secret_manifest(data: str, kind: str = "Secret") -> str:
    return f"apiVersion: v1\nkind: {kind}\nmetadata:\n  name: db\ntype: Opaque\n{data}"


def test_a_secret_manifest_with_windows_line_ends_or_a_folded_value_is_read_whole() -> None:
    password = "Zq9rT4vX2mKp7WcL"  # (not rnd(): later tests' draws stay as they were)
    encoded = base64.b64encode(password.encode()).decode()
    crlf = _secret_manifest(f"data:\n  password: {encoded}\n").replace("\n", "\r\n")
    assert detection_kinds(D.check_text("s.yaml", crlf)) == ["Kubernetes Secret data"]
    first, second = password[:8], password[8:]
    folded = _secret_manifest(f"stringData:\n  password: >-\n    {first}\n    {second}\n")
    assert detection_kinds(D.check_text("s.yaml", folded)) == ["Kubernetes Secret data"]
    shown = redact(folded)
    assert first not in shown
    assert second not in shown


def test_a_secret_manifest_written_in_a_text_is_reported() -> None:
    """A Kubernetes Secret manifest kept in a ConfigMap (or an env value) puts its data in
    plain sight: each data value (base64) and stringData value is reported."""
    password = "Zq9" + rnd(13)
    encoded = base64.b64encode(password.encode()).decode()
    for data in (
        f"data:\n  password: {encoded}\n  username: YWRtaW4=\n",  # admin: 5 bytes, a stub
        f"data:\n\tpassword: '{encoded}'\n",
        f"data:\n  password: |\n    {encoded}\n",
        f"stringData:\n  password: {password}\n",
    ):
        text = _secret_manifest(data)
        found = D.check_text("manifests.yaml", text)
        assert detection_kinds(found) == ["Kubernetes Secret data"], data
        assert password not in repr(found)
        assert encoded not in repr(found)
        det = D.check_env("APP_CONFIG_1", text)
        assert det is not None
        assert det.kind == "Kubernetes Secret data"


@pytest.mark.parametrize(
    "text",
    [
        # Helm values naming a Secret, and a data: block of another object
        "envFrom:\n  - name: app-env\n    kind: Secret\npersistence:\n  data:\n"
        "    storageClass: standard\n",  # (8 letters: valid base64)
        # a document marker with a comment ends the Secret's document
        "kind: Secret\nmetadata:\n  name: a\n--- # next\nkind: ConfigMap\ndata:\n"
        "  token_path: L3Zhci9ydW4vc2VjcmV0cy90b2tlbg==\n",
        _secret_manifest("data:\n  password: {{ .Values.password | b64enc }}\n"),
        _secret_manifest("stringData:\n  password: ${DB_PASSWORD}\n"),
        _secret_manifest("data:\n  flag: YmFyCg==\n"),  # "bar": a stub
        _secret_manifest("data:\n  password: ''\n"),
        _secret_manifest("data:\n  key: secret/mysecret-value\n"),  # not padded base64
        _secret_manifest(
            "spec:\n  data:\n    - secretKey: api-token\n      remoteRef:\n        key: prod/db\n",
            kind="ExternalSecret",
        ),
        # a Secret without data, then another document (a ConfigMap) with data
        "kind: Secret\nmetadata:\n  name: a\n---\nkind: ConfigMap\ndata:\n"
        "  token_path: L3Zhci9ydW4vc2VjcmV0cy90b2tlbg==\n",
    ],
)
def test_secret_manifests_without_a_literal_secret_are_clean(text: str) -> None:
    assert D.check_text("manifests.yaml", text) == []


def test_scripts_reading_credentials_from_elsewhere_are_clean() -> None:
    for script in (
        "export HF_TOKEN=$(cat /var/run/secrets/hf/token)\npython serve.py",
        "huggingface-cli login --token $HF_TOKEN && python serve.py",
        'curl -H "Authorization: Bearer ${TOKEN}" https://api.corp.example',
        "from transformers import AutoTokenizer\ntokenizer = AutoTokenizer.from_pretrained('x')\n"
        "token = tokenizer.eos_token\napi_key = args.api_key\nlogin(token=hf_token)\n",
        "token = os.environ['HF_TOKEN']",
    ):
        assert D.check_args(["sh", "-c", script]) == [], script


def test_quoted_literal_in_inline_code_is_reported() -> None:
    password = "Sup3r" + rnd(8)
    hits = D.check_args(["python", "-c", f"import db\npassword = '{password}'\ndb.connect()"])
    assert [(i, d.kind, d.fingerprint) for i, d in hits] == [(2, "password", fingerprint(password))]


def test_generic_high_entropy_argument() -> None:
    hits = D.check_args(["python", "upload.py", rnd(40)])
    assert [(i, d.kind, d.reason) for i, d in hits] == [
        (2, "high-entropy string", "high-entropy value")
    ]
    # hex (digests, commit ids), UUIDs, paths and model names are not
    for arg in (hexs(64), hexs(40), "5f0c8a2e-7d41-4b8e-9c3a-2e6f1d9b7a44", "/data/" + rnd(40)):
        assert D.check_args([arg]) == [], arg


# -- ConfigMap entries -----------------------------------------------------------------------


def test_configmap_single_value_under_credential_key() -> None:
    det = D.check_text("db_password", "abc123")
    assert detection_kinds(det) == ["password"]
    assert det[0].reason == "credential-named key with a literal value"
    assert D.check_text("db_user", "postgres") == []
    assert D.check_text("message", "This is a test") == []
    # Polaris flags these by key name; the values are placeholders, so Airlock does not
    for key in ("AWS_SECRET_ACCESS_KEY", "AZURE_BATCH_KEY", "OCI_CLI_KEY_CONTENT"):
        assert D.check_text(key, "xxxxx") == []


@pytest.mark.parametrize(
    ("key", "text", "kind"),
    [
        ("app.env", "LOG_LEVEL=info\nexport DB_PASSWORD=Zq" + "9rT4vX2m\n", "password"),
        (
            "application.properties",
            "a.url=jdbc:h2:mem\nspring.datasource.password = P4ss-" + "Word7\n",
            "password",
        ),
        ("values.yaml", 'hub:\n  model: llama\n  token: "Tk7pQ9vL2mN8rT5wY1zA4bC7"\n', "token"),
        (
            "config.json",
            '{"wandb": {"api_key": "a1b29f3c7e0d45b8a61c2f9e7d3b05a4c8e1f6d2"}, "project": "x"}',
            "API key",
        ),
        ("list.yaml", "- name: x\n  client_secret: 'Cs8" + "vW2" * 6 + "'\n", "secret"),
        (
            ".netrc",
            "machine api.wandb.ai\n  login user\n  password " + "f00d" * 10 + "\n",
            "password",
        ),
        (
            "nginx.conf",
            'location / {\n proxy_set_header Authorization "Bearer ' + "Zz9" * 12 + '";\n}\n',
            "bearer token",
        ),
    ],
)
def test_configmap_files(key: str, text: str, kind: str) -> None:
    assert detection_kinds(D.check_text(key, text)) == [kind]


@pytest.mark.parametrize(
    "before",
    [
        "",
        "city: " + "\u0130" * 64 + "\n",  # each lower-cases to two characters: offsets shift
        "x: 1\n" * 2000,  # the credential line deep in a long file
    ],
)
def test_configmap_keys_are_found_in_any_case_after_any_text(before: str) -> None:
    secret = "Zq" + "9rT4vX2m"
    for line in (
        f"export Db_Password={secret}",
        f"DB_PASSWORD: '{secret}'",
        f"db_password={secret}",
    ):
        assert detection_kinds(D.check_text("app.env", before + line + "\nz: 2\n")) == ["password"]
    assert D.check_text("app.env", before + "LOG_LEVEL=info\n") == []


@pytest.mark.parametrize(
    "value",
    [
        "a1b2a1b2a1b2a1b2a1b2a1b2a1b2a1b2",
        "abcdef1234567890abcdef1234567890",
        "AbCdEfGhIjKlMnOp1234",
    ],
)
def test_a_value_typed_to_fill_a_key_or_token_field_is_no_key_but_may_be_a_password(
    value: str,
) -> None:
    """Keys and tokens are issued, so random: a run of the alphabet or one chunk repeated is a
    placeholder under their names; a password is chosen, and a weak choice is still one."""
    for name in ("API_KEY", "SLACK_TOKEN", "AWS_SECRET_ACCESS_KEY", "SIGNING_KEY"):
        assert D.check_env(name, value) is None, name
        assert D.check_text("app.env", f"{name}={value}\n") == [], name
    assert kind_of(D.check_env("DB_PASSWORD", value)) == "password"


def test_a_provider_name_ends_a_word_not_inside_one() -> None:
    """``sumOfExposures`` does not name Sumo Logic: its "O" starts the word "Of"; the provider's
    name followed by its credential's words (``sumoAccessKey``, ``SUMO_ACCESS_KEY``) does."""
    own = random.Random("sumo")  # noqa: S311 - synthetic test data, not keys
    key = rnd(64, ALNUM, own)
    assert D.check_text("calc.py", f"sumOfExposures = {key};\n") == []
    for text in (f"sumoAccessKey = {key};\n", f"SUMO_ACCESS_KEY: {key}\n"):
        assert [d.kind for d in D.check_text("app", text)] == ["Sumo Logic access key"], text


def test_configmap_file_with_provider_token_and_key_reports_each_credential_once() -> None:
    token = TOKENS["Hugging Face token"]()
    key_id = TOKENS["AWS access key id"]()
    secret = rnd(40, ALNUM + "+/")
    text = (
        f"HF_TOKEN={token}\n"
        f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n"
        f"again: {token}\n"
    )
    found = D.check_text("credentials", text)
    assert detection_kinds(found) == [
        "Hugging Face token",
        "AWS access key id",
        "AWS secret access key",
    ]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("model.yaml", "model_id: meta-llama/Llama-3-8B\nmax_tokens: 4096\ntokenizer: gpt2\n"),
        ("app.env", "HF_TOKEN_PATH=/var/run/secrets/hf/token\nTOKENIZERS_PARALLELISM=false\n"),
        ("props", "spring.datasource.password=${DB_PASSWORD}\nsecret.name=db-creds\n"),
        (
            "train.py",
            "token = os.environ['HF_TOKEN']\ntok = AutoTokenizer.from_pretrained(m, "
            "token=token)\npassword = getpass()\n",
        ),
        ("a_key", "and value that are ok"),
        ("check.sh", "grep -q 'BEGIN " + "PRIVATE KEY' /tmp/k || exit 1\n"),
        # code where a connection string's keys stand: C, a shell's command substitution
        ("auth.c", "user = (char *) (p + 1);\npwd = (char *) (p + ulen + 2);\n"),
        ("run.sh", "USERNAME=app\nPASSWORD=$($(dirname $0)/get-setting DB_PASSWORD)\n"),
    ],
)
def test_configmap_files_without_credentials(key: str, text: str) -> None:
    assert D.check_text(key, text) == []


@pytest.mark.parametrize(
    "hostile",
    [
        "passwordtoken" * 15000,
        "passwordtoken" * 15000 + "=",
        "--" + "secrettoken" * 15000 + " x",
        '"' + "apikey" * 30000 + '" x',
        "Authorization: Bearer " * 8000,
        "password=abcdefgh1\n" * 8000,
        "-----BEGIN " + "A " * 50000 + "PRIVATE",
        "{{" * 100000,  # templates opened, never closed
        "${" * 100000,
        "aa" + "=" * 200000,  # an operator, then what might be padding
        "LOG=1\npassword=" + "a" * 200000 + "\n",  # one long unquoted value on a key's line
        "x?" + "&token=abcdefgh" * 13000,  # query parameters, none after a "://"
        "token: " * 3000 + "Zq9rT4vX2mKp7WcLb3N",  # configuration in a value, 3,000 deep
        "password=password=" * 1500 + "x",
        "api token = " * 3000 + "x",
        "curl " * 20000,  # each command name was scanned to the line's end: quadratic
        "curl -u " * 20000,
        "mysql " * 20000,
        'password = "' + '\\"' * 100000,  # escaped quotes in a literal
        "kind: Secret\nstringData:\n  k: a" + " " * 50000 + "b\n",  # a lazy run, then blanks
        "a\nproxy_set_header Authorization" + " " * 3000 + "x;\n",  # blanks around optionals
        "curl -H 'x:" + " " * 60000 + "a",  # a header never closed
        'connect("a", "b", ' * 12000,  # positional calls never closed
        'variable "db_token" {' * 12000 + "default",  # blocks never closed
        'variable "db_token" {' + "{x}" * 30000 + "default",  # nested blocks
        'getenv("api_token", ' * 12000,
        "x = 1; token " * 15000 + "= y",  # statements on one line
        "token: a." + "a1b2c3d4e5f6" * 15000,  # one long dotted segment
        "Bearer " * 30000 + "Zq9rT4vX2mKp7WcLb3N",
        "https://a.azurewebsites.net/api/" * 6000,  # function URLs with no query
        "https://a.azurewebsites.net/api/f?x&" * 5000,
        "token\nx=" + "get" * 66666 + "(\n",  # a call's name run from every "get" in a word
        "token\nx=" + "set" * 66666 + "(\n",
        "sshpass -p " * 15000 + "x",  # client commands, each with its flag
        "psexec -u a -p " * 12000,
        "smbclient -U a" * 15000,
        "$" + "2a$10$" * 30000,  # hash prefixes, none with a body
        "truenas " * 20000 + "1-" + "a" * 63,
        "password <input " * 15000,  # tags never closed
        "password <input type=password " * 8000,
        "<Password>" * 20000 + "<Value>",
        "enable password " * 15000,  # device configuration lines that never end
        "snmp-server community x " * 10000,
        "password " + "a->" * 60000 + "= x",  # member arrows
        '\\"token\\": ' * 20000,  # escaped JSON keys with no value
        "--password-stdin " + "<<< x " * 20000,  # here-strings: the line searched before each
        "htpasswd " * 12000 + "<<< x",  # the command it feeds searched from every htpasswd
        "htpasswd -c f u " + "<<< x " * 20000,
        "nats " + 'a=" ' * 25000,  # assignments before a command, from every '"'
        "cqlsh " + "a=( " * 25000,
    ],
    ids=[
        *("run", "run=", "flag", "json", "headers", "lines", "pem", "{{", "${", "==", "kv"),
        *("?&", "nested:", "nested=", "nested words", "curl", "curl -u", "mysql", '\\"'),
        *("secret entry", "authorization blanks", "curl header", "connect", "variable"),
        "nested variable",
        *("getenv", "statements", "dotted", "bearer", "function urls", "function queries"),
        *("getter word", "setter word"),
        *("sshpass", "psexec", "smbclient", "bcrypt prefixes", "truenas"),
        *("inputs", "password inputs", "answer file", "enable", "community", "arrows"),
        "escaped json",
        *("here-strings", "htpasswd here", "htpasswd here-strings", "assignments", "("),
    ],
)
def test_hostile_input_stays_linear(hostile: str) -> None:
    # Written naively, the key patterns backtrack over every keyword of a long run: this input
    # took minutes. The bound is loose on purpose; linear code needs well under a second. A
    # value holding a key holding a key … was read recursively, a level a word, until Python's
    # recursion limit (RecursionError): the nesting is bounded now.
    started = time.perf_counter()
    D.check_text("data", hostile)
    D.check_args(["sh", "-c", hostile])
    D.check_env("DATA", hostile)
    D.check_env("DB_PASSWORD", hostile)
    assert time.perf_counter() - started < 5


# -- policy tuning ---------------------------------------------------------------------------


def test_extra_credential_names_match_whole_name_or_word_suffix() -> None:
    s = DetectorSet(extra_credential_names=["VENDOR_CODE", "licence"])
    value = "Lit3ral-" + rnd(8)
    for name in ("VENDOR_CODE", "ACME_VENDOR_CODE", "vendorCode", "LICENCE"):
        det = s.check_env(name, value)
        assert kind_of(det) == "credential", name
    assert s.check_env("VENDOR_CODE_PATH", value) is None
    assert s.check_env("CODE", value) is None
    assert D.check_env("VENDOR_CODE", value) is None  # only that policy's set knows the name
    # inside files, where the key pattern is compiled per policy
    assert detection_kinds(s.check_text("f.env", f"VENDOR_CODE={value}\n")) == ["credential"]
    assert [(i, d.kind) for i, d in s.check_args(["--vendor-code", value])] == [(1, "credential")]


def test_an_extra_credential_name_assigned_inside_a_value_is_found_under_any_name() -> None:
    """With extra names, "zork=…" in a value is an assignment to a credential name: under a
    name that announces a provider's format (MISTRAL_*, whose format the value is too short
    for) and under a neutral name alike; the default set knows no such name."""
    s = DetectorSet(extra_credential_names=["zork"])
    value = "Q7xLm9Pz" + rnd(6)
    for name in ("MISTRAL_SETTINGS", "WANDB_MODE", "APP_SETTINGS"):
        for text in (f"zork={value}", f"zork: {value}", f"--zork {value}"):
            found = s.check_envs(((0, name, text),))
            assert [(i, d.kind) for i, d in found] == [(0, "credential")], (name, text)
    assert D.check_envs(((0, "MISTRAL_SETTINGS", f"zork={value}"),)) == []


def test_allow_values_suppress_matching_values() -> None:
    s = DetectorSet(allow_values=["^example-", "OKAY[0-9]+$"])
    assert s.check_env("DB_PASSWORD", "example-" + rnd(10)) is None
    token = TOKENS["Hugging Face token"]()[:-5] + "OKAY1"
    assert s.check_env("GH", token) is None
    assert s.check_args(["--token", "x" + rnd(10) + "OKAY7"]) == []
    assert s.check_text("f.env", "PASSWORD=example-" + rnd(10) + "\n") == []
    # the set without the allow-list still reports them
    assert D.check_env("GH", token) is not None
    assert s.check_env("DB_PASSWORD", "real-" + rnd(10)) is not None


def test_invalid_allow_value_regex_names_its_field_path() -> None:
    with pytest.raises(PolicyError) as info:
        DetectorSet(allow_values=["^ok$", "(unclosed"])
    assert [path for path, _msg in info.value.errors] == ["spec.detectors.allowValues[1]"]
    assert "spec.detectors.allowValues[1]" in str(info.value)


def test_allow_value_matching_everything_and_nameless_extra_names_are_refused() -> None:
    with pytest.raises(PolicyError) as info:
        DetectorSet(extra_credential_names=["OK", "__"], allow_values=[".*"])
    assert sorted(path for path, _msg in info.value.errors) == [
        "spec.detectors.allowValues[0]",
        "spec.detectors.extraCredentialNames[1]",
    ]


def test_name_memo_is_bounded() -> None:
    s = DetectorSet()
    for i in range(5000):
        s.check_env(f"VAR_{i}", "some-value")
    assert len(s._names) <= 4096


# -- redaction -------------------------------------------------------------------------------


def _secret_parts(value: str) -> list[str]:
    """Every 8-character window of the value: none may appear in any output."""
    return [value[i : i + 8] for i in range(max(1, len(value) - 7))]


@pytest.mark.parametrize("kind", sorted(TOKENS))
def test_detection_never_shows_the_value(kind: str) -> None:
    token = TOKENS[kind]()
    det = D.check_env("X", token)
    assert det is not None
    for shown in (det.redacted(), repr(det), str(det), f"{det}", str(det.__reduce__())):
        for part in _secret_parts(token):
            assert part not in shown
    assert det.redacted() == f"[REDACTED {kind} fp:{det.fingerprint}]"
    assert str(det) == det.redacted()


def test_fingerprint_is_short_stable_and_domain_separated() -> None:
    value = rnd(30)
    fp = fingerprint(value)
    assert len(fp) == 8
    assert all(c in "0123456789abcdef" for c in fp)
    assert fingerprint(value) == fp
    assert fingerprint(value + "x") != fp
    # not a bare hash of the value: a lookup table of SHA-256 prefixes does not apply
    assert hashlib.sha256(value.encode()).hexdigest()[:8] != fp


@pytest.mark.parametrize("builtin", [True, False])
def test_fingerprints_are_sha_256_whichever_module_computes_them(
    builtin: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interpreter's own SHA-256 (cheap to load) or OpenSSL's (hashlib): the same digest."""
    from airlock.detectors import _core

    if not builtin:  # an interpreter without them: hashlib's
        monkeypatch.setattr(_core, "_SHA256_MODULES", ("_airlock_no_such_module",))
    monkeypatch.setattr(_core, "_sha256", functools.cache(_core._sha256.__wrapped__))
    for value in ("p4ssw0rd-Zq8Kp3Lm7Xw2", "ünïcødé \udc80 lone surrogate", rnd(40)):
        expected = hashlib.sha256(_core._FP_DOMAIN + value.encode("utf-8", "surrogatepass"))
        assert fingerprint(value) == expected.hexdigest()[:8]
    assert (_core._sha256() is hashlib.sha256) is not builtin


def test_detection_is_immutable_and_slotted() -> None:
    det = Detection("password", "0123abcd", "credential-named variable with a literal value")
    with pytest.raises(AttributeError):
        det.kind = "x"  # type: ignore[misc]
    assert not hasattr(det, "__dict__")


def test_public_names() -> None:
    assert sorted(detectors_module.__all__) == [
        "DEFAULT_DETECTORS",
        "Detection",
        "DetectorSet",
        "FingerprintKey",
        "fingerprint",
        "redact",
    ]
    assert isinstance(DEFAULT_DETECTORS, DetectorSet)


# -- property tests --------------------------------------------------------------------------

SAFE_WORDS = [
    "NCCL", "CUDA", "MODEL", "NAME", "LOG", "LEVEL", "HF", "HOME", "CACHE", "MASTER", "ADDR",
    "PORT", "WORLD", "SIZE", "RANK", "DEBUG", "DIR", "PATH", "TOKENIZER", "MAX", "TOKENS",
    "NUM", "WORKERS", "BATCH", "SEED", "ID", "REGION", "URL", "FILE", "TTL",
]  # fmt: skip
safe_names = st.lists(st.sampled_from(SAFE_WORDS), min_size=1, max_size=4).map("_".join)
short_values = st.text(min_size=0, max_size=9)
identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True)


@given(name=safe_names, value=short_values)
def test_ordinary_names_with_short_values_never_flag(name: str, value: str) -> None:
    assert D.check_env(name, value) is None


@given(name=safe_names, value=st.from_regex(r"[a-z0-9./:-]{0,60}", fullmatch=True))
def test_ordinary_names_with_path_like_values_never_flag(name: str, value: str) -> None:
    assert D.check_env(name, value) is None


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(TOKENS)),
    seed=st.integers(0, 2**32 - 1),
    name=identifiers,
    prefix=st.sampled_from(["", " ", "\n", "=", "key: ", '"']),
)
def test_any_provider_token_is_detected_under_any_name(
    kind: str, seed: int, name: str, prefix: str
) -> None:
    state = _rng.getstate()
    _rng.seed(seed)
    token = TOKENS[kind]()
    _rng.setstate(state)
    det = D.check_env(name, prefix + token)
    assert kind_of(det) == kind
    assert det is not None
    for part in _secret_parts(token):
        assert part not in det.redacted()
        assert part not in repr(det)


@given(
    name=st.sampled_from(["DB_PASSWORD", "HF_TOKEN", "API_KEY", "CLIENT_SECRET", "my_password"]),
    value=st.text(
        alphabet=string.ascii_letters + string.digits + "!#%&*+-.=?@^_~", min_size=8, max_size=40
    ),
)
def test_redacted_output_never_contains_the_value(name: str, value: str) -> None:
    det = D.check_env(name, value)
    if det is not None:
        for shown in (det.redacted(), repr(det), str(det)):
            # the fixed vocabulary (kind, reason, the class and field names of the repr) may
            # coincide with a short value ("Detection1"); drop it first
            rest = shown
            for word in (det.reason, det.kind, type(det).__name__, *det.__slots__):
                rest = rest.replace(word, "") if word else rest
            for part in _secret_parts(value):
                assert part not in rest


@given(name=st.text(max_size=40), value=st.text(max_size=300))
def test_env_check_never_raises(name: str, value: str) -> None:
    result = D.check_env(name, value)
    assert result is None or isinstance(result, Detection)


@given(args=st.lists(st.text(max_size=80), max_size=8))
def test_args_check_never_raises_and_indexes_are_valid(args: list[str]) -> None:
    for i, det in D.check_args(args):
        assert 0 <= i < len(args)
        assert isinstance(det, Detection)


@given(key=st.text(max_size=30), text=st.text(max_size=600))
def test_text_check_never_raises(key: str, text: str) -> None:
    assert all(isinstance(d, Detection) for d in D.check_text(key, text))


# -- the labelled set and the Polaris fixtures ---------------------------------------------------


def _joined(item: Any, value_key: str) -> str:
    if isinstance(item, str):
        return item
    if "parts" in item:
        return "".join(item["parts"])
    return str(item.get(value_key) or "")


def _labelled() -> dict[str, list[dict[str, Any]]]:
    data: dict[str, list[dict[str, Any]]] = yaml.safe_load(LABELLED.read_text())
    return data


LABELS = _labelled()


def test_labelled_set_is_large_and_balanced() -> None:
    entries = LABELS["env"] + LABELS["args"] + LABELS["configmap"]
    positives = [e for e in entries if e["expected"] is not None]
    assert len(entries) >= 150
    assert 50 <= len(positives) <= len(entries) - 100


@pytest.mark.parametrize(
    "entry", LABELS["env"], ids=[f"{i}-{e['name']}" for i, e in enumerate(LABELS["env"])]
)
def test_labelled_env(entry: dict[str, Any]) -> None:
    det = D.check_env(entry["name"], _joined(entry, "value"))
    assert (det.kind if det else None) == entry["expected"]


@pytest.mark.parametrize(
    "entry", LABELS["args"], ids=[f"args-{i}" for i in range(len(LABELS["args"]))]
)
def test_labelled_args(entry: dict[str, Any]) -> None:
    argv = [_joined(a, "") for a in entry["args"]]
    hits = D.check_args(argv)
    if entry["expected"] is None:
        assert hits == []
    else:
        assert (entry["index"] if "index" in entry else hits[0][0], entry["expected"]) in [
            (i, d.kind) for i, d in hits
        ]


@pytest.mark.parametrize(
    "entry",
    LABELS["configmap"],
    ids=[f"cm-{i}-{e['key']}" for i, e in enumerate(LABELS["configmap"])],
)
def test_labelled_configmap(entry: dict[str, Any]) -> None:
    found = D.check_text(entry["key"], _joined(entry, "text"))
    if entry["expected"] is None:
        assert found == []
    else:
        assert entry["expected"] in detection_kinds(found)


def _polaris(check: str, name: str) -> list[dict[str, Any]]:
    path = POLARIS / check / name
    return [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]


@pytest.mark.skipif(not POLARIS.is_dir(), reason="evaluation corpus ../shared/corpus not present")
def test_polaris_env_fixtures_agree_where_values_are_real() -> None:
    check = "sensitiveContainerEnvVar"

    def verdicts(name: str) -> dict[str, str | None]:
        env = _polaris(check, name)[0]["spec"]["containers"][0].get("env", [])
        return {
            e["name"]: (d.kind if (d := D.check_env(e["name"], e["value"])) else None)
            for e in env
            if "value" in e
        }

    assert verdicts("failure.key_password.yaml") == {"user_name": None, "my_password": "password"}
    # Polaris' target variables carry the placeholder "xxx": not flagged (documented disagreement)
    assert verdicts("failure.key_aws_secret_access_key.yaml") == {
        "password": "password",
        "AWS_SECRET_ACCESS_KEY": None,
    }
    assert verdicts("failure.value_private_key.yaml") == {"user_name": None, "the_good_stuff": None}
    assert verdicts("success.valid_env_vars.yaml") == {"greeting": None}


@pytest.mark.skipif(not POLARIS.is_dir(), reason="evaluation corpus ../shared/corpus not present")
def test_polaris_configmap_fixtures() -> None:
    check = "sensitiveConfigmapContent"

    def flagged(name: str) -> list[str]:
        data = _polaris(check, name)[0].get("data") or {}
        return [k for k, v in data.items() if D.check_text(k, v)]

    assert flagged("failure.key_password.yaml") == ["db_password"]
    assert flagged("success.valid_keys_and_values.yaml") == []
    assert flagged("failure.key_aws_secret_access_key.yaml") == []  # value is "xxxxx"
    assert flagged("failure.value_private_key.yaml") == []  # key body is "xxxxxxxx"


def test_memo_of_clean_values_never_holds_a_credential() -> None:
    """check_env remembers only negatives: a credential is re-detected every time and never
    kept in the memo (which lives as long as the policy)."""
    ds = DetectorSet()
    token = "hf_" + "Zq8Lm3Np7Rt2Vw9Yx4Bc6Df1Gh5Jk0Ms"
    assert ds.check_env("LOG_FORMAT", "json-lines") is None
    assert ds.check_env("LOG_FORMAT", "json-lines") is None
    first, second = ds.check_env("HF_TOKEN", token), ds.check_env("HF_TOKEN", token)
    assert first is not None
    assert first == second
    memo = ds._clean_envs
    assert ((0, "LOG_FORMAT", "json-lines"),) in memo
    assert all(token not in repr(entries) for entries in memo._seen)


def test_configmap_files_known_clean_are_not_searched_again_and_credentials_never_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airlock.detectors import _core

    d = DetectorSet()
    searched: list[str] = []
    real = DetectorSet._scan_formats

    def counting(self: DetectorSet, text: str, found: Any) -> None:
        searched.append(text)
        real(self, text, found)

    monkeypatch.setattr(DetectorSet, "_scan_formats", counting)
    clean = "model: llama\nmax_tokens: 4096\n" * 50
    leaky = "model: llama\ndb_password: Zq" + "9rT4vX2m\n"
    for _ in range(3):
        assert d.check_text("app.yaml", clean) == []
        assert detection_kinds(d.check_text("app.yaml", leaky)) == ["password"]
    assert searched.count(clean) == 1  # remembered as clean (also by the keyed view)
    assert searched.count(leaky) == 3  # a text with a credential is never remembered
    assert d.keyed(None).check_text("app.yaml", clean) == []
    assert searched.count(clean) == 1
    assert not any(leaky in text for _key, text in d._clean_texts._seen)
    # bounded: past the cap the memo starts again instead of growing
    monkeypatch.setattr(_core, "_CLEAN_TEXT_MAX_CHARS", len(clean) * 2)
    for n in range(5):
        d.check_text(f"f{n}.yaml", clean)
    assert d._clean_texts._weight <= len(clean) * 2


def test_clean_command_lines_are_remembered_and_credentials_never_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    d = DetectorSet()
    seen: list[tuple[str, ...]] = []
    real = DetectorSet._check_args

    def counting(self: DetectorSet, args: tuple[str, ...]) -> list[tuple[int, Detection]]:
        seen.append(args)
        return real(self, args)

    monkeypatch.setattr(DetectorSet, "_check_args", counting)
    clean = ["torchrun", "--nproc-per-node=4", "--config", "/etc/train/config.yaml"]
    leaky = ["psql", "--password", "Zq" + "9rT4vX2m", "--host", "db"]
    for _ in range(3):
        assert d.check_args(clean) == []
        assert [i for i, _d in d.check_args(leaky)] == [2]
    assert seen.count(tuple(clean)) == 1
    assert seen.count(tuple(leaky)) == 3
    assert not any("Zq" + "9rT4vX2m" in line for line in d._clean_args)
    # the same answer whether the list is new or remembered, through the keyed view too
    assert d.keyed(None).check_args(clean) == []
    assert seen.count(tuple(clean)) == 1


# -- a container's env values checked together (check_envs) ------------------------------------


def test_labelled_env_checked_together_as_one_by_one() -> None:
    """check_envs over the whole labelled env set (one list, one keyword walk) gives each entry
    the detection check_env gives it alone, at the entry's own index."""
    entries = tuple((i, e["name"], _joined(e, "value")) for i, e in enumerate(LABELS["env"]))
    alone = {i: D.check_env(name, value) for i, name, value in entries}
    together = dict(DetectorSet().check_envs(entries))
    assert {i: d.kind for i, d in together.items()} == {
        i: d.kind for i, d in alone.items() if d is not None
    }
    assert sum(1 for d in alone.values() if d is not None) >= 50


def test_keyword_walk_over_many_values_equals_one_walk_each() -> None:
    from airlock.detectors._matcher import _keywords, keywords, keywords_many

    words = _keywords().automaton.words
    assert not any("\n" in w for w in words)  # the joint: no match may span two values
    rng = random.Random(11)  # noqa: S311 - synthetic
    alphabet = "abcXYZ019_-.:/@+~= \n\u0130é\udcfe"
    for _ in range(4000):
        texts = [
            "".join(
                rng.choice(alphabet) if rng.random() < 0.8 else rng.choice(words)
                for _ in range(rng.choice((0, 1, 6, 25, 70)))
            )
            for _ in range(rng.randint(0, 7))
        ]
        assert keywords_many(texts) == [keywords(t) for t in texts], texts


def test_clean_env_lists_are_remembered_whole_and_credentials_never_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airlock.detectors import _core

    d = DetectorSet()
    walks: list[tuple[str, ...]] = []
    real = _core.keywords_many

    def counting(texts: list[str]) -> Any:
        walks.append(tuple(texts))
        return real(texts)

    monkeypatch.setattr(_core, "keywords_many", counting)
    token = "hf" + "_" + rnd(34)
    clean = ((0, "LOG_LEVEL", "info-level"), (2, "CACHE_DIR", "/cache/models"))
    leaky = ((0, "LOG_LEVEL", "info-level"), (1, "HF_TOKEN", token))
    for _ in range(3):
        assert d.check_envs(clean) == []
        assert [(i, det.kind) for i, det in d.check_envs(leaky)] == [(1, "Hugging Face token")]
    assert walks.count(("info-level", "/cache/models")) == 1  # then remembered
    assert walks.count(("info-level", token)) == 3  # a list with a credential never is
    assert not any(token in repr(item) for item in d._clean_envs._seen)
    assert d.keyed(None).check_envs(clean) == []  # the keyed view shares the memo
    assert len(walks) == 4
    # bounded by entries: past the cap the memo starts again instead of growing
    monkeypatch.setattr(_core, "_CLEAN_MAX_ENTRIES", 3)
    for n in range(5):
        d.check_envs(((0, "A", f"value-{n}"), (1, "B", "other-value")))
    assert d._clean_envs._weight <= 3


def test_a_value_that_is_not_utf8_is_searched_all_the_same() -> None:
    """A lone surrogate (JSON "\\ud800", a file name's undecodable byte) cannot be encoded as
    UTF-8: the keyword walk must neither fail nor lose the token next to it."""
    token = "hf" + "_" + rnd(34)
    for value in (f"{token}\udcfe", f"\ud800 {token}"):
        det = DetectorSet().check_env("APP_CONFIG_1", value)
        assert det is not None
        assert det.kind == "Hugging Face token"
        found = DetectorSet().check_envs(((0, "A", "\udcfe-x"), (3, "APP_CONFIG_1", value)))
        assert [(i, det.kind) for i, det in found] == [(3, "Hugging Face token")]


def test_a_container_names_recur_with_new_values() -> None:
    """A container's names recur with new values, each judged under its name every time."""
    d = DetectorSet()
    names = ("LOG_LEVEL", "DB_PASSWORD", "WANDB_PROJECT")
    wandb_key = rnd(40, "0123456789abcdef")
    runs = [
        (("info", "$(DB_PASSWORD_FROM_SECRET)", "llama-ft"), []),
        (("info", "Zq" + "9rT4vX2mLp", "llama-ft"), [(1, "password")]),
        (("debug", "${DB_PASSWORD}", wandb_key), [(2, "Weights & Biases API key")]),
    ]
    for values, expected in runs:
        entries = tuple((i, n, v) for i, (n, v) in enumerate(zip(names, values, strict=True)))
        assert [(i, det.kind) for i, det in d.check_envs(entries)] == expected


def _corpus_values() -> list[str]:
    values = []
    for path in sorted(REPO.parent.glob("shared/corpus/secrets-*/cases.jsonl")):
        values += [json.loads(line)["value"] for line in path.read_text().splitlines() if line]
    return values


def test_corpus_values_checked_together_as_one_by_one() -> None:
    """The shared corpora's 1,269 values (read the corpus NOTICE), each under a neutral and a
    credential-like name, all in one env list: check_envs (one keyword walk over all of them)
    finds in each what check_env finds in it alone."""
    values = _corpus_values()
    assert len(values) >= 1000
    for name in ("APP_CONFIG_1", "API_TOKEN"):
        entries = tuple((i, name, v) for i, v in enumerate(values))
        alone = {i: d.kind for i, v in enumerate(values) if (d := DetectorSet().check_env(name, v))}
        together = {i: d.kind for i, d in DetectorSet().check_envs(entries)}
        assert together == alone
        assert len(alone) >= 500


# -- a second review of the syntax work -----------------------------------------------------

_P2 = "Xk9mQ2vLp7wZr4t"


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("a.env", f"A=1\r\npassword = {_P2}\r\n"),  # Windows line ends
        ("values.yaml", f"- name: DB_PASSWORD\r\n  value: {_P2}\r\n"),
        ("init.sh", f"#!/bin/sh\nmysql -uroot -p{_P2} < schema.sql\n"),  # a script's commands
        ("init.sh", f"#!/bin/sh\ncurl -s -u admin:{_P2} https://x.example\n"),
        ("wait.sh", f"until mysqladmin ping -h db -uroot -p{_P2}; do sleep 2; done\n"),
        ("wait.sh", f"mysql -uroot -p'{_P2}' -e 'select 1'\n"),  # -p quoted
        ("settings.py", f'import os\npassword = "{_P2}".encode()\n'),  # a method on a literal
        ("values.yaml", f"redis:\n  auth: {{enabled: true, password: {_P2}}}\n"),  # unquoted
        ("web.config", f"<add key='ApiKey' value='{_P2}a8f3k2' />\n"),  # single quotes
    ],
)
def test_more_ways_of_writing_the_same_assignments(key: str, text: str) -> None:
    found = D.check_text(key, text)
    assert len(found) == 1, text
    assert _P2 not in repr(found)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("settings.py", 'a = 1\npassword = "prefix-" + os.environ["X"]\n'),  # a literal and more
        ("authz.yaml", "a: 1\nauthorization: /etc/kubernetes/authz-webhook-v1.yaml\n"),
        ("values.yaml", "auth:\n  existingSecret: keycloak-admin\n"),  # a Secret's name
        ("models.py", 'a = 1\nfield("password", "string")\n'),  # any call with two strings
        ("README", "# WARNING: never commit the password: use sealed secrets\n"),  # prose
    ],
)
def test_more_lines_that_assign_no_credential(key: str, text: str) -> None:
    assert D.check_text(key, text) == []


def test_secret_manifest_values_are_redacted_whole() -> None:
    text = (
        "kind: Secret # the app's\nstringData: # plain\n"
        '  db-pass: "Tr0ub4dor &3 #horse"\n'  # a "#" inside quotes is the value's
        "  b: first-part-xyz\n    second-part-abc\n"  # a plain value over two lines
        "data:\n  c.json: |  # base64\n    " + base64.b64encode(b"Xk9mQ2vLp7wZr4t!").decode() + "\n"
    )
    found = D.check_text("s.yaml", text)
    assert detection_kinds(found) == ["Kubernetes Secret data"] * 3
    shown = redact(text)
    for part in ("Tr0ub4dor", "horse", "first-part", "second-part", "WGs5bVEy"):
        assert part not in shown, part


def test_bundler_credentials_for_a_gem_host_are_named_by_the_host() -> None:
    """Bundler reads a gem source's credentials from BUNDLE_<HOST> (dots written "__"): a
    user:password pair or a token there is a credential; its other settings are not."""
    # (Sidekiq's gem server's own format, 8 hex:8 hex, is named for Sidekiq)
    for value, kind in (
        ("cafebabe:deadbeef", "Sidekiq Pro or Enterprise gem server credentials"),
        ("Xk9mQ2vLp7wZr4tAbCd", "credential"),
    ):
        det = D.check_env("BUNDLE_ENTERPRISE__CONTRIBSYS__COM", value)
        assert det is not None
        assert det.kind == kind
    for name, value in (
        ("BUNDLE_GEMS__EXAMPLE__COM", "user:changeme"),  # a placeholder password
        ("BUNDLE_BUILD__NOKOGIRI", "--use-system-libraries"),  # build flags
        ("BUNDLE_MIRROR__HTTPS://RUBYGEMS__ORG/", "https://mirror.example"),
        ("BUNDLE_WITHOUT", "development:test"),
        ("BUNDLE_PATH", "vendor/bundle"),
    ):
        assert D.check_env(name, value) is None, name


_LOWER36 = string.ascii_lowercase + string.digits


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        # statements run together on one line: the credential's own statement is read
        ('$user = "mg1021"; $pass' + 'word = "Tq8#vLm2pZ";', "password"),
        ('$token_file = "/x"; $pass' + 'word = "Tq8#vLm2pZ";', "password"),
        ("host=db; DB_PASS" + "WORD=Tq8#vLm2pZ; port=5432", "password"),
        # a log line's level tag before what it prints
        ("[DEBUG] Using k" + "ey=" + "mlhekyjhs96mx0r2cxbzky4jzr83fw1q", "key"),
        # a dotted value with a token's segment is a literal, not an attribute of code:
        # Vault's legacy token, a Kubernetes bootstrap token
        ("tok" + "en: s." + "ZC9Ecf4M5g9o34Q6RkzGsj0z", "token"),
        ("BOOTSTRAP_TOK" + "EN=be8dfd." + "da8a689a46edc282", "token"),
        # a bearer token without its header's name: a list item, a variable holding the header
        (
            "  - Bear" + "er 7727d2fa5e8f7d37de25ef385ff8766d265ee2e7384efb311c04069d9c892c6b",
            "bearer token",
        ),
        ('AUTH_HEADER="Bear' + 'er Xk3pQ9vL2mN8rT5wY1zA4bC7dE0fG6hJ"', "bearer token"),
        # Basic credentials whose password holds a blank; a random UUID as a scheme-less token
        (
            "Authorization: Basic " + base64.b64encode(b"svc:mulm xrzrzi 42").decode(),
            "HTTP basic credentials",
        ),
        ("Authorization:  5eb4223e-5008-46e5-be67-c7b8f2732305", "authorization token"),
        # a getter's default, a Terraform variable's default
        ('tok = os.getenv("API_TOK' + 'EN", "Xk3pQ9vL2mN8rT5wY1zA4bC7")', "token"),
        ('variable "db_pass' + 'word" {\n  type = string\n  default = "Tq8#vLm2pZ"\n}', "password"),
        (
            'variable "db_pass'
            + 'word" {\n  validation {\n    condition = length(var.x) > 8\n  }\n'
            '  default = "Tq8#vLm2pZ"\n}',
            "password",
        ),
        # a password that a call takes as a positional literal
        ('c = new NetworkCredential("svc@corp.internal", "vzihlaquknriqlht");', "password"),
        ('new DirectoryEntry("LDAP://dc1",\n  "CORP\\svc",\n  "Rrhh1234x");', "password"),
        ('conn = pymysql.connect("db.internal", "app", "Tq8#vLm2pZ")', "password"),
        ('my $dbh = DBI->connect("dbi:mysql:database=app", "root", "s3cr3tPw9");', "password"),
        ('$c = oci_connect("hr", "Welc0me#2024", "localhost/XE");', "password"),
    ],
)
def test_configuration_shapes_inside_a_value(value: str, kind: str) -> None:
    assert kind_of(D.check_env("APP_CONFIG_1", value)) == kind, value


@pytest.mark.parametrize(
    "value",
    [
        "token: settings.api_token",  # an attribute of code
        "token: cfg.v1beta1.bootstrap_secret",
        "x = 1; token = cfg.secret",  # a statement of code after another
        "x = 1; y = 2  # token rotation runs nightly",
        "[INFO] token refreshed for user alice",
        "the Bearer of the release notes signs them",  # prose
        "Bearer ${API_TOKEN}",  # a reference
        "Authorization:  5eb4223e-5008-11ee-be67-c7b8f2732305",  # a time-based UUID: an id
        'field("password", "string")',  # a call that is neither a setter nor a getter
        'os.getenv("API_TOKEN", "")',
        'conn = pymysql.connect("db.internal", "app", os.environ["DB_PASSWORD"])',
        'conn = pymysql.connect("db.internal", "app", "${DB_PASSWORD}")',
        'variable "db_password" {\n  type = string\n  sensitive = true\n}',
        # getters whose second argument is not a default; calls only named like a getter
        'keyring.get_password("db_password", "svc-deployer")',
        'ssm.get_parameter("db_password", "prod-cluster")',
        'form.widget("password", "PasswordInput")',
        # connect calls that are not a database client's, and constants as arguments
        'ws.connect("wss://x", "graphql-ws", "subprotocol-v2")',
        'signal.connect("clicked", "on_button", "handler_module_primary")',
        'new PDO("mysql:host=db", "root", "PDO::ERRMODE_EXCEPTION")',
        'new DirectoryEntry("LDAP://dc1", "CORP\\svc", "AuthenticationTypes.Secure")',
        # lookalikes of the new formats
        "1712345678901234|payments-service-prod-eu-west1",  # a timestamp, a pipe, a name
        "http://argo-events-webhook.argo:12000/hooks/kubernetesdeploymentsyncer",
        "api_key = settings.OPENAI_API_KEY_2024",  # attributes with a date or a version
        "token = os.environ.HF_TOKEN_2024_05",
        "password = secrets.db_password_v20240101",
        "api_key: self.client_config_2024v1",
    ],
)
def test_code_and_prose_in_those_shapes_are_not_credentials(value: str) -> None:
    assert D.check_env("APP_CONFIG_1", value) is None, value


def test_vault_tokens_of_24_characters_are_recognised() -> None:
    """`vault operator init` prints the root token as hvs. and 24 characters."""
    value = "hv" + "s." + "6j4cuewowBGit65rheNoceI7"
    det = D.check_env("APP_CONFIG_1", value)
    assert det is not None
    assert det.rule == "vault-short-token"
    assert D.check_env("APP_CONFIG_1", "hv" + "s.6j4cuewowBGit65rhe") is None  # too short
    # host names and words with that prefix are not tokens (no digits and capitals mixed)
    for text in (
        "http://hv" + "s.internal-services-cluster-01/",
        "hv" + "s.productionclusterregionone",
    ):
        assert D.check_env("APP_CONFIG_1", text) is None, text


def test_infura_websocket_endpoint_is_redacted() -> None:
    url = "wss://mainnet.infura.io/ws/v3/" + hexs(32)
    assert D.check_env("APP_CONFIG_1", url) is not None
    assert "[REDACTED]" in redact(url)


def test_a_name_saying_digest_or_fingerprint_announces_no_providers_credential() -> None:
    """ELASTICSEARCH_CA_TRUSTED_FINGERPRINT names Elastic, but its value is a certificate's
    SHA-256, not an Elastic API key; the same for a flag."""
    digest = "3fa9" * 16
    assert D.check_env("FLEET_SERVER_ELASTICSEARCH_CA_TRUSTED_FINGERPRINT", digest) is None
    assert D.check_env("ELASTIC_VERSION_HASH", digest) is None
    assert D.check_args(["--elasticsearch.ssl.ca_trusted_fingerprint=" + digest]) == []


def test_rails_secret_key_base_is_a_secret_key() -> None:
    """Rails derives its keys from SECRET_KEY_BASE: the name ends in BASE, the value is the
    application's master secret."""
    value = hexs(128)
    for name in ("SECRET_KEY_BASE", "secret_key_base", "secretKeyBase"):
        assert kind_of(D.check_env(name, value)) == "secret key", name
    assert D.check_env("KEY_BASE", value) is None  # no credential noun before it
    assert D.check_env("API_BASE", "https://api.corp.internal/v2") is None


@pytest.mark.parametrize(
    "template",
    [
        "docker login -u ci -p {s} registry.corp.example",
        "echo start && podman login -u ci -p '{s}' quay.io",
        "helm registry login r.corp.example -u ci -p {s}",
        "az login --service-principal -u http://ml -p {s} --tenant t1",
        "/opt/mssql-tools/bin/sqlcmd -S db -U sa -P{s} -Q 'select 1'",
        "ldapadd -x -D cn=admin,dc=corp -w {s} -f users.ldif",
        "mongosh --host db -u admin -p {s} --authenticationDatabase admin",
        "rabbitmqctl add_user ml {s} && rabbitmqctl set_user_tags ml management",
        "rabbitmqctl change_password 'ml' '{s}'",
        "openssl rsa -in key.pem -passin 'pass:{s}' -out plain.pem",
        "keytool -import -noprompt -storepass {s} -keystore /etc/ssl/k.jks",
        "redis-server --requirepass {s} --appendonly yes",
        # written other ways (found by review)
        "keytool -genkeypair -storepass {s} -keystore k.jks",  # after an option named key…
        "keytool -importkeystore -srcstorepass {s} -srckeystore a.p12",
        "openssl enc -aes-256-cbc -pass pass:{s} -in a",
        'openssl pkcs12 -export -passout pass:"{s}" -out a.p12',
        "ALTER USER 'root'@'localhost' IDENTIFIED WITH caching_sha2_password BY '{s}';",
        "ALTER ROLE app ENCRYPTED PASSWORD  '{s}';",
        "CREATE USER app\n  WITH PASSWORD '{s}';\n",  # over several lines
        "docker --config /tmp/cfg login -u ci -p {s} r.corp",
        "az acr login -n reg -u ci -p {s}",
        "docker.exe login -u ci -p {s} r.corp",
        "rabbitmqctl add_user ml \\\n  {s}\n",
        "openssl pkcs12 -export -passout \\\n  pass:{s} -out a.p12\n",
        "cqlsh -u cassandra -p '{s}' cassandra-0 -e 'DESCRIBE KEYSPACES'",
        "cqlsh -u cassandra -p{s} cassandra-0",
        "rabbitmqadmin --host mq --username admin --password={s} list queues",
        "exec nats-server --user app --pass {s} -js",
        'nats --user app --password "{s}" stream ls',
        "ETCDCTL_API=3 etcdctl --user root:{s} get / --prefix",
        "lftp -u 'backup,{s}' sftp://nas -e 'mirror /data'",
        "vault kv put -mount=secret db/features password={s} ttl=1h",
        "kubectl exec vault-0 -- vault write database/config/features \\\n"
        "  plugin_name=postgresql-database-plugin password='{s}'",
        'vault kv patch secret/ml db_password="{s}"',
    ],
)
def test_client_passwords_in_scripts(template: str) -> None:
    """The same clients written in a script (``sh -c``, an init script in a ConfigMap)."""
    secret = "Zq9rT4vX" + rnd(12)
    text = template.format(s=secret)
    for found in (D.check_text("init.sh", text), [D.check_env("APP_CONFIG_1", text)]):
        assert [(d.kind, d.fingerprint) for d in found if d] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    "text",
    [
        "docker run -p 8080:80 nginx && docker login -u ci --password-stdin r.corp.example",
        "docker login -u ci -p $REGISTRY_PASSWORD r.corp.example",
        "ldapsearch -x -W -D cn=admin,dc=corp",
        "mongod --bind_ip_all -p 27017",
        'rabbitmqctl add_user ml "$RABBITMQ_PASSWORD"',
        "openssl req -new -key k.pem -passin env:KEY_PASSWORD -out r.csr",
        "kubectl login -p Zq9rT4vX2mKp7W",  # no such client
        "etcdctl --user root get / && lftp -u backup sftp://nas",  # names alone: they ask
        "nats-server --port 4222 --user app --pass $NATS_PASSWORD",
        "cqlsh -u cassandra -p 9042 cassandra-0",  # (a port is no password)
        "cqlsh -u cassandra -p$CASSANDRA_PASSWORD cassandra-0",
        "etcdctl user add ml-reader && etcdctl user grant-role ml-reader reader",  # it asks
        "etcdctl role add ml:reader",  # a role, not a user
        'mysqladmin -u root password "$MYSQL_ROOT_PASSWORD"',
        "until mysqladmin ping -h db --silent; do sleep 1; done",
        "mysqladmin -u root -p password",  # it asks (twice)
        # prose that names the command (a command may start after a quote)
        'mysqladmin -uroot -p"$PW" password "$NEW" || echo "mysqladmin password failed, retrying"',
        'log "mysqladmin password updated successfully"',
        "vault write auth/approle/login role_id=$ROLE_ID secret_id=@/vault/secret-id",
        "vault write auth/approle/login role_id=$ROLE_ID secret_id=$SECRET_ID",
        "aws secretsmanager get-secret-value --secret-id prod/db/password",
        "helm install nats nats/nats --set auth.enabled=false -p x",  # not the nats CLI
        # vault's data read from a file or stdin, a variable, a path that is no pair
        "vault kv put secret/db password=@/run/secrets/db-password",
        "vault kv put secret/db password=@pw.txt && vault kv put secret/x token=-",
        'vault write database/config/features password="${DB_PASSWORD}"',
        "vault kv get -field=password secret/db",
        "vault write -f auth/approle/role/ml/secret-id",
        "curl -F password=@pw.txt -F file=@model.bin https://upload.corp.example",
        "mc admin user add local ml-reader",  # no secret: mc asks
        "echo $HTPASSWORD | htpasswd -i /auth/htpasswd admin",
        "htpasswd -c /auth/htpasswd admin <<< Zq9rT4vX2mKp7W",  # no -i: it prompts
        "docker login -u ci --password-stdin r.corp; cat <<< Zq9rT4vX2mKp7W",  # cat's, not docker's
        "lftp -u anonymous,ml-team@corp.example ftp.corp.example",  # an e-mail by custom
    ],
)
def test_client_commands_without_a_literal_password_are_clean(text: str) -> None:
    assert D.check_text("init.sh", text) == []


@pytest.mark.parametrize(
    "template",
    [
        "ALTER USER app WITH PASSWORD '{s}';",
        "CREATE USER app IDENTIFIED BY '{s}';",
        "GRANT ALL ON features.* TO 'app'@'%' IDENTIFIED BY '{s}';",
        "CREATE USER 'app'@'%' IDENTIFIED WITH mysql_native_password BY '{s}';",
        "CREATE USER scott IDENTIFIED BY {s};",  # Oracle: unquoted
        "CREATE ROLE \"ml\" WITH LOGIN ENCRYPTED PASSWORD '{s}';",
        "CREATE LOGIN app WITH PASSWORD = '{s}', CHECK_POLICY = OFF;",
        "SET PASSWORD FOR 'root'@'localhost' = PASSWORD('{s}');",
        "psql -U postgres -c \"ALTER USER postgres PASSWORD '{s}'\"",
        "#!/bin/sh\npsql -U postgres <<EOF\nCREATE USER ml WITH PASSWORD '{s}';\nEOF\n",
    ],
)
def test_sql_that_sets_a_password(template: str) -> None:
    """Init scripts of databases (a ConfigMap's init.sql, a Job's psql -c) set passwords in SQL:
    MySQL's and Oracle's IDENTIFIED BY, PostgreSQL's and SQL Server's PASSWORD clauses."""
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text("init.sql", template.format(s=secret))
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    "text",
    [
        "ALTER USER app WITH PASSWORD 'md5" + "0123456789abcdef" * 2 + "';",  # a stored hash
        "ALTER ROLE app PASSWORD 'SCRAM-SHA-256$4096:" + "c2FsdA==$" + "a" * 44 + "';",
        "CREATE USER app IDENTIFIED BY PASSWORD '*" + "2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19';",
        "CREATE USER app IDENTIFIED BY VALUES 'S:0123456789ABCDEF';",
        "CREATE USER app WITH PASSWORD :'app_password';",  # psql's variable
        "ALTER USER app WITH PASSWORD '${DB_PASSWORD}';",
        "CREATE USER app IDENTIFIED BY 'changeme';",
        "ALTER ROLE app WITH PASSWORD NULL;",
        "CREATE USER app IDENTIFIED BY password_from_vault();",
    ],
)
def test_sql_without_a_literal_password_is_clean(text: str) -> None:
    assert D.check_text("init.sql", text) == []


def test_oracle_jdbc_urls_carry_user_and_password_before_the_host() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    for url in (
        f"jdbc:oracle:thin:app/{secret}@//db.corp.example:1521/FEATURES",
        f"jdbc:oracle:thin:app/{secret}@db.corp.example:1521:ORCL",
    ):
        det = D.check_env("DATASOURCE_URL", url)
        assert (kind_of(det), det and det.fingerprint) == ("password in URL", fingerprint(secret))
    no_password = "jdbc:oracle:thin:@//db.corp.example:1521/FEATURES"  # a wallet's, or a proxy's
    assert D.check_env("DATASOURCE_URL", no_password) is None


def test_a_proxy_directive_setting_basic_credentials_on_one_line() -> None:
    """nginx's proxy_set_header, HAProxy's set-header: the header's name, a blank, its value."""
    secret = "Zq9r" + rnd(8)  # (a short pair: no base64 blob long enough to be decoded alone)
    basic = base64.b64encode(f"admin:{secret}".encode()).decode()
    for line in (
        f'proxy_set_header Authorization "Basic {basic}";',
        f'http-request set-header Authorization "Basic {basic}"',
    ):
        assert kind_of(D.check_env("NGINX_SNIPPET", line)) == "HTTP basic credentials", line
    assert D.check_env("NGINX_SNIPPET", "auth_basic off; # Basic auth is done upstream") is None


@pytest.mark.parametrize(
    "template",
    [
        "helm install pg bitnami/postgresql --set auth.postgresPassword={s}",
        "helm upgrade ml ./chart --set image.tag=1.4,global.postgresql.auth.password={s},x=1",
        'helm install cache bitnami/redis --set-string auth.password="{s}"',
        "helm install cache bitnami/redis --set auth.password='{s}',replica.replicaCount=1",
        "kubectl create secret generic db --from-literal=password={s}",
        "kubectl create secret generic db --from-literal=username=app --from-literal password={s}",
        "terraform apply -auto-approve -var 'db_password={s}'",
        'ansible-playbook site.yml --extra-vars "db_user=app db_password={s}"',
        "argo submit train.yaml -p hf_token={s}",
    ],
)
def test_key_value_pairs_given_to_a_flag(template: str) -> None:
    """helm's --set, kubectl's --from-literal, terraform's -var, ansible's --extra-vars: each
    value of a credential-named key is a literal (a flag's value is never code)."""
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text("deploy.sh", template.format(s=secret))
    assert [d.fingerprint for d in found] == [fingerprint(secret)]


@pytest.mark.parametrize(
    "text",
    [
        "helm install pg bitnami/postgresql --set auth.password=$DB_PASSWORD",
        "helm install pg bitnami/postgresql --set auth.existingSecret=pg-creds,image.tag=16.2",
        "kubectl create secret generic db --from-literal=password=$(cat /run/pw)",
        "helm install web ./chart --set-file tls.key=./certs/tls.key",
        "python train.py --lr=0.1 --token_budget=1000 --max_tokens=4096",
        "terraform apply -var 'db_password=${var.generated}'",
        "helm install pg ./chart --set auth.password={{ .Values.pw }}",
    ],
)
def test_key_value_pairs_given_to_a_flag_without_a_literal(text: str) -> None:
    assert D.check_text("deploy.sh", text) == []


def test_key_value_pairs_given_to_a_flag_in_an_argument_list() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    args = ["helm", "install", "ml", "./chart", "--set", f"image.tag=1.4,auth.password={secret}"]
    assert [(i, d.fingerprint) for i, d in D.check_args(args)] == [(5, fingerprint(secret))]
    clean = ["helm", "install", "ml", "./chart", "--set", "image.tag=1.4,auth.existingSecret=pg"]
    assert D.check_args(clean) == []


@pytest.mark.parametrize(
    ("args", "at", "kind"),
    [
        (["mc", "alias", "set", "minio", "http://minio:9000", "admin", "{s}"], 6, "secret key"),
        (["mc", "admin", "user", "add", "local", "ml-reader", "{s}"], 6, "secret key"),
        (["mc", "config", "host", "add", "s3", "https://s3", "AKIA", "{s}", "--api", "S3v4"], 7,
         "secret key"),
        (["aws", "configure", "--profile", "ml", "set", "aws_secret_access_key", "{s}"], 6,
         "AWS secret access key"),
        (["htpasswd", "-bc", "/etc/nginx/.htpasswd", "admin", "{s}"], 4, "password"),
        (["htpasswd", "-nbB", "admin", "{s}"], 3, "password"),
        (["sudo", "htpasswd", "-b", "-C", "12", "/auth/users", "admin", "{s}"], 7, "password"),
        (["npm", "config", "set", "//registry.npmjs.org/:_authToken", "{s}"], 4, "token"),
        (["git", "config", "--global", "user.password", "{s}"], 4, "password"),
        (["influx", "setup", "-u", "admin", "-p", "{s}", "-o", "ml", "-b", "metrics", "-f"], 5,
         "password"),
        (["mysqladmin", "-u", "root", "-h", "db", "password", "{s}"], 6, "password"),
        (["mysqladmin", "--user=root", "-pold", "password", "{s}", "flush-privileges"], 4,
         "password"),
        (["vault", "write", "auth/approle/login", "role_id=ml-training", "secret_id={s}"], 4,
         "secret"),
    ],
)  # fmt: skip
def test_passwords_given_as_positional_arguments(args: list[str], at: int, kind: str) -> None:
    """MinIO's mc alias set, htpasswd -b, configuration setters: the password is an argument
    of its own, after the subcommand (and a setter's credential-named key)."""
    secret = "Zq9rT4vX" + rnd(12)
    hits = D.check_args([a.format(s=secret) for a in args])
    assert [(i, d.kind, d.fingerprint) for i, d in hits] == [(at, kind, fingerprint(secret))]
    script = " ".join(f"'{a}'" if a == "{s}" else a for a in args).format(s=secret)
    assert [(d.kind, d.fingerprint) for d in D.check_text("init.sh", script)] == [
        (kind, fingerprint(secret))
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["htpasswd", "-c", "/etc/nginx/.htpasswd", "admin"],  # prompts
        ["mc", "alias", "set", "minio", "http://minio:9000", "admin", "$(MINIO_SECRET_KEY)"],
        ["mc", "alias", "list"],
        ["aws", "configure", "set", "region", "us-east-1"],
        ["git", "config", "--global", "user.name", "Ada Lovelace"],
        ["npm", "config", "set", "registry", "https://npm.corp.example"],
        ["git", "config", "--global", "credential.helper", "store"],
        ["etcdctl", "user", "add", "ml-reader"],  # prompts
        ["etcdctl", "--endpoints", "https://etcd:2379", "role", "add", "ml:reader"],
        ["mysqladmin", "-u", "root", "-h", "db", "status"],
        ["mysqladmin", "-u", "root", "-p", "password"],  # prompts
        ["vault", "write", "secret/ml", "secret_id=ml-training"],  # not an AppRole's login
    ],
)
def test_positional_arguments_that_are_no_password(args: list[str]) -> None:
    assert D.check_args(args) == []
    assert D.check_text("init.sh", " ".join(args)) == []


def test_a_short_flag_written_with_an_equals_sign_gives_what_its_long_form_gives() -> None:
    """cqlsh -p=PW (optparse would even read "=PW"): the password its --password=PW gives, in
    an argument list as in a script, so both carry one fingerprint."""
    secret = "Zq9rT4vX" + rnd(12)
    args = ["cqlsh", "-u", "cassandra", f"-p={secret}", "cassandra-0"]
    assert [(i, d.fingerprint) for i, d in D.check_args(args)] == [(3, fingerprint(secret))]
    found = D.check_text("init.sh", " ".join(args))
    assert [d.fingerprint for d in found] == [fingerprint(secret)]


def test_etcdctl_user_add_takes_a_name_and_a_password_in_one_argument() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    args = ["etcdctl", "--endpoints", "https://etcd:2379", "user", "add", f"ml-writer:{secret}"]
    assert [(i, d.kind, d.fingerprint) for i, d in D.check_args(args)] == [
        (5, "password", fingerprint(secret))
    ]
    script = f"ETCDCTL_API=3 etcdctl user add ml-writer:{secret} && etcdctl user list"
    found = D.check_text("init.sh", script)
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("ETCDCTL_USER", "root:{s}", "credential"),  # etcdctl's NAME:PASSWORD
        ("VAULT_SECRET_ID", "{u}", "secret"),  # an AppRole's SecretID (Vault prints a UUID)
        ("APPROLE_SECRET_ID", "{u}", "secret"),
        ("VAULT_SECRET_ID", "{s}", "secret"),
    ],
)
def test_names_that_hold_a_login(name: str, value: str, kind: str) -> None:
    secret = "Zq9rT4vX" + rnd(12)
    uuid = "6a174c20-f6de-a53c-74d2-" + rnd(12, "0123456789abcdef")  # no version bits
    det = D.check_env(name, value.format(s=secret, u=uuid))
    assert det is not None
    assert det.kind == kind


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("ETCDCTL_USER", "root"),  # a name alone: etcdctl asks
        ("ETCDCTL_USER", "root:changeme"),  # a placeholder
        ("VAULT_SECRET_ID", "$(cat /vault/secret-id)"),
        ("SECRET_ID", "prod/db/password"),  # AWS Secrets Manager's: the secret's name
        ("AWS_SECRET_ID", "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"),
        ("VAULT_ROLE_ID", "db02de05-fa39-4855-059b-67221c5c2f63"),  # the public half
        # a secret's name or path under a Vault-ish name (Azure Key Vault's, a KV path)
        ("KEY_VAULT_SECRET_ID", "sql-admin-pw"),
        ("AZURE_KEY_VAULT_SECRET_ID", "storage-conn"),
        ("VAULT_KV_SECRET_ID", "prod-db"),
        ("VAULT_SECRET_ID", "kv/data/payments/stripe"),
        ("VAULT_SECRET_ID", "payments"),
        ("VAULT_SECRET_ID", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_names_near_a_login_that_hold_none(name: str, value: str) -> None:
    assert D.check_env(name, value) is None


def test_a_positional_password_on_a_continued_line() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    script = f"mc alias set minio http://minio:9000 \\\n  admin \\\n  {secret}\nmc mb minio/ml\n"
    assert [d.fingerprint for d in D.check_text("init.sh", script)] == [fingerprint(secret)]


@pytest.mark.parametrize(
    "template",
    [
        "echo {s} | docker login -u ci --password-stdin registry.corp.example",
        'echo "{s}" | helm registry login r.corp.example -u ci --password-stdin',
        "printf '%s' '{s}' | podman login --username ci --password-stdin quay.io",
        "echo 'ml:{s}' | chpasswd",
        'echo "{s}" | passwd --stdin ml',
    ],
)
def test_a_literal_piped_into_what_reads_a_password(template: str) -> None:
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text("init.sh", template.format(s=secret))
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    "text",
    [
        "echo $REGISTRY_PASSWORD | docker login -u ci --password-stdin r.corp.example",
        'echo "$(cat /run/secrets/registry)" | docker login --password-stdin r.corp.example',
        "cat /run/secrets/registry | docker login --password-stdin r.corp.example",
        "echo ml:$ML_PASSWORD | chpasswd",
        "echo done | tee /var/log/setup.log",
    ],
)
def test_piped_values_that_are_no_literal(text: str) -> None:
    assert D.check_text("init.sh", text) == []


@pytest.mark.parametrize(
    "text",
    [
        "Requests are identified by correlationId",  # prose, not SQL
        "# Each tenant is identified by tenantId\nx: 1\n",
        "docker run -d --name mongo -p 27017:27017 mongo:7",  # docker runs; mongo is a name
        "mongosh --host db -u admin -p --authenticationDatabase admin",  # -p alone prompts
        '{"steps":["docker login -u ci --password-stdin r.corp","docker run -d -p 8080:80 x"]}',
        "docker login -u ci --password-stdin r.corp # then docker run -p 8080:80 nginx",
        "CREATE USER 'app'@'%' IDENTIFIED BY RANDOM PASSWORD;\nSELECT 1;\n",
        'cur.execute("ALTER ROLE app PASSWORD \'" + new_pw + "\'")\n',
        '$sql = "CREATE USER app IDENTIFIED BY \'" . $pw . "\'";\nx\n',
        "CREATE USER app IDENTIFIED WITH sha256_hash BY '" + "a3f1" * 16 + "';\nx\n",
        "az login --service-principal -u app -p sp-cert.pem --tenant t1",
        'docker login -u ci -p "`cat /run/secrets/registry`" r.corp',
    ],
)
def test_what_looks_like_a_client_password_but_is_not(text: str) -> None:
    """Found by review: prose, a client's name as another program's argument, a flag that
    prompts, the next command on one line, SQL's random and hashed passwords, code building
    SQL, a certificate file, a command substitution in backticks."""
    assert D.check_text("init.sh", text) == []
    assert D.check_env("SCRIPT", text) is None


@pytest.mark.parametrize(
    "args",
    [
        ["docker", "run", "-d", "--name", "mongo", "-p", "27017:27017", "mongo:7"],
        ["mongosh", "--host", "db", "-u", "admin", "-p", "--authenticationDatabase", "admin"],
        ["az", "login", "--service-principal", "-u", "app", "-p", "sp-cert.pem"],
    ],
)
def test_argument_lists_that_hold_no_client_password(args: list[str]) -> None:
    assert D.check_args(args) == []


def test_openssl_pass_after_its_shortest_flag_in_an_argument_list() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    args = ["openssl", "enc", "-aes-256-cbc", "-pass", f"pass:{secret}", "-in", "a"]
    assert [(i, d.fingerprint) for i, d in D.check_args(args)] == [(4, fingerprint(secret))]


@pytest.mark.parametrize(
    ("key", "template"),
    [
        ("userlist.txt", '"pgbouncer" "{s}"\n"app" "md5' + "0123456789abcdef" * 2 + '"\n'),
        ("ldap.conf", "BASE dc=corp,dc=example\nURI ldap://ldap.corp\nbindpw {s}\n"),
        ("nslcd.conf", "uid nslcd\nbinddn cn=reader,dc=corp\nBINDPW {s}\n"),
        ("slapd.conf", 'database mdb\nrootdn "cn=admin,dc=corp"\nrootpw {s}\n'),
    ],
)
def test_password_files_and_directives(key: str, template: str) -> None:
    """PgBouncer's auth file ("user" "password" a line), OpenLDAP's bindpw and rootpw."""
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text(key, template.format(s=secret))
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    ("key", "text"),
    [
        (
            "userlist.txt",
            '"app" "SCRAM-SHA-256$4096:c2FsdA==$' + "a" * 44 + '"\n"x" "md5' + "1" * 32 + '"\n',
        ),
        ("slapd.conf", "rootdn cn=admin\nrootpw {SSHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n"),
        ("nslcd.conf", "uid nslcd\nbindpw ${LDAP_BIND_PASSWORD}\n"),
        ("README", "Set the bindpw option in ldap.conf to the reader's password.\nDone.\n"),
    ],
)
def test_password_files_and_directives_without_a_password(key: str, text: str) -> None:
    assert D.check_text(key, text) == []


@pytest.mark.parametrize(
    "template",
    [
        "The default password is '{s}'.\n",
        'Log in as admin; the password for user "admin" is "{s}" until you change it.\n',
        "The admin passphrase is `{s}`\n",
        "The password was set to '{s}' by the installer.\n",
    ],
)
def test_a_password_told_in_a_sentence(template: str) -> None:
    """A note or a README kept in a ConfigMap that states the password: the quoted value after
    "is" in the password's sentence."""
    secret = "Zq9rT4vX" + rnd(8)
    found = D.check_text("README.md", template.format(s=secret))
    assert [(d.kind, d.fingerprint) for d in found] == [("password", fingerprint(secret))]


@pytest.mark.parametrize(
    "text",
    [
        "If the password is 'incorrect', the console says so.\n",
        'The password is stored in the Secret "db-admin".\n',
        "The password is '${DB_PASSWORD}' from the environment.\n",
        "The password is '<your-password>'.\n",
        "The password is ''. The user is 'admin'.\n",
        "The password: see the vault. The answer is 'Zq9rT4vX81'.\n",  # another sentence
    ],
)
def test_sentences_about_a_password_that_state_none(text: str) -> None:
    assert D.check_text("README.md", text) == []


@pytest.mark.parametrize(
    "sentence",
    [
        "The password type is 'bcrypt'.",
        "The admin password is 'auto-generated' at install.",
        "The admin password is 'rotated' every day.",
        'The password Secret name is "grafana-admin".',
        "Use the password from the Secret, the username is 'kubeadmin'.",
        "The password for the admin user is 'generated' at install time.",
        "The password is 'scram-sha-256' on this server.",
        "Log in with docker: the password is '--password-stdin'.",
    ],
)
def test_what_a_sentence_says_of_a_password_is_no_password(sentence: str) -> None:
    """Its scheme, its state, the name of what holds it, a flag: in a README of several lines,
    in an env value and in an argument."""
    text = f"# Setup\n\n{sentence}\nSee the docs.\n"
    assert D.check_text("README.md", text) == []
    assert D.check_env("NOTE", sentence) is None
    assert D.check_args(["echo", sentence]) == []


def test_jira_and_confluence_data_center_tokens_are_known_by_what_they_decode_to() -> None:
    """No prefix: the base64 of a 12-digit id, ":" and 20 random bytes, under any name when it
    is the whole value, and after a product's name in a text."""
    own = random.Random("dc-pat")  # noqa: S311 - synthetic test data, not keys
    raw = "".join(own.choices(string.digits, k=12)).encode() + b":" + own.randbytes(20)
    pat = base64.b64encode(raw).decode()
    want = ("Jira/Confluence Data Center personal access token", fingerprint(pat))
    for name, value in (
        ("APP_CONFIG_1", pat),
        ("SETTINGS", f'confluence_pat: "{pat}"'),
        ("SETTINGS", f"JIRA_PAT={pat}"),
    ):
        det = D.check_env(name, value)
        assert (kind_of(det), det and det.fingerprint) == want, value
    # the same length of base64 that decodes otherwise: an id of another length, no ":"
    for other in (b"12345678901:" + raw[12:] + b"x", raw[:12] + b";" + raw[13:]):
        assert D.check_env("APP_CONFIG_1", base64.b64encode(other).decode()) is None


def test_vault_unseal_keys() -> None:
    """A share of Vault's master key: given to ``vault operator unseal`` (also inside ``kubectl
    exec … --``), printed by ``vault operator init`` and kept, or set under a name."""
    key = base64.b64encode(rnd(33).encode()).decode()
    other = base64.b64encode(rnd(33).encode()).decode()
    want = ("Vault unseal key", fingerprint(key))
    for text in (
        f"vault operator unseal {key}",
        f"kubectl exec -n vault vault-0 -- vault operator unseal {key}",
        f"Unseal Key 1: {key}\nUnseal Key 2: {other}\n\nInitial Root Token: (elsewhere)\n",
        f"Recovery Key 1: {key}\n",
    ):
        found = D.check_text("init.sh", text)
        assert (found[0].kind, found[0].fingerprint) == want, text
    args = ["kubectl", "exec", "-n", "vault", "vault-0", "--", "vault", "operator", "unseal", key]
    assert [(i, d.kind, d.fingerprint) for i, d in D.check_args(args)] == [(9, *want)]
    det = D.check_env("VAULT_UNSEAL_KEY", key)
    assert (kind_of(det), det and det.fingerprint) == want
    for clean in (
        "vault operator unseal",  # prompts
        "vault operator unseal -reset",
        "vault operator unseal $UNSEAL_KEY_1",
        "Each unseal key is a share; give three of them.",
    ):
        assert D.check_text("init.sh", clean) == [], clean


def test_a_client_run_by_kubectl_exec_in_an_argument_list() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    args = ["kubectl", "exec", "cache-0", "--", "redis-cli", "-a", secret, "ping"]
    assert [(i, d.fingerprint) for i, d in D.check_args(args)] == [(6, fingerprint(secret))]


def test_every_pattern_compiled_on_first_use_compiles() -> None:
    """A pattern compiled when first used fails only then: compile them all here."""
    from airlock.detectors import _core

    lazy = [v for v in vars(_core).values() if isinstance(v, _core._Lazy)]
    lazy += [p for row in _core._CLIENT_PASSWORDS for p in row[1:]]
    lazy += list(_core._SQL_PASSWORDS)
    assert len(lazy) > 40
    for pattern in lazy:
        assert pattern.compiled.pattern


@pytest.mark.parametrize(
    "text",
    [
        "mc alias set myminio http://minio:9000 {{ .Values.minio.rootUser }} "
        "{{ .Values.minio.rootPassword }}",
        "htpasswd -nb {{ .Values.user }} {{ .Values.pass }}",
        "kubectl create secret generic ssh-key --from-file=ssh-privatekey=id_rsa",
        "helm install x ./chart --set-file auth.password=pw.txt,auth.token=token.txt",
        'helm install x ./chart --set auth.password="`cat /run/pw`"',
        "git config user.password expects plaintext, which is why we avoid it.",
        "htpasswd -b lets scripts supply credentials non-interactively",
        "npm config set //r.corp/:_authToken afterwards, then publish",
        "echo 'ml:$y$j9T$"
        + "a1B2c3D4e5F6g7H8i9J0k1$"
        + "Zq9rT4vXk3Lm8Np2Qw7R" * 2
        + "' | chpasswd -e",
        "az webapp config appsettings set -g rg -n app "
        "--settings DB_PASSWORD=@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/s/db/)",
    ],
)
def test_review_of_pairs_and_positionals_no_credential(text: str) -> None:
    """Found by review: templates, file flags, backticks, prose, chpasswd's hashes (-e), a Key
    Vault reference."""
    assert D.check_text("deploy.sh", text) == []


@pytest.mark.parametrize(
    "args",
    [
        ["kubectl", "create", "secret", "generic", "k", "--from-file=ssh-privatekey=id_rsa"],
        ["helm", "install", "x", "c", "--set", "auth.password=secret,replicaCount=3"],
        ["helm", "install", "x", "c", "--set", "auth.password=,auth.username=appuser-prod"],
        ["helm", "install", "x", "c", "--set", "auth.password=short,image.tag=v1.2.3-build.4567"],
    ],
)
def test_review_of_pair_lists_in_argument_lists_no_credential(args: list[str]) -> None:
    assert D.check_args(args) == []


@pytest.mark.parametrize(
    "template",
    [
        "curl -d 'password={s}&grant_type=password' https://kc.corp/token",
        'curl -d "client_id=app&client_secret={s}" https://kc.corp/token',
        "some-tool --opts 'password={s};other=1'",
        "helm upgrade --install pg x \\\n  --set auth.password={s} \\\n  --wait\n",
        "helm upgrade --install pg x \\\n  --set auth.password={s},image.tag=1 \\\n  --wait\n",
        "helm install pg x --set auth.password={s}\\\n  --wait\n",
        "mc alias set local http://x:9000 admin {s}\\\n",
        'mc alias set minio "http://${{MINIO_HOST}}":9000 AKIAEXAMPLEID {s}',
        'htpasswd -bc "$DIR"/.htpasswd ops {s}',
        "printf '{s}\\n' | docker login -u ci --password-stdin r.corp",
        "echo -e '{s}\\n' | docker login -u ci --password-stdin r.corp",
        "influx setup --username admin --password {s} -o ml -b metrics -f\necho done\n",
        "htpasswd -nbBC 10 \"\" {s} | tr -d ':\\n'",
        "mc --config-dir /tmp/mc alias set local http://x:9000 admin {s}",
        "npm config set --userconfig /tmp/.npmrc //r.corp/:_authToken {s}",
        "git config set --global user.password {s}",
        "npm set //r.corp/:_authToken {s}",
        "mcli alias set local http://x:9000 admin {s}",
        "echo {s} | sudo -E docker login -u ci --password-stdin r.corp",
        "echo {s} | /usr/bin/docker --config /tmp/c login -u ci --password-stdin r.corp",
        "echo ml:{s} | /usr/sbin/chpasswd",
        "echo {s} | \\\n  docker login -u ci \\\n  --password-stdin r.corp",
        "docker login -u ci --password-stdin r.corp <<< '{s}'",
        'args: ["upgrade", "--install", "pg", "x", "--set", "auth.password={s}"]',
        "  script:\n    - mc alias set local http://x:9000 admin {s}\n",
        "RUN htpasswd -bc /etc/nginx/.htpasswd admin {s}",
        "mc admin user add local ml-reader {s}",
        "echo '{s}' | htpasswd -i -c /etc/nginx/.htpasswd admin",
        "htpasswd -iB /auth/htpasswd admin <<< '{s}'",
        # a second review: redirections and substitutions before a here-string, htpasswd after
        # a prefix, vault's second credential-named pair, quoted values after a separator
        "docker login -u ci --password-stdin r.corp >/dev/null 2>&1 <<< '{s}'",
        "docker login -u ci --password-stdin r.corp &>/dev/null <<< '{s}'",
        "docker login -u \"$(cat /run/u | tr -d x)\" --password-stdin r.corp <<< '{s}'",
        "AUTH=$(htpasswd -niB admin <<< '{s}')",
        "sudo -u www-data htpasswd -i /auth/htpasswd admin <<< {s}",
        "kubectl exec -i nginx-0 -- htpasswd -i /auth/htpasswd admin <<< {s}",
        "vault kv put secret/app password=$DB_PASSWORD api_key={s}",
        "vault kv put secret/app password=changeme token={s}",
        "vault write -f database/rotate-root/pg password={s}",
        # redirections and registries after a positional password
        "mc alias set local http://localhost:9000 minio {s} 2>/dev/null",
        "htpasswd -nbB admin {s} 2>/dev/null",
        "git config --global user.password {s} 2>&1",
        "npm config set //r.corp/:_authToken {s} --registry https://r.corp/",
        "helm install r \\\n  --set root.password={s},user.database=app \\\n  stable/mariadb\n",
        'etcdctl --user root:"{s}" get / --prefix',
        "lftp -u ftpuser,'{s}' sftp://nas",
    ],
)
def test_review_of_pairs_and_positionals_the_secret_itself(template: str) -> None:
    """Found by review: the value reported is the secret, not the rest of a line or a list
    (&-joined and continued lines, escapes, concatenated words, printf's \\n), and the same
    commands written other ways are read."""
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text("deploy.sh", template.format(s=secret))
    assert [d.fingerprint for d in found] == [fingerprint(secret)], found


def test_review_of_pairs_escaped_comma_and_multiple_chpasswd_lines() -> None:
    secret = "Zq9rT4vX" + rnd(12)
    found = D.check_text("deploy.sh", f"helm install pg x --set auth.password={secret}\\,abc,x=1")
    assert [d.fingerprint for d in found] == [fingerprint(secret + ",abc")]
    other = "Wm3pR8sT" + rnd(12)
    script = f"#!/bin/sh\necho 'ml:{secret}\\nroot:{other}' | chpasswd\n"  # (a script: all)
    found = D.check_text("init.sh", script)
    assert sorted(d.fingerprint for d in found) == sorted([fingerprint(secret), fingerprint(other)])


@pytest.mark.parametrize(
    ("args", "at"),
    [
        (["helm", "install", "pg", "x", "--set=x=1,auth.password={s}"], 4),
        (["helm", "install", "pg", "x", "--set=auth.password={s},x=1"], 4),
        (["ansible-playbook", "site.yml", "--extra-vars", "db_user=app db_password={s}"], 3),
        (["ansible-playbook", "site.yml", "-e", "db_password={s} db_user=app"], 3),
        (["htpasswd", "-bBC", "10", "/etc/nginx/.htpasswd", "admin", "{s}"], 5),
        (["mc", "alias", "set", "--api", "S3v4", "minio", "http://minio:9000", "AKIAID", "{s}"], 8),
        (["aws", "--region", "eu-west-1", "configure", "set", "aws_secret_access_key", "{s}"], 6),
    ],
)
def test_review_of_pairs_and_positionals_in_argument_lists(args: list[str], at: int) -> None:
    secret = "Zq9rT4vX" + rnd(12)
    hits = D.check_args([a.format(s=secret) for a in args])
    assert [(i, d.fingerprint) for i, d in hits] == [(at, fingerprint(secret))]


@pytest.mark.parametrize(
    ("args", "kind"),
    [
        (["server", "--database-url=postgres://app:{s}@db:5432/app?sslmode=require&x=1"],
         "password in URL"),
        (["docker", "run", "-e", "DATABASE_URL=postgres://app:{s}@db/app?sslmode=require", "i"],
         "password in URL"),
        (["app", "--password={b64}"], "password"),
    ],
)  # fmt: skip
def test_a_flag_value_holding_equals_signs_is_no_pair_list(args: list[str], kind: str) -> None:
    """Found by review: a URL's query or base64 padding ("=") made the value a "list of pairs"
    that hid it from the usual judging."""
    secret = "Zq9rT4vX" + rnd(12)
    b64 = base64.b64encode(secret.encode() + b"\x01\x02").decode()  # 22 bytes: "=="
    assert b64.endswith("==")
    hits = D.check_args([a.format(s=secret, b64=b64) for a in args])
    want = fingerprint(b64 if "{b64}" in "".join(args) else secret)
    assert [(d.kind, d.fingerprint) for _i, d in hits] == [(kind, want)]


@pytest.mark.parametrize(
    "text",
    [
        "Flags:\n  --password string   the password to use\n  --token string      bearer token\n",
        "#!/bin/sh\n# Provided --token should take precedence\nkubectl get pods\n",
        "CREATE TABLE t (id int);\n--password hunter2x\n",
        "Run:\n  vault operator unseal thrice\nThen done\n",
        "Unseal Key 1: abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR\nx\n",
        "helm install my-release \\\n  --set root.password=secretpassword,user.database=app \\\n"
        "  stable/mariadb\n",
        "helm x \\\n --set auth.password=$PW,image.tag=1 \\\n --wait\n",
    ],
)
def test_texts_a_third_review_found_reported(text: str) -> None:
    """Usage text, a comment, SQL's comment, prose after the unseal command, a typed key, a
    README's placeholder password with more pairs after it, a variable."""
    assert D.check_text("doc.md", text) == []


def test_every_client_row_is_reached_by_the_routing_keywords() -> None:
    """A client's row runs on a value only when the matcher routed it to the command scan: each
    row's gate word must be one of the routing keywords (a missing one was a review's find)."""
    from airlock.detectors import _core, _matcher

    routed = set(_matcher._TAG_KEYWORDS[_matcher.TAG_COMMAND])
    for names, _command, _flag in _core._CLIENT_PASSWORDS:
        assert set(names) <= routed, names
