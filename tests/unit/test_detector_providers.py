"""The provider rule table: size, shape, and a positive and near misses for every rule.

Examples are synthetic, built at run time from each rule's own shape (prefix, alphabet, length)
or, for rules written as a raw regex, from the builders below. Prefixes are split ("gh" "p_") so
that secret scanners reading this file see no token.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
from collections.abc import Callable

import pytest
from airlock.detectors import DEFAULT_DETECTORS as D
from airlock.detectors import redact
from airlock.detectors._matcher import (
    _LED_MIN_LEN,
    _led_matches,
    compiled,
    crc32_token_ok,
    iter_hits,
    jwt_ok,
    keywords,
    literal_first,
)
from airlock.detectors._providers import RULES
from airlock.detectors._table import ProviderRule
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.tokens import crc_token

_rng = random.Random(11)  # noqa: S311 - synthetic test data, not keys
ALNUM = string.ascii_letters + string.digits
HEXL = "0123456789abcdef"
_PLACEHOLDERISH = re.compile(r"(?i)example|placeholder|dummy|fake|redacted|changeme|your")


def rnd(n: int, alphabet: str = ALNUM) -> str:
    while True:
        out = "".join(_rng.choice(alphabet) for _ in range(n))
        if _PLACEHOLDERISH.search(out) is None:
            return out


def chars(alphabet: str) -> str:
    """The characters of a regex character-class body such as ``A-Za-z0-9_\\-``."""
    out, i = [], 0
    body = alphabet.replace("\\-", "\x00")
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            out.extend(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            out.append("-" if body[i] == "\x00" else body[i])
            i += 1
    return "".join(out)


def crc(prefix: str) -> str:
    return crc_token(prefix, rnd(30))


_TAIL = re.compile(r"^(?P<lit>\\?[^\[\\]?)\[(?P<cls>[^\]]+)\]\{(?P<n>\d+)\}$")


def tail_example(tail: str) -> str:
    if not tail or tail.endswith("?"):
        return ""
    m = _TAIL.match(tail)
    if m is None:
        return tail  # a literal such as "-X"
    return m.group("lit").lstrip("\\") + rnd(int(m.group("n")), chars(m.group("cls")))


def body(rule: ProviderRule, n: int | None = None) -> str:
    """A random body of the rule's alphabet; "=" (base64 padding) only at the end, as in real
    tokens: "==" inside a value reads as code (a comparison)."""
    if rule.verify == "figma_legacy":  # shapes the alphabet alone does not say
        return rnd(6, string.digits) + "-" + _uuid()
    if rule.verify == "user_colon_password_hex8":
        return rnd(8, HEXL) + ":" + rnd(8, HEXL)
    if rule.verify == "atlassian_dc_pat":  # base64 of a 12-digit id, ":" and 20 random bytes
        raw = rnd(12, string.digits).encode() + b":" + _rng.randbytes(20)
        return base64.b64encode(raw).decode()
    n = rule.length[0] if n is None else n
    alphabet = chars(rule.alphabet)
    if "=" not in alphabet or n < 2:
        return rnd(n, alphabet)
    return rnd(n - 1, alphabet.replace("=", "")) + "="


def example(rule: ProviderRule) -> str:
    if rule.verify == "crc32":
        return crc(rule.prefix)
    if rule.prefix:
        return rule.prefix + body(rule) + tail_example(rule.tail)
    return f"{rule.names[0]}_token = '{body(rule)}'"


def rule_ids(text: str) -> set[str]:
    return {h.rule for h in iter_hits(text)}


TOKEN_RULES = [r for r in RULES if r.prefix]
NEAR_RULES = [r for r in RULES if r.names]
RAW_RULES = [r for r in RULES if not r.prefix and not r.names]


def _jwt(claims: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{rnd(43, ALNUM + '_-')}"


def _uuid() -> str:
    return f"{rnd(8, HEXL)}-{rnd(4, HEXL)}-{rnd(4, HEXL)}-{rnd(4, HEXL)}-{rnd(12, HEXL)}"


B64 = ALNUM + "+/"
U64 = ALNUM + "_-"
CRYPT = ALNUM + "./"

# rule id -> a synthetic text holding one credential in the rule's format
RAW_EXAMPLES: dict[str, Callable[[], str]] = {
    "anthropic-api-key": lambda: "sk" + "-ant-api03-" + rnd(93, U64) + "AA",
    "anthropic-admin-key": lambda: "sk" + "-ant-admin01-" + rnd(93, U64) + "AA",
    "openai-project-key": lambda: "sk" + "-proj-" + rnd(70, U64) + "T3Blbk" + "FJ" + rnd(70, U64),
    "openai-legacy-key": lambda: "sk" + "-" + rnd(20) + "T3Blbk" + "FJ" + rnd(20),
    "firecrawl-api-key": lambda: "f" + "c-" + rnd(32, HEXL),
    "langsmith-api-key": lambda: "lsv2" + "_pt_" + rnd(32, HEXL) + "_" + rnd(10, HEXL),
    "neptune-api-token": lambda: "eyJhcGlfYWRkcmVzcyI6" + rnd(80, B64),
    "aws-bedrock-api-key": lambda: "AB" + "SK" + rnd(120, B64),
    "aws-access-key-id": lambda: "AK" + "IA" + rnd(16, string.ascii_uppercase + string.digits),
    "aws-key-pair": lambda: "AS" + "IA" + rnd(16, string.ascii_uppercase) + ":" + rnd(40, B64),
    "gcp-hmac-key": lambda: "GO" + "OG1" + rnd(56, string.ascii_uppercase) + " " + rnd(40, B64),
    "aws-session-token": lambda: "aws_session_token = " + rnd(200, B64),
    "gcp-api-key": lambda: "AI" + "za" + rnd(35, U64),
    "google-oauth-access-token": lambda: "ya" + "29." + rnd(120, U64),
    "google-oauth-refresh-token": lambda: "1/" + "/0" + rnd(60, U64),
    "firebase-fcm-server-key": lambda: "AAAA" + rnd(7, U64) + ":APA91b" + rnd(134, U64),
    "google-recaptcha-secret": lambda: "recaptcha_secret: 6L" + rnd(38, U64),
    "azure-storage-account-key": lambda: "AccountName=a;Account" + "Key=" + rnd(86, B64) + "==",
    "azure-sas-token": lambda: "https://a.blob.core.windows.net/c?sv=2024&s" + "ig=" + rnd(44),
    "azure-identifiable-storage-key": lambda: rnd(76, B64) + "+AS" + "t" + rnd(5, B64) + "==",
    "azure-identifiable-cosmos-key": lambda: rnd(76, B64) + "AC" + "Db" + rnd(5, B64) + "==",
    "azure-identifiable-servicebus-key": lambda: rnd(33, B64) + "+AS" + "b" + rnd(5, B64) + "=",
    "azure-identifiable-function-key": lambda: rnd(44, U64) + "Az" + "Fu" + rnd(5, U64) + "==",
    "azure-identifiable-search-key": lambda: rnd(42) + "Az" + "Se" + rnd(6),
    "azure-identifiable-acr-key": lambda: rnd(42, B64) + "+AC" + "R" + rnd(6, B64),
    "azure-identifiable-apim-key": lambda: rnd(76) + "AP" + "IM" + rnd(4),
    "azure-identifiable-redis-key": lambda: rnd(33) + "Az" + "Ca" + rnd(7) + "=",
    "azure-ai-services-key": lambda: rnd(52) + "JQQ" + "J99" + rnd(26),
    "azure-entra-client-secret": lambda: rnd(3) + "8Q" + "~" + rnd(34, ALNUM + "_~."),
    "azure-devops-pat": lambda: rnd(52) + "AZ" + "DO" + rnd(28),
    "azure-app-configuration": lambda: (
        "Endpoint=https://cfg.azconfig.io;Id=" + rnd(12) + ";Sec" + "ret=" + rnd(44, B64)
    ),
    "alibaba-access-key-id": lambda: "LT" + "AI" + rnd(20),
    "tencent-secret-id": lambda: "AK" + "ID" + rnd(32),
    "softlayer-api-url": lambda: "https://api.softlayer.com/rest/v3/" + rnd(64, HEXL),
    "flyio-macaroon": lambda: "fm2" + "_" + rnd(200, B64),
    "planetscale-token": lambda: "pscale" + "_tkn_" + rnd(43, U64),
    "vault-legacy-token": lambda: "VAULT_TOKEN=s" + "." + rnd(24),
    "terraform-cloud-token": lambda: rnd(14) + ".atlas" + "v1." + rnd(67, U64),
    "onepassword-secret-key": lambda: (
        "A3"
        + "-"
        + "-".join(rnd(n, string.ascii_uppercase + string.digits) for n in (6, 6, 5, 5, 5, 5))
    ),
    "bitwarden-access-token": lambda: "0." + _uuid() + "." + rnd(30) + ":" + rnd(22, B64) + "==",
    "bitwarden-oauth-secret": lambda: '{"apiKeyClient' + 'Secret": "' + rnd(30) + '"}',
    "tink-keyset": lambda: (
        '{"primaryKeyId": 12345, "key": [{"keyData": {"typeUrl": "t", "value": "'
        + rnd(60, B64)
        + '"}}]}'
    ),
    "vapid-private-key": lambda: "VAPID_PRIVATE_KEY=" + rnd(43, U64),
    "vapid-key-pair": lambda: rnd(43, U64) + ":B" + rnd(86, U64),
    "anthropic-oauth-token": lambda: "sk-ant-" + "oat01-" + rnd(60, U64),
    "twitch-stream-key": lambda: "live" + "_" + rnd(9, string.digits) + "_" + rnd(30),
    "sonarqube-token": lambda: "sq" + "p_" + rnd(40, HEXL),
    "dependency-track-key": lambda: "od" + "t_" + rnd(32),
    "github-fine-grained-pat": lambda: "github" + "_pat_" + rnd(22) + "_" + rnd(59),
    "atlassian-api-token": lambda: "ATATT" + "3" + rnd(180, U64),
    "harness-pat": lambda: "pat." + rnd(22, U64) + "." + rnd(24, HEXL) + "." + rnd(20),
    "jfrog-api-key": lambda: "AK" + "Cp" + rnd(69),
    "jfrog-password": lambda: "AP" + "6" + rnd(20),
    "npm-legacy-auth-token": lambda: "//registry.npmjs.org/:_auth" + "Token=" + _uuid(),
    "pypi-token": lambda: "pypi" + "-AgEIcHlwaS5vcmc" + rnd(150, U64),
    "packagist-token": lambda: "packagist" + "_uak_" + rnd(32, HEXL),
    "slack-webhook-url": lambda: (
        "https://hooks." + "slack.com/services/T" + rnd(10) + "/B" + rnd(10) + "/" + rnd(24)
    ),
    "slack-token": lambda: "xo" + "xb-" + rnd(12, string.digits) + "-" + rnd(24),
    "slack-app-token": lambda: "xa" + "pp-1-A" + rnd(10) + "-" + rnd(13, string.digits),
    "jwt": lambda: _jwt({"sub": "trainer", "exp": 1767225600}),
    "http-cookie": lambda: "GET / HTTP/1.1\nCookie: session=" + rnd(32),
    "discord-bot-token": lambda: "M" + rnd(25, U64) + "." + rnd(6, U64) + "." + rnd(38, U64),
    "discord-webhook-url": lambda: (
        "https://discord.com/api/web" + "hooks/" + rnd(18, string.digits) + "/" + rnd(68, U64)
    ),
    "telegram-bot-token": lambda: rnd(10, string.digits) + ":AA" + rnd(33, U64),
    "teams-webhook-url": lambda: "https://corp.webhook.office.com/webhookb2/" + rnd(60, U64),
    "twilio-api-key": lambda: "S" + "K" + rnd(32, HEXL),
    "sendgrid-api-key": lambda: "S" + "G." + rnd(22, U64) + "." + rnd(43, U64),
    "mailchimp-api-key": lambda: rnd(32, HEXL) + "-us" + "12",
    "mailgun-private-key": lambda: "MAILGUN_KEY=" + "-".join(rnd(n, HEXL) for n in (32, 8, 8)),
    "intercom-token": lambda: "dG9r" + "Oi" + rnd(60, B64),
    "stripe-secret-key": lambda: "sk" + "_live_" + rnd(24),
    "stripe-test-key": lambda: "rk" + "_test_" + rnd(24),
    "braintree-access-token": lambda: (
        "access_token$production$" + rnd(16, string.ascii_lowercase) + "$" + rnd(32, HEXL)
    ),
    "paystack-secret-key": lambda: "sk" + "_live_" + rnd(40, HEXL),
    "plaid-access-token": lambda: "access-" + "production-" + _uuid(),
    "newrelic-license-key": lambda: rnd(36, HEXL) + "NR" + "AL",
    "sentry-org-token": lambda: "sntrys" + "_eyJ" + rnd(80, B64),
    "grafana-api-key": lambda: "eyJr" + "Ijoi" + rnd(70, B64),
    "dynatrace-token": lambda: (
        "dt0c01." + rnd(24, string.ascii_uppercase) + "." + rnd(64, string.ascii_uppercase)
    ),
    "tailscale-key": lambda: "tskey" + "-auth-" + rnd(12) + "-" + rnd(24),
    "ngrok-authtoken": lambda: "NGROK_AUTHTOKEN=2" + rnd(26) + "_" + rnd(21),
    "mapbox-secret-token": lambda: "sk" + ".eyJ" + rnd(60, U64) + "." + rnd(22, U64),
    "facebook-access-token": lambda: "EAA" + "B" + rnd(100),
    "twitter-bearer-token": lambda: "A" * 22 + rnd(90),
    "salesforce-access-token": lambda: "00D" + rnd(15) + "!" + rnd(96),
    "salesforce-refresh-token": lambda: "5A" + "ep" + rnd(90),
    # an app id never starts with 0 (the rule asks [1-9]: a run of digits with a leading 0 is
    # no id)
    "facebook-app-access-token": lambda: (
        rnd(1, "123456789") + rnd(14, string.digits) + "|" + rnd(32, HEXL)
    ),
    "fal-api-key": lambda: "FAL_KEY=" + _uuid() + ":" + rnd(32, HEXL),
    "deepl-api-key": lambda: _uuid() + ":" + "fx",
    "builderio-private-key": lambda: "bp" + "k-" + rnd(32, HEXL),
    "posthog-project-secret-key": lambda: "ph" + "s_" + rnd(47),
    "sourcegraph-token": lambda: "sg" + "p_" + rnd(16, HEXL) + "_" + rnd(40, HEXL),
    "segment-public-api-token": lambda: "sg" + "p_" + rnd(60) + "Zz9Q",
    "vault-short-token": lambda: "hv" + "s." + rnd(20) + "aZ09",
    "crossmint-server-key": lambda: "sk" + "_production_" + rnd(40),
    "ghost-admin-api-key": lambda: "ghost_admin_key = " + rnd(24, HEXL) + ":" + rnd(64, HEXL),
    "maxmind-license-key": lambda: rnd(6) + "_" + rnd(29) + "_m" + "mk",
    "infura-api-key-url": lambda: "https://mainnet.infura.io/v3/" + rnd(32, HEXL),
    "mattermost-webhook-url": lambda: (
        "https://chat.corp.internal/hooks/" + rnd(24, string.ascii_lowercase + string.digits) + "4x"
    ),
    "azure-function-key-url": lambda: (
        "https://fn.azurewebsites.net/api/Ingest?co" + "de=" + rnd(54, U64) + "=="
    ),
    "teamcity-access-token": lambda: (
        "eyJ0eXAiOiAiVENWMiJ9" + "." + rnd(36, U64) + "." + rnd(48, U64)
    ),
    "onepassword-recovery-code": lambda: (
        "1PRK" + "".join("-" + rnd(4, string.ascii_uppercase + string.digits) for _ in range(13))
    ),
    "gcp-api-key-bound": lambda: "AQ" + ".Ab8R" + rnd(45, U64),
    "freemius-secret-key": lambda: '"secret_key" => "sk' + "_" + rnd(25) + "#&@*" + '"',
    "tableau-pat-secret": lambda: rnd(22, B64) + "==:" + rnd(30) + "aZ",
    "mailgun-api-key": lambda: "key" + "-" + rnd(29, string.ascii_lowercase) + "042",
    "buildkite-token": lambda: "bkua" + "_" + rnd(40, string.ascii_lowercase + string.digits),
    "posthog-personal-key": lambda: "phx" + "_" + rnd(40) + "123",
    "photoroom-api-key": lambda: "sk" + "_pr_" + "prod-key_" + rnd(40, HEXL),
    "stability-api-key-prefixed": lambda: "sk" + "-" + rnd(46) + "Q7",
    "miro-access-token": lambda: "eyJtaXJvLm9yaWdpbiI6" + "ImV1MDEifQ_" + rnd(27, U64),
    "truenas-api-key": lambda: (
        '{"method": "auth.login_with_api_key", "params": ["3-' + rnd(64) + '"]}'
    ),
    "thingsboard-access-token": lambda: (
        "https://thingsboard.cloud/api/v1/" + rnd(20) + "/telemetry"
    ),
    "md5-crypt-hash": lambda: "$" + "1$" + rnd(8, CRYPT) + "$" + rnd(22, CRYPT),
    "sha-crypt-hash": lambda: "$" + "6$" + rnd(16, CRYPT) + "$" + rnd(86, CRYPT),
    "bcrypt-hash": lambda: "$" + "2b$12$" + rnd(53, CRYPT),
    "yescrypt-hash": lambda: "$" + "y$j9T$" + rnd(16, CRYPT) + "$" + rnd(43, CRYPT),
    "cisco-type-8-9-hash": lambda: "$" + "9$" + rnd(14, CRYPT) + "$" + rnd(43, CRYPT),
    "argon2-hash": lambda: (
        "$" + "argon2id$v=19$m=65536,t=3,p=4$" + rnd(22, B64) + "$" + rnd(43, B64)
    ),
    "kerberos-roast-hash": lambda: (
        "$" + "krb5asrep$23$svc@CORP.INTERNAL:" + rnd(32, HEXL) + "$" + rnd(200, HEXL)
    ),
}


def test_the_table_has_at_least_150_formats_with_unique_ids() -> None:
    assert len(RULES) >= 150
    ids = [r.id for r in RULES]
    assert len(set(ids)) == len(ids)
    assert len({r.provider for r in RULES}) >= 100
    for r in RULES:
        assert r.id, r
        assert r.provider, r.id
        assert r.matches, r.id
        assert all(k == k.lower() for k in r.keywords), r.id


def test_every_raw_rule_has_an_example() -> None:
    assert sorted(RAW_EXAMPLES) == sorted(r.id for r in RAW_RULES)


@pytest.mark.parametrize("rule", TOKEN_RULES, ids=lambda r: r.id)
def test_token_rule_positive_and_near_misses(rule: ProviderRule) -> None:
    token = example(rule)
    assert rule.id in rule_ids(token), token[:12]
    assert rule.id in rule_ids(f"config: {token}\n")
    assert any(k in token.lower() for k in rule.keywords)
    # glued to a preceding word: another identifier, not this token
    assert rule.id not in rule_ids("zz" + token)
    # one character short of the shortest body
    short = rule.prefix + body(rule, rule.length[0] - 1) + tail_example(rule.tail)
    assert rule.id not in rule_ids(short)
    # the body without its prefix
    assert rule.id not in rule_ids(body(rule))


@pytest.mark.parametrize("rule", NEAR_RULES, ids=lambda r: r.id)
def test_name_context_rule_needs_its_name(rule: ProviderRule) -> None:
    value = body(rule)
    assert rule.id in rule_ids(example(rule))
    assert rule.id not in rule_ids(value)
    assert rule.id not in rule_ids(f"unrelated_setting = '{value}'")
    # and under the provider's name as an env var, whatever the value placement
    det = D.check_env(f"{rule.names[0].upper().replace('.', '_')}_TOKEN", value)
    assert det is not None


@pytest.mark.parametrize("rule", NEAR_RULES, ids=lambda r: r.id)
def test_in_a_long_text_a_name_rule_is_tried_where_its_names_are(rule: ProviderRule) -> None:
    c = compiled(RULES.index(rule))
    assert c.led
    filler = "setting: 1\n" * (_LED_MIN_LEN // 10)
    text = "\n".join(
        (
            filler,
            example(rule),
            f"{rule.names[-1].upper()}={body(rule)}",  # another name, in capitals
            f"my{rule.names[0].capitalize()}: {body(rule)} {rule.names[0]}",  # camelCase; and a
            f"x{rule.names[0]}: {body(rule)}",  # name inside a word, which is no name
            filler,
        )
    )
    everywhere = [m.span() for m in c.pattern.finditer(text)]
    assert len(everywhere) >= 2
    assert [m.span() for m in _led_matches(c, text, text.lower())] == everywhere
    assert rule.id in rule_ids(text)
    # letters that match a name case-insensitively but do not lower-case to it (s, i, k)
    odd = text.replace("s", "\u017f").replace("i", "\u0131").replace("k", "\u212a")
    everywhere = [m.span() for m in c.pattern.finditer(odd)]
    assert [m.span() for m in _led_matches(c, odd, odd.lower())] == everywhere


MOVED = [r for r in RULES if literal_first(r.pattern) != r.pattern]


def test_lookbehinds_move_after_the_literal_of_most_prefixed_formats() -> None:
    assert len(MOVED) >= 30
    assert literal_first(r"(?<![a-z])(?P<s>ab|cd)") == r"(?<![a-z])(?P<s>ab|cd)"
    assert literal_first(r"(?<![a-z])(?P<s>A{22}x)") == r"(?<![a-z])(?P<s>A{22}x)"
    assert literal_first(r"(?<![a-z])(?P<s>ab\.c+)") == r"(?P<s>ab\.(?<![a-z]ab\.)c+)"


@settings(max_examples=300, deadline=None)
@given(
    rule=st.sampled_from(MOVED),
    before=st.sampled_from(["", "x", "-", "_", " ", "/", ".", "=", "9", "A", "+"]),
    twice=st.booleans(),
    cut=st.integers(min_value=0, max_value=8),
)
def test_a_moved_lookbehind_matches_what_the_written_one_does(
    rule: ProviderRule, before: str, twice: bool, cut: int
) -> None:
    text = RAW_EXAMPLES[rule.id]() if rule.id in RAW_EXAMPLES else example(rule)
    head = text[: max(1, len(text) // 3)] if twice else ""  # a prefix run into the real one
    text = f"pad {before}{head}{text[: len(text) - cut]} {before}{text}"
    written = re.compile(rule.pattern)
    moved = compiled(RULES.index(rule)).pattern
    assert moved.pattern != rule.pattern
    spans = [m.span("s") for m in written.finditer(text)]
    assert [m.span("s") for m in moved.finditer(text)] == spans


@pytest.mark.parametrize("rule", RAW_RULES, ids=lambda r: r.id)
def test_raw_rule_positive_and_truncated_miss(rule: ProviderRule) -> None:
    text = RAW_EXAMPLES[rule.id]()
    assert rule.id in rule_ids(text), text[:16]
    assert rule.id not in rule_ids(text[: min(len(text) // 5, 12)])


def test_every_rule_is_reached_by_its_keywords() -> None:
    # a rule whose keywords are not in its own example would never run
    for rule in RULES:
        text = RAW_EXAMPLES[rule.id]() if rule.id in RAW_EXAMPLES else example(rule)
        seen = keywords(text)
        assert RULES.index(rule) in seen.rules, rule.id


def test_compiled_once_in_table_order() -> None:
    assert [compiled(i).rule.id for i in range(len(RULES))] == [r.id for r in RULES]


def test_github_and_npm_checksums_are_verified() -> None:
    good = crc("gh" + "p_")
    assert crc32_token_ok(good)
    bad = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert not crc32_token_ok(bad)
    assert D.check_value(good) is not None
    assert D.check_value(bad) is None
    assert D.check_env("GITHUB_TOKEN", bad) is None  # a lookalike, not an unknown token
    assert D.check_value(crc("np" + "m_")) is not None


def test_jwt_needs_json_header_and_claims() -> None:
    token = _jwt({"sub": "x"})
    assert jwt_ok(token)
    assert not jwt_ok("eyJ" + "hello.eyJ" + "world.sig")
    assert D.check_value("ey" + "J" + rnd(20) + ".ey" + "J" + rnd(20) + "." + rnd(20)) is None


def test_x_runs_in_a_format_are_reported_but_template_words_are_not() -> None:
    assert D.check_value("hf" + "_" + "x" * 34) is not None
    assert D.check_value("hf" + "_" + "your" + "_token_" + rnd(30)) is None
    assert D.check_value("hf" + "_" + "EXAMPLE" + rnd(30)) is None


def test_a_prefixed_format_of_letters_and_digits_refuses_typed_bodies() -> None:
    """``sk-`` and 48 letters and digits is a key when the body was generated; a body holding
    a run of the alphabet was typed (a test's stand-in), and is not reported by its format."""
    assert "stability-api-key-prefixed" in rule_ids("sk" + "-" + rnd(46) + "Q7")
    typed = "sk" + "-sUeBP9asw6GiYHXqtg70" + "abcdefgh" + "JuLwJFco90bOpU0Nt3s7"
    assert "stability-api-key-prefixed" not in rule_ids(typed)


def test_a_short_prefix_with_a_fixed_length_ends_where_the_format_does() -> None:
    """ "fc-" and 32 hex characters is a Firecrawl key; "fc-" and a digest's 64 is not one."""
    assert "firecrawl-api-key" in rule_ids("f" + "c-" + rnd(32, HEXL))
    assert "firecrawl-api-key" not in rule_ids("f" + "c-" + rnd(64, HEXL))


def _variants() -> list[tuple[str, str, str]]:
    """(value, kind, a near miss) of documented variants of a format."""
    dyn24 = rnd(24, string.ascii_uppercase + "0123456789") + "." + rnd(64, string.ascii_uppercase)
    dyn8 = rnd(8, string.ascii_uppercase) + "." + rnd(64, string.ascii_uppercase)
    ts = rnd(12) + "CNTRL-" + rnd(16)
    mb = ".eyJ" + rnd(60, U64) + "." + rnd(22, U64)
    teams = "/web" + "hook/" + _uuid() + "@" + _uuid() + "/IncomingWebhook/"
    teams += rnd(32, HEXL) + "/" + _uuid()
    upper = string.ascii_uppercase + string.digits
    op = f"A3-{rnd(6, upper)}-{rnd(11, upper)}-{rnd(5, upper)}-{rnd(5, upper)}-{rnd(5, upper)}"
    eu = "eu01xx" + rnd(30, HEXL) + "NR" + "AL"
    xoxc = "xo" + "xc-" + "-".join(rnd(10, string.digits) for _ in range(3)) + "-" + rnd(64, HEXL)
    sonar = rnd(40, HEXL)
    xoxd = "xo" + "xd-" + rnd(4) + "/" + rnd(30) + "+" + rnd(20) + "%2F" + rnd(60) + "%3D%3D"
    return [
        # 1Password's secret key with its third group written without a dash
        (op, "1Password", op.replace("A3-", "A4-")),
        # New Relic license keys of EU accounts start with their region
        (eu, "New Relic", eu.replace("eu01xx", "eu01yy")),
        # a Slack browser session's client token, and its cookie (base64, URL-encoded or not)
        (xoxc, "Slack", xoxc.replace("xo" + "xc-", "xo" + "xq-")),
        (xoxd, "Slack", xoxd.replace("xo" + "xd-", "xo" + "xq-")),
        # bodies beyond hex: Mailgun's documented keys and Buildkite's hold any of a-z0-9,
        # PostHog's personal keys are URL-safe base64
        ("key" + "-" + rnd(29, "ghjknpqrstuvwxyz") + "307", "Mailgun", "kez-" + rnd(32, "xyz0")),
        ("bkua" + "_" + rnd(39, "ghjknpqrstuvwxyz") + "1", "Buildkite", "bkua" + "_" + rnd(39)),
        ("phx" + "_" + rnd(20) + "_-" + rnd(18) + "123", "PostHog", "phy" + "_" + rnd(43)),
        # a JVM system property flag, a camelCase variable
        (f"mvn sonar:sonar -Dsonar.login={sonar}", "SonarQube", f"-Dsonar.host={sonar}"),
        (f'$sonarLogin = "{sonar}"', "SonarQube", f'$sonarHost = "{sonar}"'),
        ("dt0" + "s01." + dyn24, "Dynatrace", "dt0" + "x01." + dyn24),
        ("dt0" + "s02." + dyn8, "Dynatrace", "dt0" + "x02." + dyn8),
        ("tskey" + "-api-" + ts, "Tailscale", "tskey" + "_api_" + ts),
        ("tk" + mb, "Mapbox", "xk" + mb),  # a temporary token
        # the older form of a Teams incoming webhook
        ("https://outlook.office.com" + teams, "Microsoft Teams", "https://x.example" + teams),
    ]


@pytest.mark.parametrize(("value", "kind", "near_miss"), _variants())
def test_documented_variants_of_a_format(value: str, kind: str, near_miss: str) -> None:
    """Dynatrace platform tokens and OAuth client secrets (dt0s<nn>, an 8- or 24-character
    public part) beside API tokens (dt0c01); Tailscale keys with a 16-character secret; Mapbox
    temporary tokens; Teams webhooks at outlook.office.com."""
    det = D.check_env("APP_CONFIG_1", value)
    assert det is not None
    assert det.kind.startswith(kind)
    miss = D.check_env("APP_CONFIG_1", near_miss)
    assert miss is None or not miss.kind.startswith(kind)


def test_a_name_rule_whose_alphabet_holds_the_assignment_sign_reads_env_values() -> None:
    """The env var's name and value are joined for the name rules: joined by "=", a base64
    alphabet took the "=" for the value's first character and the value never matched (found
    then only when the value passed as a generic token, not when it starts like a path)."""
    rule = next(r for r in NEAR_RULES if r.id == "adyen-api-key")
    value = "/ittLrA_usFcSiOLSeiH-ruyHpW2O_a/d_wL3oTyKnSgS6uCojMysTVD/-5="  # fixed draw
    assert "=" in chars(rule.alphabet)
    det = D.check_env("ADYEN_TOKEN", value)
    assert det is not None
    assert det.rule == rule.id


@pytest.mark.parametrize(
    "word",
    [
        *("false", "true", "none", "null", "default", "enabled", "disabled", "info", "debug"),
        *("warning", "offline", "online", "auto", "always", "never", "production", "staging"),
        "localhost",
    ],
)
def test_common_configuration_words_wake_no_rule(word: str) -> None:
    """A keyword inside an everyday value (``fal`` in ``false``) would send every such env
    value down the slow path: the admission hot path keeps ordinary values on the fast one."""
    for value in (word, word.upper(), f"{word}-12345", f"{word}_v2.yaml"):
        assert keywords(value).rules == frozenset(), value


def test_a_binary_tink_keyset_in_base64() -> None:
    """A Tink keyset written in its binary (protobuf) form, base64-encoded: a secret key's type
    URL in it makes it a cleartext keyset; a keyset of public keys is meant to be shared."""

    tink = "type.googleapis.com/google.crypto.tink."

    def keyset(type_name: str, material: int) -> str:
        url = (tink + type_name).encode()
        key = bytes(random.getrandbits(8) for _ in range(16))
        data = b"\n" + bytes([len(url)]) + url + b"\x12\x12\x1a\x10" + key
        data += b"\x18" + bytes([material])
        body = b"\x08\xf1\xef\xd8\xf2\x03\x12" + bytes([len(data) + 2]) + b"\n"
        body += bytes([len(data)]) + data
        return base64.b64encode(body).decode()

    for secret in (keyset("AesGcmKey", 1), keyset("EcdsaPrivateKey", 2)):
        det = D.check_env("APP_CONFIG_1", secret)
        assert det is not None
        assert det.kind == "Google Tink cleartext keyset"
    # a public key's keyset, a key held in a KMS: nothing secret in the keyset
    assert D.check_env("APP_CONFIG_1", keyset("EcdsaPublicKey", 3)) is None
    assert D.check_env("APP_CONFIG_1", keyset("KmsAeadKey", 4)) is None
    # an encrypted keyset: ciphertext, then a KeysetInfo naming its key types (no values)
    url = (tink + "AesGcmKey").encode()
    info = b"\x08\x01\x12" + bytes([len(url) + 8]) + b"\n" + bytes([len(url)]) + url
    info += b"\x10\x01\x18\x01\x20\x01"
    cipher = bytes(random.getrandbits(8) for _ in range(32))
    encrypted = b"\x12\x20" + cipher + b"\x1a" + bytes([len(info)]) + info
    assert D.check_env("APP_CONFIG_1", base64.b64encode(encrypted).decode()) is None


def test_a_recovery_code_glued_to_more_is_no_code() -> None:
    code = "1PRK" + "".join("-" + rnd(4, string.ascii_uppercase + string.digits) for _ in range(13))
    assert "onepassword-recovery-code" in rule_ids(code)
    assert "onepassword-recovery-code" not in rule_ids(code + "X")


def test_a_slack_cookie_is_redacted_whole() -> None:
    cookie = "xo" + "xd-" + rnd(4) + "/" + rnd(30) + "+" + rnd(20) + "=="
    assert redact(f"SLACK_D_COOKIE={cookie}") == "SLACK_D_COOKIE=[REDACTED]"


def test_slack_tokens_start_with_the_workspace_id() -> None:
    """Bot, user and legacy tokens: the workspace's numeric id, more ids, the random part;
    legacy workspace and refresh tokens (xoxa-, xoxr-) may be letters and digits after it;
    configuration tokens a long base64 body."""
    digits = string.digits
    tokens = (
        "xo" + "xb-" + rnd(12, digits) + "-" + rnd(13, digits) + "-" + rnd(24),
        "xo"
        + "xp-"
        + rnd(5, digits)
        + "-"
        + rnd(9, digits)
        + "-"
        + rnd(11, digits)
        + "-"
        + rnd(32, HEXL),
        "xo" + "xa-2-" + rnd(24),
        "xo" + "xr-" + rnd(30),
        "xo" + "xe.xoxp-1-" + rnd(140),
    )
    for token in tokens:
        assert "slack-token" in rule_ids(token), token
    for text in (
        "xo" + "xb-12345-abcd234",  # a random part of 7: no token is that short
        "xo" + "xb-xoxb-my-bot-token",
        "xo" + "xp-1234567890",  # an id alone
        "xo" + "xe.xoxp-1-RANDOMSTRINGHERE",
    ):
        assert "slack-token" not in rule_ids(text), text


def test_42_intra_client_secrets() -> None:
    for prefix in ("s-s4t2ud-", "s-s4t2af-"):
        secret = prefix + rnd(64, HEXL)
        assert D.check_env("APP_CONFIG_1", secret) is not None, prefix
        assert D.check_env("APP_CONFIG_1", secret[:-1]) is None  # 63 hex digits: a lookalike


def test_a_rule_whose_own_name_says_id_is_announced_by_that_name() -> None:
    """Names ending in ID announce no provider's credential (ELASTIC_…_FINGERPRINT, GITHUB_…_ID
    hold identifiers), except where the provider's own name for its credential says ID: Code
    Climate's test reporter ID is the credential its uploads authenticate with."""
    value = rnd(64, HEXL)
    det = D.check_env("CC_TEST_REPORTER_ID", value)
    assert det is not None
    assert det.kind == "Code Climate test reporter ID"
    assert D.check_env("ELASTIC_CA_TRUSTED_FINGERPRINT", value) is None
    assert D.check_env("BUILD_ID", value) is None


@pytest.mark.parametrize(
    "text",
    [
        # a base64 MD5 and a hex digest: a checksum line, no Tableau secret (its half mixes case)
        "app.tar.gz: 1B2M2Y8AsgTpgAmY7PhCfg==:d41d8cd98f00b204e9800998ecf8427e",
        # key- and a slug or a digest-free lower-case id: no Mailgun key (its keys hold digits)
        "name: key-averyveryverylongidentifierwithoutdashes",
        "path: /data/key-" + "abcdefghjkmnpqrstvwxyzabcdefghjk",
        # a Phoenix identifier, not a PostHog key
        "phx_live_view_session_token_for_current_user_session",
        # a Buildkite token glued to more: another identifier
        "bkua_" + "a" * 12 + "1" * 29,
        # Figma: hex and dashes of a token's length that are no number-dash-UUID
        "figma_file_id: 1a2b-9f08a2c8-7c1d-4e2f-8a3b-1c2d3e4f5a6b",
        "FIGMA_PLUGIN_VERSION=9f08a2c8-7c1d-4e2f-8a3b-1c2d3e4f5a6b-1234",
    ],
)
def test_shapes_beside_the_formats_are_not_reported(text: str) -> None:
    assert D.check_env("APP_CONFIG_1", text) is None, text


def test_the_formats_in_their_usual_places() -> None:
    """Sidekiq's credentials where its documentation puts them (an env var, `bundle config`, a
    Dockerfile's ENV with a blank), Figma's legacy tokens with a longer number, Code Climate's
    reporter id under a dashed key (not under a digest's name), a PhotoRoom key redacted whole."""
    cred = rnd(8, HEXL) + ":" + rnd(8, HEXL)
    assert kind_of_env("BUNDLE_ENTERPRISE__CONTRIBSYS__COM", cred).startswith("Sidekiq")
    for text in (
        f"bundle config --local gems.contribsys.com {cred}",
        f"ENV BUNDLE_GEMS__CONTRIBSYS__COM {cred}",
    ):
        assert kind_of_env("APP_CONFIG_1", text).startswith("Sidekiq"), text
        assert D.check_args(["sh", "-c", text]) != []
    token = rnd(6, string.digits) + "-" + _uuid()
    assert kind_of_env("FIGMA_TOKEN", token).startswith("Figma")
    assert kind_of_env("APP_CONFIG_1", f"figma: {token}").startswith("Figma")
    reporter = rnd(64, HEXL)
    assert kind_of_env("APP_CONFIG_1", f"cc-test-reporter-id: {reporter}").startswith("Code")
    assert D.check_env("CC_TEST_REPORTER_ID_SHA256", reporter) is None
    key = "sk" + "_pr_" + "my-key_" + rnd(40, HEXL)
    assert kind_of_env("APP_CONFIG_1", key).startswith("PhotoRoom")
    assert redact(f"K={key}") == "K=[REDACTED]"


def kind_of_env(name: str, value: str) -> str:
    det = D.check_env(name, value)
    return det.kind if det is not None else ""
