"""Lookalikes, names and non-secret shapes: what the credential detectors refuse, and why.

Every value is synthetic and assembled at run time ("gh" "p_" ...), so no token-shaped literal
sits in this file. Each rule has a quiet case (the lookalike or non-secret) and a firing case (a
value of the same length and alphabet that is a credential).
"""

from __future__ import annotations

import base64
import json
import random
import string

import pytest
from airlock.detectors import DEFAULT_DETECTORS as D
from airlock.detectors._matcher import iter_hits, lookalike
from airlock.detectors._values import is_dotted_name, is_filler, is_placeholder, is_words

from tests.support.tokens import crc_token

_rng = random.Random(47)  # noqa: S311 - synthetic test data, not keys
ALNUM = string.ascii_letters + string.digits
B64 = ALNUM + "+/"
HEXL = "0123456789abcdef"


def rnd(n: int, alphabet: str = ALNUM) -> str:
    while True:
        out = "".join(_rng.choice(alphabet) for _ in range(n))
        # keep clear of the patterns under test (documentation words, alphabet runs)
        if not is_placeholder(out) and not is_filler(out) and not lookalike(out):
            return out


def crc(prefix: str) -> str:
    return crc_token(prefix, rnd(30))


def rule_ids(text: str) -> set[str]:
    return {h.rule for h in iter_hits(text)}


def kind(name: str, value: str) -> str | None:
    det = D.check_env(name, value)
    return None if det is None else det.kind


# -- provider lookalikes under a credential name ------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        lambda: "gh" + "p" + rnd(36),  # separator dropped
        lambda: "gl" + "pat_" + rnd(20),  # separator swapped ("glpat-")
        lambda: "sk." + "pyx-" + rnd(45),  # separator swapped ("sk-pyx-")
        lambda: "HR" + "KU_AA" + rnd(58),  # separator swapped ("HRKU-AA")
        lambda: "x" + "gh" + "p_" + rnd(36),  # prefix glued to a word
        lambda: "my" + "tskey-" + "api-" + rnd(12) + "-" + rnd(24),
        lambda: "not" + "SG." + rnd(22) + "." + rnd(43),
        lambda: "da" + "pi" + rnd(8, HEXL),  # too short for its format
        lambda: "ak-proj-" + rnd(20) + "T3Blbk" + "FJ" + rnd(20),  # OpenAI's marker, refused
        lambda: "pk" + "_live_" + rnd(24),  # a publishable key: public by design
        lambda: "sq0" + "idp-" + rnd(22),  # a Square application id
    ],
)
def test_lookalikes_of_provider_formats_are_not_reported_by_name(value: object) -> None:
    v = value()  # type: ignore[operator]
    assert lookalike(v)
    assert D.check_env("API_TOKEN", v) is None
    assert D.check_env("APP_CONFIG_1", v) is None


def test_the_same_shapes_without_a_provider_prefix_are_reported_by_name() -> None:
    for v in ("ab" + "q" + rnd(36), "zq" + "pat_" + rnd(20), "QX" + "KU_AA" + rnd(58)):
        assert not lookalike(v)
        assert kind("API_TOKEN", v) == "token"
    # and the real formats of the prefixes above are findings under any name
    assert kind("APP_CONFIG_1", crc("gh" + "p_")) == "GitHub token"
    assert kind("APP_CONFIG_1", "sk" + "_live_" + rnd(24)) == "Stripe secret key"


def test_generic_prefix_words_are_not_lookalikes() -> None:
    # "API-", "key_", "secret_" start some vendors' formats but are ordinary words
    for v in ("api" + rnd(30), "key" + rnd(30), "secret" + rnd(30)):
        assert not lookalike(v)
        assert D.check_env("API_TOKEN", v) is not None


def test_bare_argument_lookalikes_and_typed_fillers_are_not_high_entropy() -> None:
    random_arg = rnd(40)
    assert [d.kind for _i, d in D.check_args(["run", random_arg])] == ["high-entropy string"]
    mangled = "gh" + "s" + rnd(36)  # the GitHub prefix without its separator
    typed = "".join(c + c.upper() for c in "abcdefghijklmnop") + "123456"
    repeated = rnd(13) * 3
    for arg in (mangled, typed, repeated):
        assert D.check_args(["run", arg]) == [], arg


# -- values that are names, code or configuration -----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "inference.ml-prod.corp.example",  # a host name
        "header.payload",  # a dotted name
        "BILLING_workspace",  # words
        "notActuallyAnything",
        "apiToken",  # the name of a variable that holds the token
        "vapidPrivateKey",
        "hf_token",
    ],
)
def test_names_and_identifiers_under_a_token_name_are_not_findings(value: str) -> None:
    assert D.check_env("API_TOKEN", value) is None
    assert D.check_env("SERVICE_API_KEY", value) is None


def test_a_chosen_secret_may_be_words_or_dotted() -> None:
    assert kind("SESSION_SECRET", "copper-lantern-orchard-violet") == "secret"
    assert kind("DB_PASSWORD", "river.stone.lamp") == "password"
    assert kind("DB_PASSWORD", "dbPassword") is None  # still a variable name, not a password


def test_a_configuration_line_is_read_for_its_own_keys() -> None:
    # the line as a whole is not a token; a credential-named key inside it is
    assert D.check_env("API_TOKEN", 'HELLO="' + rnd(20) + '"') is None
    assert D.check_env("API_TOKEN", "PUBLIC_KEY: '" + rnd(64, HEXL) + "'") is None
    assert kind("API_TOKEN", 'DB_PASSWORD="' + rnd(16) + '"') == "password"


