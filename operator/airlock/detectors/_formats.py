"""Provider token formats, private-key blocks, JWTs and credentials inside URLs.

Everything is compiled into one alternation at import, so scanning a value costs one regex pass
whatever the number of providers. Alternatives are ordered most specific first (``sk-ant-``
before ``sk-``, the Slack webhook before generic URLs), because at a given position the first
alternative that matches wins.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import NamedTuple

from airlock.detectors._values import is_placeholder

REASON_FORMAT = "provider format"
REASON_URL = "credentialed URL"
REASON_PEM = "private key block"

KIND_URL = "password in URL"

# Left boundary for prefixed tokens: not glued to a preceding word ("task-sk-..." is not a key).
_B = r"(?<![A-Za-z0-9_-])"

# (kind, pattern). A group named ``s`` marks the secret part; otherwise the whole match is.
# Formats are public facts about each provider's credentials; lengths are lower bounds so that
# a provider lengthening its tokens does not blind the detector.
_FORMATS: tuple[tuple[str, str], ...] = (
    (
        "Slack webhook URL",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}",
    ),
    ("Anthropic API key", _B + r"sk-ant-[A-Za-z0-9_-]{32,}"),
    ("OpenAI API key", _B + r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,}"),
    ("OpenAI API key", _B + r"sk-[A-Za-z0-9]{32,}(?![A-Za-z0-9_-])"),
    ("Hugging Face token", _B + r"(?:hf_|api_org_)[A-Za-z0-9]{30,}"),
    ("GitHub token", _B + r"(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{50,})"),
    ("GitLab token", _B + r"gl(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt)-[A-Za-z0-9_-]{20,}"),
    ("Slack token", _B + r"(?:xox[abposre]-[A-Za-z0-9-]{10,}|xapp-[0-9]-[A-Za-z0-9-]{10,})"),
    ("Stripe secret key", _B + r"(?:sk|rk)_live_[A-Za-z0-9]{20,}"),
    ("AWS access key id", r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    ("GCP API key", _B + r"AIza[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])"),
    ("Google OAuth client secret", _B + r"GOCSPX-[A-Za-z0-9_-]{28}"),
    (
        "Azure storage account key",
        r"(?:AccountKey|SharedAccessKey)=(?P<s>[A-Za-z0-9+/]{20,}={0,2})",
    ),
    ("Azure SAS token", r"[?&;]sig=(?P<s>[A-Za-z0-9%+/=]{30,})"),
    ("Replicate API token", _B + r"r8_[A-Za-z0-9]{37,}"),
    ("Groq API key", _B + r"gsk_[A-Za-z0-9]{48,}"),
    ("xAI API key", _B + r"xai-[A-Za-z0-9]{64,}"),
    ("Perplexity API key", _B + r"pplx-[A-Za-z0-9]{40,}"),
    ("NVIDIA API key", _B + r"nvapi-[A-Za-z0-9_-]{60,}"),
    ("Pinecone API key", _B + r"pcsk_[A-Za-z0-9_]{40,}"),
    ("LangSmith API key", _B + r"lsv2_(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}"),
    ("Databricks token", _B + r"dapi[0-9a-f]{32}(?:-[0-9])?(?![A-Za-z0-9])"),
    ("npm token", _B + r"npm_[A-Za-z0-9]{36}"),
    ("PyPI token", _B + r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    ("Docker Hub token", _B + r"dckr_pat_[A-Za-z0-9_-]{27,}"),
    ("SendGrid API key", _B + r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    ("JWT", _B + r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    (
        KIND_URL,
        r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{1,20}://[^\s:/@?#'\"]*:"
        r"(?P<s>[^\s/@'\"]+)@[^\s/@'\"]",
    ),
)


def _combine() -> tuple[re.Pattern[str], dict[str, tuple[str, str | None]]]:
    parts: list[str] = []
    groups: dict[str, tuple[str, str | None]] = {}
    for i, (kind, pattern) in enumerate(_FORMATS):
        secret = f"s{i}" if "(?P<s>" in pattern else None
        parts.append(f"(?P<f{i}>{pattern.replace('(?P<s>', f'(?P<s{i}>')})")
        groups[f"f{i}"] = (kind, secret)
    return re.compile("|".join(parts)), groups


_COMBINED, _GROUPS = _combine()

# Each format needs one of these substrings; when none is present (the common case: "info",
# "llama-3-8b", "0,1,2,3") the regex pass is skipped entirely.
_ANCHORS = (
    "sk-", "hf_", "api_org_", "gh", "github_pat_", "gl", "xox", "xapp-", "_live_", "AKIA", "ASIA",
    "ABIA", "ACCA", "AIza", "GOCSPX", "Key=", "sig=", "r8_", "gsk_", "xai-", "pplx-", "nvapi-",
    "pcsk_", "lsv2_", "dapi", "npm_", "pypi-", "dckr_", "SG.", "eyJ", "://",
)  # fmt: skip

_PEM = re.compile(
    r"-{3,}[ \t]*BEGIN[ \t]+(?P<type>(?:[A-Z0-9]+[ \t]+)*?)PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?[ \t]*-{3,}"
    r"(?P<body>.*?)(?:-{3,}[ \t]*END\b[^\n]*|\Z)",
    re.DOTALL,
)
_PEM_HEADER_LINE = re.compile(r"^[ \t]*[A-Za-z-]+:[^\n]*$", re.MULTILINE)
_NOT_BASE64 = re.compile(r"\\n|[^A-Za-z0-9+/=]+")
_PEM_KINDS = {
    "": "private key",
    "RSA": "RSA private key",
    "EC": "EC private key",
    "DSA": "DSA private key",
    "OPENSSH": "SSH private key",
    "ENCRYPTED": "encrypted private key",
    "PGP": "PGP private key",
}
# A real key body is hundreds of base64 characters; below this it is a stub or a doc snippet.
_PEM_MIN_BODY = 40

_SA_TYPE = re.compile(r"\"type\"\s*:\s*\"service_account\"")
_SA_KEY = re.compile(r"\"private_key\"\s*:\s*\"(?P<s>(?:[^\"\\]|\\.)*)\"")

# Name-contextual formats: values with no prefix of their own.
AWS_SECRET_VALUE = re.compile(r"^[A-Za-z0-9/+]{40}$")
WANDB_VALUE = re.compile(r"^(?:local-)?[0-9a-f]{40}$")
COHERE_VALUE = re.compile(r"^[A-Za-z0-9]{40}$")


class Hit(NamedTuple):
    """A credential found in a text: what it is, the secret part, and where it is."""

    kind: str
    secret: str
    start: int
    end: int
    reason: str


def _pem_body(raw: str) -> str:
    return _NOT_BASE64.sub("", _PEM_HEADER_LINE.sub("", raw))


def _real_key_body(body: str) -> bool:
    return len(body) >= _PEM_MIN_BODY and len(set(body)) > 10 and not is_placeholder(body)


def has_anchor(text: str) -> bool:
    """Cheap test that a text could hold any provider format (most values cannot)."""
    return any(a in text for a in _ANCHORS)


def iter_hits(text: str) -> Iterator[Hit]:
    """Every provider-format, private-key and credentialed-URL hit in ``text``, placeholders out.

    Hits may overlap (a PEM block inside a service-account JSON); callers keep the first of
    overlapping hits, and this order puts the most specific first.
    """
    if "service_account" in text and _SA_TYPE.search(text) is not None:
        for m in _SA_KEY.finditer(text):
            if _real_key_body(_pem_body(m.group("s"))):
                yield Hit(
                    "GCP service account key", m.group("s"), m.start(), m.end(), REASON_FORMAT
                )
    if "PRIVATE" in text:
        for m in _PEM.finditer(text):
            body = _pem_body(m.group("body"))
            if _real_key_body(body):
                words = m.group("type").split()
                kind = _PEM_KINDS.get(words[0] if words else "", "private key")
                yield Hit(kind, body, m.start(), m.end(), REASON_PEM)
    if not has_anchor(text):
        return
    for m in _COMBINED.finditer(text):
        group = m.lastgroup
        if group is None:  # pragma: no cover - every alternative is a named group
            continue
        kind, secret_group = _GROUPS[group]
        secret = m.group(secret_group) if secret_group else m.group(group)
        if kind == KIND_URL:
            if len(secret) < 3 or is_placeholder(secret):
                continue
            where = secret_group or group
            yield Hit(kind, secret, m.start(where), m.end(where), REASON_URL)
            continue
        if is_placeholder(secret):
            continue
        yield Hit(kind, secret, m.start(group), m.end(group), REASON_FORMAT)
