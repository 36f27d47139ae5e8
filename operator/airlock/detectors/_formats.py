"""Provider token formats, private-key blocks, JWTs and credentials inside URLs.

Each format is a regex that starts with a literal prefix plus the list of literal anchors it
cannot match without. Formats are grouped by a separator all their anchors share (``-``, ``_``,
``=``, ``://``), and ``has_anchor`` dismisses the typical value ("info", "llama-3-8b",
"0,1,2,3") with a handful of substring tests before any regex runs. Formats are ordered most
specific first (``sk-ant-`` before ``sk-``, provider tokens before URL passwords).
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

# Tokens must not be glued to a preceding word ("task-sk-..." is not a key). The check is a
# lookbehind placed *after* the literal prefix, so every pattern starts with a literal and the
# regex engine can jump to candidate positions with a fast substring search.
_W = "A-Za-z0-9_-"


def _tok(prefix: str, rest: str, *, boundary: str = "") -> str:
    """A prefixed token: literal prefix, left-boundary lookbehind, then the body."""
    behind = boundary or re.escape(prefix)
    return f"{re.escape(prefix)}(?<![{_W}]{behind}){rest}"


class _Format(NamedTuple):
    kind: str
    anchors: tuple[str, ...]  # literal substrings; the pattern cannot match without one
    pattern: re.Pattern[str]  # a group named ``s`` marks the secret part, else the whole match


def _f(kind: str, anchors: str | tuple[str, ...], pattern: str) -> _Format:
    return _Format(kind, (anchors,) if isinstance(anchors, str) else anchors, re.compile(pattern))


def _prefixes(head: str, letters: str, tail: str) -> tuple[str, ...]:
    return tuple(f"{head}{c}{tail}" for c in letters)


# Ordered most specific first: where two formats overlap, the first one names the credential.
# Formats are public facts about each provider's credentials; lengths are lower bounds so that
# a provider lengthening its tokens does not blind the detector.
_FORMATS: tuple[_Format, ...] = (
    _f(
        "Slack webhook URL",
        "hooks.slack.com",
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{20,}",
    ),
    _f("Anthropic API key", "sk-ant-", _tok("sk-ant-", r"[A-Za-z0-9_-]{32,}")),
    _f("OpenAI API key", "sk-", _tok("sk-", r"(?:proj|svcacct|admin)-[A-Za-z0-9_-]{32,}")),
    _f("OpenAI API key", "sk-", _tok("sk-", r"[A-Za-z0-9]{32,}(?![A-Za-z0-9_-])")),
    _f("Hugging Face token", "hf_", _tok("hf_", r"[A-Za-z0-9]{30,}")),
    _f("Hugging Face token", "api_org_", _tok("api_org_", r"[A-Za-z0-9]{30,}")),
    _f(
        "GitHub token",
        _prefixes("gh", "pousr", "_"),
        r"gh[pousr]_(?<![A-Za-z0-9_-]gh[pousr]_)[A-Za-z0-9]{36,}",
    ),
    _f("GitHub token", "github_pat_", _tok("github_pat_", r"[A-Za-z0-9_]{50,}")),
    _f(
        "GitLab token",
        tuple(f"gl{p}-" for p in ("pat", "dt", "rt", "ptt", "cbt", "oas", "soat", "ft", "imt")),
        _tok("gl", r"(?:pat|dt|rt|ptt|cbt|oas|soat|ft|imt)-[A-Za-z0-9_-]{20,}"),
    ),
    _f(
        "Slack token",
        _prefixes("xox", "abposre", "-"),
        r"xox[abposre]-(?<![A-Za-z0-9_-]xox[abposre]-)[A-Za-z0-9-]{10,}",
    ),
    _f("Slack token", "xapp-", _tok("xapp-", r"[0-9]-[A-Za-z0-9-]{10,}")),
    _f("Stripe secret key", "_live_", r"[sr]k_live_(?<![A-Za-z0-9_-][sr]k_live_)[A-Za-z0-9]{20,}"),
    _f(
        "AWS access key id",
        ("AKIA", "ASIA", "ABIA", "ACCA"),
        r"(?:AKIA|ASIA|ABIA|ACCA)(?<![A-Za-z0-9]....)[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    _f("GCP API key", "AIza", _tok("AIza", r"[0-9A-Za-z_-]{35}(?![A-Za-z0-9_-])")),
    _f("Google OAuth client secret", "GOCSPX-", _tok("GOCSPX-", r"[A-Za-z0-9_-]{28}")),
    _f(
        "Azure storage account key",
        ("AccountKey=", "SharedAccessKey="),
        r"(?:AccountKey|SharedAccessKey)=(?P<s>[A-Za-z0-9+/]{20,}={0,2})",
    ),
    _f("Azure SAS token", "sig=", r"sig=(?<=[?&;]sig=)(?P<s>[A-Za-z0-9%+/=]{30,})"),
    _f("Replicate API token", "r8_", _tok("r8_", r"[A-Za-z0-9]{37,}")),
    _f("Groq API key", "gsk_", _tok("gsk_", r"[A-Za-z0-9]{48,}")),
    _f("xAI API key", "xai-", _tok("xai-", r"[A-Za-z0-9]{64,}")),
    _f("Perplexity API key", "pplx-", _tok("pplx-", r"[A-Za-z0-9]{40,}")),
    _f("NVIDIA API key", "nvapi-", _tok("nvapi-", r"[A-Za-z0-9_-]{60,}")),
    _f("Pinecone API key", "pcsk_", _tok("pcsk_", r"[A-Za-z0-9_]{40,}")),
    _f("LangSmith API key", "lsv2_", _tok("lsv2_", r"(?:pt|sk)_[0-9a-f]{32}_[0-9a-f]{10}")),
    _f("Databricks token", "dapi", _tok("dapi", r"[0-9a-f]{32}(?:-[0-9])?(?![A-Za-z0-9])")),
    _f("npm token", "npm_", _tok("npm_", r"[A-Za-z0-9]{36}")),
    _f("PyPI token", "pypi-", _tok("pypi-", r"AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}")),
    _f("Docker Hub token", "dckr_pat_", _tok("dckr_pat_", r"[A-Za-z0-9_-]{27,}")),
    _f("SendGrid API key", "SG.", _tok("SG.", r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")),
    _f("JWT", "eyJ", _tok("eyJ", r"[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")),
    # user (possibly empty) : password @ host, after any scheme; the password is the secret.
    _f(KIND_URL, "@", r"://[^\s:/@?#'\"]*:(?P<s>[^\s/@'\"]+)@[^\s/@'\"]"),
)


def _gate(fmt: _Format) -> str:
    """A character every anchor of the format contains (or "" when there is none)."""
    if fmt.kind == KIND_URL:
        return "://"
    for gate in ("-", "_", "=", "://", "A"):
        if all(gate in a for a in fmt.anchors):
            return gate
    return ""


def _gated() -> tuple[tuple[str, tuple[_Format, ...]], ...]:
    # Provider tokens before URLs: a token used as a URL password is named by its provider.
    order = ("", "-", "_", "=", "A", "://")
    return tuple((g, tuple(f for f in _FORMATS if _gate(f) == g)) for g in order)


# Formats grouped by a gate substring, tested once per group instead of once per format.
_GATED = _gated()


def has_anchor(text: str) -> bool:
    """Cheap test that a text could hold any provider format (most values cannot).

    Grouped by the separator each anchor contains, so a value without ``_``, ``-`` or ``=``
    (a host name, a number list, a word) is dismissed after a handful of substring tests.
    Every anchor of ``_FORMATS`` is covered here (a unit test checks it).
    """
    return (
        (
            "-" in text
            and (
                "sk-" in text
                or "gl" in text
                or "xox" in text
                or "xapp-" in text
                or "xai-" in text
                or "pplx-" in text
                or "nvapi-" in text
                or "pypi-" in text
                or "GOCSPX-" in text
            )
        )
        or (
            "_" in text
            and (
                "hf_" in text
                or "api_org_" in text
                or "gh" in text
                or "_live_" in text
                or "r8_" in text
                or "gsk_" in text
                or "pcsk_" in text
                or "lsv2_" in text
                or "npm_" in text
                or "dckr_pat_" in text
                or "github_pat_" in text
            )
        )
        or ("=" in text and ("Key=" in text or "sig=" in text))
        or ("://" in text and "@" in text)
        or (
            "A" in text
            and (
                "AKIA" in text
                or "ASIA" in text
                or "ABIA" in text
                or "ACCA" in text
                or "AIza" in text
            )
        )
        or "eyJ" in text
        or "SG." in text
        or "dapi" in text
        or "hooks.slack.com" in text
    )


_PEM = re.compile(
    r"-{3,}[ \t]*BEGIN[ \t]+(?P<type>(?:[A-Z0-9]+[ \t]+)*?)PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?"
    r"[ \t]*-{3,}"
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


def iter_hits(text: str) -> Iterator[Hit]:
    """Every provider-format, private-key and credentialed-URL hit in ``text``, placeholders out.

    Hits may overlap (a PEM block inside a service-account JSON, a GitLab token used as the
    password of a URL); callers keep the first of overlapping hits, and this order puts the most
    specific first.
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
    for gate, formats in _GATED:
        if gate not in text:
            continue
        for fmt in formats:
            for anchor in fmt.anchors:
                if anchor in text:
                    break
            else:
                continue
            url = fmt.kind == KIND_URL
            where = "s" if "s" in fmt.pattern.groupindex else 0
            for m in fmt.pattern.finditer(text):
                secret = m.group(where)
                if is_placeholder(secret) or (url and len(secret) < 3):
                    continue
                reason = REASON_URL if url else REASON_FORMAT
                yield Hit(fmt.kind, secret, m.start(where), m.end(where), reason)