# -- placeholders --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["REPLACE_WITH_YOUR_TOKEN", "not-a-real-key-" + "x1", "NotASecret123", "{TOKEN}", "foo_" + "z"],
)
def test_documentation_phrases_and_templates_are_placeholders(value: str) -> None:
    assert is_placeholder(value)


def test_placeholders_inside_urls_and_after_names() -> None:
    assert D.check_value("https://svc:REPLACE_WITH_PASSWORD@db.corp.example/app") is None
    assert D.check_value("https://{USER}:{PASS}@db.corp.example/app") is None
    assert D.check_value("https://svc:" + rnd(16) + "@db.corp.example/app") is not None
    assert D.check_env("API_TOKEN", "foo_" + rnd(36)) is None  # a metasyntactic example
    assert D.check_env("API_TOKEN", "fob_" + rnd(36)) is not None
    assert D.check_env("API_TOKEN", "not_a_real_token_" + rnd(8)) is None


def test_filler_patterns() -> None:
    assert is_filler("abcdefgh" + rnd(20))
    assert is_filler("".join(f"{c}{i % 10}" for i, c in enumerate("abcdefghijkl")))
    assert is_filler("-".join(["ABCD", "EFGH", "IJKL", "MNOP"]))
    assert is_filler(rnd(10) * 2)
    assert not is_filler("short12345")
    # random tokens are not fillers (checked on many, with a fixed seed)
    rng = random.Random(5)  # noqa: S311 - synthetic test data
    for _ in range(2000):
        token = "".join(rng.choice(ALNUM) for _ in range(40))
        assert not is_filler(token), token
        assert not is_words(token), token
        assert not is_dotted_name(token.lower()), token


# -- headers, cookies, arguments, encoded documents, provider names -----------------------------


def test_a_bearer_value_that_is_only_a_jwt_header_is_not_a_token() -> None:
    header = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"HS256"}').decode().rstrip("=")
    assert D.check_env("APP_CONFIG_1", "Authorization: Bearer " + header) is None
    det = D.check_env("APP_CONFIG_1", "Authorization: Bearer " + rnd(32))
    assert det is not None
    assert det.kind == "bearer token"


def test_anti_forgery_cookies_are_not_session_credentials() -> None:
    assert "http-cookie" not in rule_ids("GET / HTTP/1.1\nCookie: csrf_token=" + rnd(32))
    assert "http-cookie" not in rule_ids("Set-Cookie: XSRF-TOKEN=" + rnd(32) + "; Path=/")
    assert "http-cookie" in rule_ids("GET / HTTP/1.1\nCookie: session=" + rnd(32))


def test_arguments_whose_format_spans_an_equals_sign() -> None:
    encoded = base64.b64encode(crc("gh" + "p_").encode()).decode()
    assert encoded.endswith("=")
    assert [d.kind for _i, d in D.check_args([encoded])] == ["base64-encoded GitHub token"]
    account_key = "Account" + "Key=" + rnd(86, B64) + "=="
    assert [d.kind for _i, d in D.check_args([account_key])] == ["Azure storage account key"]
    assert D.check_args(["LOG_LEVEL=info", "MODEL=llama"]) == []


def test_a_base64_json_document_is_decoded() -> None:
    keyset = {"primaryKeyId": 1234567, "key": [{"keyData": {"value": rnd(44, B64)}}]}
    blob = base64.b64encode(json.dumps(keyset).encode()).decode()
    assert blob.startswith("eyJ")
    det = D.check_env("APP_CONFIG_1", blob)
    assert det is not None
    assert "Tink" in det.kind
    assert D.check_env("APP_CONFIG_1", base64.b64encode(b'{"replicas": 3}').decode()) is None


def test_provider_names_must_start_a_word_and_stay_near_the_value() -> None:
    key = rnd(32, HEXL)
    assert "datadog-api-key" in rule_ids("DD_API_KEY=" + key)
    assert "datadog-api-key" not in rule_ids("ADD_API_KEY=" + key)  # "dd_api" inside a word
    value = rnd(32)
    assert "mistral-api-key" in rule_ids("myMistralKey=" + value)  # a camelCase hump
    assert "mistral-api-key" not in rule_ids("amistralb " + value)
    assert "mistral-api-key" not in rule_ids("mistral" + " " * 200 + value)


def test_tailscale_keys_of_any_type() -> None:
    for key_type in ("auth", "api", "oauth"):
        key = "tskey-" + key_type + "-" + rnd(12) + "-" + rnd(24)
        assert "tailscale-key" in rule_ids(key)
    assert "tailscale-key" not in rule_ids("my" + "tskey-auth-" + rnd(12) + "-" + rnd(24))


def test_detections_never_hold_the_value() -> None:
    for name, value in (("API_TOKEN", rnd(30)), ("DB_PASSWORD", rnd(14) + "!")):
        det = D.check_env(name, value)
        assert det is not None
        assert value not in repr(det)
        assert value not in str(det)


def test_a_sourcegraph_prefix_on_a_value_its_rule_refuses_is_a_lookalike() -> None:
    """Sourcegraph's rule is written as a regex (its optional parts), so its prefix is listed
    for the lookalike test by hand: a value with sgp_ that the rule refuses is no token."""
    assert (
        D.check_env("API_TOKEN", "sg" + "p_local_d45b6G86aBb0F2Cee943902dbaDBCFCFDD1dA089") is None
    )
    assert D.check_env("API_TOKEN", "sg" + "p_local_" + "d45b6e86" * 5) is not None
