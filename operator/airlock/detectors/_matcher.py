"""One pass over a string: a keyword automaton first, then only the regexes it points at.

Every provider rule lists literal keywords it cannot match without. All keywords (of the table,
of the structured formats, and the credential words that make a ``key=value`` scan worth doing)
go into one Aho-Corasick automaton, built once at import. A string is lower-cased and walked once
by the automaton; the typical env value (``info``, ``/data/cache``, ``llama-3-8b``) touches no
keyword and costs well under a microsecond. Only the rules whose keywords occurred run their
regex, in table order.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import NamedTuple

from airlock.compilecache import regex
from airlock.detectors._formats import (
    REASON_FORMAT,
    Hit,
    b64_pem_hits,
    connection_string_hits,
    der_key_hits,
    pem_hits,
    public_pem_spans,
    secret_manifest_hits,
    service_account_hits,
    url_hits,
)
from airlock.detectors._providers import RULES
from airlock.detectors._table import NAME_START, ProviderRule
from airlock.detectors._values import is_filler
from airlock.wordsearch import WordSearch

# Network device configuration lines that set a secret (IOS commands, read with the commands):
# the words that route a text there, and that gate the scan of its lines in _core
DEVICE_WORDS = ("enable password", "enable secret", "snmp-server community", "pac key")

# Tags for the structured formats and for the key=value scan.
TAG_PEM = "pem"
TAG_SA = "service-account"
TAG_URL = "url"
TAG_CONN = "connection-string"
TAG_B64_PEM = "base64-pem"
TAG_DER = "der-key"
TAG_CRED = "credential-word"
TAG_HEADER = "header"
TAG_COMMAND = "command"  # a command line whose own flags carry credentials (curl -u, mysql -p)

# Words one of which every credential-like key contains (``db_password``, ``api_token``).
CREDENTIAL_WORDS = ("pass", "pwd", "secret", "token", "key", "cred", "auth")
_TAG_KEYWORDS: dict[str, tuple[str, ...]] = {
    TAG_PEM: ("private", "putty-user-key-file"),
    TAG_SA: ("service_account",),
    TAG_URL: ("@",),
    TAG_CONN: ("password", "pwd", "passwd"),
    TAG_B64_PEM: ("ls0tls1crudjti", "0tls0tqkvhsu4g", "tls0tlujfr0lo"),
    # the base64 of a DER private key's first bytes, by its form and its length's: PKCS#1 RSA
    # and OpenSSL's DSA (IBAAK…, IBAAJ…), PKCS#8 (IBADAN…, DSA's IBADCC…, AgEAM…, Ed25519's and
    # X25519's AQAwBQYDK2V…), SEC1 EC (P-256's CAQEEI…, P-384's AgEBBD…, P-521's AgEBBE…)
    TAG_DER: (
        "ibaak",
        "ibaaj",
        "ibadan",
        "ibadcc",
        "ageam",
        "aqawbqydk2v",
        "caqeei",
        "agebbd",
        "agebbe",
    ),
    # the words a credential-named key contains (see _names); a key=value scan needs one
    TAG_CRED: CREDENTIAL_WORDS,
    TAG_HEADER: ("authorization", "bearer"),
    # (and the calls whose arguments are a user and a password: NetworkCredential, connect …)
    TAG_COMMAND: (
        "curl",
        "mysql",
        "connect(",
        "directoryentry(",
        "networkcredential(",
        "pdo(",
        "sshpass",
        "psexec",
        "paexec",
        "redis-cli",
        "smbclient",
        "rpcclient",
        "smbcacls",
        "smbget",
        "login",  # docker/podman/helm registry/az login -p
        "sqlcmd",
        "osql",
        "bcp",
        "ldap",
        "mongo",
        "rabbitmqctl",
        "rabbitmqadmin",
        "cqlsh",
        "nats ",  # the nats CLI (not nats:// URLs)
        "nats-server",
        "etcdctl",
        "lftp",
        "influx",
        "htpasswd",
        "config set",  # npm/yarn/pnpm config set, aws configure set, mc alias set
        "configure set",
        "alias set",
        "host add",
        "user add",  # mc admin user add ALIAS USER SECRET
        "git config",
        "password-stdin",  # echo … | docker login --password-stdin
        "chpasswd",
        "bindpw",  # ldap.conf, nslcd.conf; slapd.conf's rootpw
        "rootpw",
        "unseal",  # vault operator unseal KEY; "Unseal Key 1: …" lines
        "vault write",  # vault write PATH password=…; vault kv put|patch PATH password=…
        "kv put",
        "kv patch",
        "--stdin",  # echo … | passwd --stdin
        "pass:",  # openssl -passin pass:…
        "password is",  # a note's sentence: "the default password is '…'"
        "password was",
        "passphrase is",
        "password for",  # "the password for user 'postgres' is '…'"
        "identified",  # SQL: IDENTIFIED BY '…', CREATE USER … PASSWORD '…', SET PASSWORD
        "create user",
        "alter user",
        "create role",
        "alter role",
        "create login",
        "alter login",
        "set password",
        *DEVICE_WORDS,
    ),
}

# Rules with no literal keyword run on strings at least this long that contain their gate.
_UNANCHORED_MIN_LEN = 59

# Words of documentation values inside a provider format: the format matched, but the value
# was written by a human as an example.
# Runs of x (``hf_xxxx…``) are not among them: other scanners report those as the format they
# match, and a manifest should not hold one either.
_FORMAT_PLACEHOLDER_WORDS = (
    "example",
    "placeholder",
    "dummy",
    "fake",
    "redacted",
    "changeme",
    "your_",
    "your-",
)
_FORMAT_PLACEHOLDER_MARKS = ("***", "<", ">", "{{", "${", "$(")


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = _B62[r] + out
    return out.rjust(width, "0")


def crc32_token_ok(secret: str) -> bool:
    """GitHub and npm tokens end with a base62 CRC32 of their 30 random characters."""
    body = secret[-36:]
    return len(body) == 36 and _base62(binascii.crc32(body[:30].encode()), 6) == body[30:]


def _b64_json(part: str) -> bool:
    import json  # only for values that look like a JWT: off the start-up

    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return isinstance(json.loads(raw), dict)
    except (binascii.Error, ValueError):
        return False


def jwt_ok(secret: str) -> bool:
    """A JWT's header and claims are base64url JSON objects (RFC 7519)."""
    parts = secret.split(".")
    return len(parts) >= 2 and _b64_json(parts[0]) and _b64_json(parts[1])


def generated(secret: str) -> bool:
    """For formats where a typed value fits as well as an issued one (``sk-`` and 48 letters
    and digits, a password hash's body): not a run of the alphabet or a repeated chunk
    (``…abcdefgh…``), nor a handful of characters over and over (``$2b$12$.....``)."""
    return len(set(secret)) >= _GENERATED_MIN_CHARS and not is_filler(secret)


# distinct characters of the shortest generated value a ``generated`` rule takes (22 of 64)
_GENERATED_MIN_CHARS = 10


# Figma's legacy personal access tokens: a number, "-", a UUID
_FIGMA_LEGACY = regex(
    r"\d{1,10}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
).fullmatch

# Sidekiq's gem server credentials: 8 hex digits, ":", 8 hex digits
_HEX8_PAIR = regex(r"[0-9a-fA-F]{8}:[0-9a-fA-F]{8}").fullmatch

_DC_PAT_BYTES = 33  # a 12-digit id, ":", 20 random bytes
_COLON = ord(":")


def atlassian_dc_pat(secret: str) -> bool:
    """A Jira or Confluence Data Center personal access token: base64 of a 12-digit id, ":" and
    20 random bytes."""
    try:
        raw = base64.b64decode(secret, validate=True)
    except (binascii.Error, ValueError):
        return False
    return _dc_pat_bytes(raw)


def _dc_pat_bytes(raw: bytes) -> bool:
    return len(raw) == _DC_PAT_BYTES and raw[:12].isdigit() and raw[12] == _COLON


_VERIFY: dict[str, Callable[[str], bool]] = {
    "crc32": crc32_token_ok,
    "jwt": jwt_ok,
    "generated": generated,
    "figma_legacy": lambda secret: _FIGMA_LEGACY(secret) is not None,
    "user_colon_password_hex8": lambda secret: _HEX8_PAIR(secret) is not None,
    "atlassian_dc_pat": atlassian_dc_pat,
}


class _Compiled(NamedTuple):
    rule: ProviderRule
    pattern: re.Pattern[str]
    group: str | int
    verify: Callable[[str], bool] | None
    # every match starts where one of the rule's keywords does (a name, then its value): on a
    # long text the regex is tried only there, not at every position
    led: bool


# "(?<![class])(?P<s>literal…": a regex that opens with a lookbehind gives the engine no literal
# prefix to search for, so it tries every position of a text (2 ms over 100 KB). The same regex
# with the literal first and the lookbehind after it, "(?P<s>literal(?<![class]literal)…",
# matches exactly the same and is searched for by its literal (or skips ahead to the characters
# of a leading character class: "(?P<s>[MNO](?<![class][MNO])…").
_LOOKBEHIND_FIRST = regex(
    r"\(\?<!(?P<cls>\[(?:[^\]\\]|\\.)*\])\)\(\?P<s>"
    r"(?P<lit>(?:[A-Za-z0-9_/-]|\\[.\-_/])+|\[(?:[^\]\\]|\\.)*\])"  # a literal, or one class
)
_QUANTIFIED = ("{", "*", "+", "?")


def literal_first(pattern: str) -> str:
    """``pattern`` with a leading lookbehind moved after the literal that follows it."""
    m = _LOOKBEHIND_FIRST.match(pattern)
    if m is None:
        return pattern
    lit = m.group("lit")
    chars = [lit] if lit.startswith("[") else re.findall(r"\\.|.", lit)
    if pattern.startswith(_QUANTIFIED, m.end()):
        chars.pop()  # the last one is quantified ("A{22}"): not a fixed literal
    if not chars:
        return pattern
    lit = "".join(chars)
    rest = pattern[m.start("lit") + len(lit) :]
    if _alternatives(rest):
        return pattern  # "(?P<s>ab|cd)": the literal would lead one alternative only
    return f"(?P<s>{lit}(?<!{m.group('cls')}{lit}){rest}"


def _alternatives(rest: str) -> bool:
    """The group that ``rest`` continues has a ``|`` of its own (not in a nested group)."""
    depth = 0
    tokens = iter(re.findall(r"\\.|\[(?:[^\]\\]|\\.)*\]|.", rest))  # escapes, classes
    for tok in tokens:
        if tok == "(":
            depth += 1
        elif tok == ")":
            if depth == 0:
                return False
            depth -= 1
        elif tok == "|" and depth == 0:
            return True
    return False


def _compile(rule: ProviderRule) -> _Compiled:
    pattern = regex(literal_first(rule.pattern))
    group: str | int = "s" if "s" in pattern.groupindex else 0
    led = bool(rule.names) and rule.pattern.startswith(
        f"{NAME_START}(?i:{'|'.join(re.escape(n) for n in rule.names)})"
    )
    return _Compiled(rule, pattern, group, _VERIFY[rule.verify] if rule.verify else None, led)


@functools.cache
def compiled(i: int) -> _Compiled:
    """Rule ``i`` compiled on first use: compiling all ~300 patterns would cost ``airlock scan``
    ~25 ms of start-up for rules most runs never reach."""
    return _compile(RULES[i])


_UNANCHORED: tuple[int, ...] = tuple(i for i, r in enumerate(RULES) if not r.keywords)


class _Keywords(NamedTuple):
    """The automaton of every keyword, and what each keyword (by its index) points at."""

    automaton: WordSearch
    targets: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...]  # (rule indices, tags)


def _build() -> _Keywords:
    entries: dict[str, tuple[list[int], list[str]]] = {}
    for i, rule in enumerate(RULES):
        for kw in rule.keywords:
            entries.setdefault(kw, ([], []))[0].append(i)
    for tag, kws in _TAG_KEYWORDS.items():
        for kw in kws:
            entries.setdefault(kw, ([], []))[1].append(tag)
    return _Keywords(
        WordSearch(entries, dfa=True),
        tuple((tuple(ids), tuple(tags)) for ids, tags in entries.values()),
    )


_keywords = functools.cache(_build)  # built by the first lookup, not at import (start-up)


def _matches(text: str) -> list[tuple[int, int, int]]:
    """``(keyword index, start, end)`` of every keyword occurrence in lower-case ``text``."""
    return _keywords().automaton.find(text)


class Seen(NamedTuple):
    """What the automaton saw in a string: candidate rules (indices) and format tags."""

    rules: frozenset[int]
    tags: frozenset[str]


NOTHING = Seen(frozenset(), frozenset())


def keywords(text: str) -> Seen:
    found = _matches(text.lower())
    unanchored = len(text) >= _UNANCHORED_MIN_LEN and "." in text
    if not found and not unanchored:
        return NOTHING
    return _seen(found, unanchored)


def _seen(found: Iterable[tuple[int, int, int]], unanchored: bool) -> Seen:
    targets = _keywords().targets
    rules: set[int] = set(_UNANCHORED) if unanchored else set()
    tags: set[str] = set()
    for kw, _start, _end in found:
        ids, tgs = targets[kw]
        if ids:
            rules.update(ids)
        if tgs:
            tags.update(tgs)
    return Seen(frozenset(rules), frozenset(tags))


# Joins the strings of one keyword pass: no keyword holds it, so no match spans two strings.
_JOIN = "\n"


def keywords_many(texts: Sequence[str]) -> list[Seen]:
    """``keywords`` of each of ``texts`` (a container's env values), with one walk of the
    automaton over all of them: starting a walk costs as much as tens of characters."""
    if len(texts) < 2:
        return [keywords(t) for t in texts]
    joined = _JOIN.join(texts)
    if not joined.isascii():  # lower-casing may change lengths, and so the offsets
        return [keywords(t) for t in texts]
    found = _matches(joined.lower())
    unanchored = (
        {k for k, t in enumerate(texts) if len(t) >= _UNANCHORED_MIN_LEN and "." in t}
        if max(map(len, texts)) >= _UNANCHORED_MIN_LEN
        else set()
    )
    out = [NOTHING] * len(texts)
    if not found and not unanchored:
        return out
    # where each text ends in the joined string (its separator excluded): text k holds the
    # offsets from the end of text k-1 plus one up to its own end
    ends = [n + k for k, n in enumerate(itertools.accumulate(map(len, texts)))]
    by_text: dict[int, list[tuple[int, int, int]]] = {k: [] for k in unanchored}
    for m in found:
        by_text.setdefault(bisect.bisect_right(ends, m[1]), []).append(m)
    for k, hits in by_text.items():
        out[k] = _seen(hits, k in unanchored)
    return out


def is_format_placeholder(secret: str) -> bool:
    """Words of documentation values inside a provider format: the format matched, but the
    value was written by a human as an example."""
    low = secret.lower()
    return any(w in low for w in _FORMAT_PLACEHOLDER_WORDS) or any(
        m in secret for m in _FORMAT_PLACEHOLDER_MARKS
    )


# From this length a keyword-led rule's regex is tried where its keywords are, not at every
# position (a regex opening with lookbehinds and a case-insensitive alternation has no literal
# prefix for the engine to skip ahead to: 5-12 ms over a 100 KB ConfigMap file).
_LED_MIN_LEN = 2048


def provider_hits(text: str, seen: Seen, min_start: int = 0) -> Iterator[Hit]:
    """Hits of the table's rules that the automaton pointed at, in table order."""
    low: str | None = None
    for i in sorted(seen.rules):
        c = compiled(i)
        matches: Iterable[re.Match[str]]
        if c.led and len(text) >= _LED_MIN_LEN:
            if low is None:
                low = text.lower()
            matches = _led_matches(c, text, low)
        else:
            matches = c.pattern.finditer(text)
        for m in matches:
            start = m.start(c.group)
            if start < min_start:
                continue
            secret = m.group(c.group)
            if c.verify is not None and not c.verify(secret):
                continue
            if is_format_placeholder(secret):
                continue
            yield Hit(c.rule.label, secret, start, m.end(c.group), REASON_FORMAT, c.rule.id)


def _led_matches(c: _Compiled, text: str, low: str) -> Iterator[re.Match[str]]:
    """``c.pattern.finditer(text)`` for a keyword-led rule: the regex tried at each occurrence
    of a keyword (``low`` is ``text`` lower-cased), left to right, never inside a match."""
    if not text.isascii():
        # a non-ASCII letter may lower-case to a different length ("İ") or match a name
        # case-insensitively without lower-casing to it ("ſ" is "s", "ı" is "i"): search it all
        yield from c.pattern.finditer(text)
        return
    starts: set[int] = set()
    for kw in c.rule.keywords:
        at = low.find(kw)
        while at >= 0:
            starts.add(at)
            at = low.find(kw, at + 1)
    end = 0
    for at in sorted(starts):
        if at < end:
            continue
        m = c.pattern.match(text, at)
        if m is not None:
            yield m
            end = max(m.end(), at + 1)


def iter_hits(text: str, seen: Seen | None = None, min_start: int = 0) -> Iterator[Hit]:
    """Every provider-format, private-key, connection-string and credentialed-URL hit.

    Hits may overlap (a PEM block inside a service-account JSON, a GitLab token used as the
    password of a URL); callers keep the first of overlapping hits, and this order puts the most
    specific first. ``min_start`` drops hits that start before it (the variable name that was
    prepended to give ``near`` rules their context).
    """
    if seen is None:
        seen = keywords(text)
    if seen is NOTHING:
        return
    tags = seen.tags
    if TAG_SA in tags:
        yield from service_account_hits(text)
    if TAG_CRED in tags and "ata:" in text:  # a Secret manifest's data: or stringData:
        yield from secret_manifest_hits(text)
    if TAG_PEM in tags:
        yield from pem_hits(text)
    if TAG_B64_PEM in tags:
        yield from b64_pem_hits(text)
    if TAG_DER in tags:
        yield from der_key_hits(text)
    if seen.rules:
        public: list[tuple[int, int]] | None = None  # found at the first hit, if one comes
        for hit in provider_hits(text, seen, min_start):
            if public is None:
                public = public_pem_spans(text)
            if not any(a <= hit.start < b for a, b in public):
                yield hit
    if TAG_CONN in tags and "=" in text:
        for hit in connection_string_hits(text):
            if hit.start >= min_start:
                yield hit
    if TAG_URL in tags and ("://" in text or ":oracle:" in text):
        for hit in url_hits(text):
            if hit.start >= min_start:
                yield hit


# Prefixes of provider formats: a value starting with one that no rule accepted is a lookalike of
# that format (too short, wrong alphabet, failed checksum), not an unknown credential.
_TOKEN_PREFIXES = {
    p for p in (r.prefix.lower() for r in RULES) if re.search(r"[-_.]", p) and len(p) >= 3
}
# Documented prefixes of formats written as raw rules (their regex starts with the literal).
_EXTRA_PREFIXES = {
    "sk_",
    "rk_",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "akia",
    "asia",
    "aiza",
    "xox",
    "xapp-",
    "sg.",
    "github_pat_",
    "eyj",
    "sk-ant-",
    "lsv2_",
    "absk",
    "ltai",
    "akid",
    "goog1",
    "ya29.",
    "sntrys_",
    "pypi-",
    "dt0c01.",
    "tskey-",
    "pscale_",
    "packagist_",
    "fm1r_",
    "fm1a_",
    "fm2_",
    "sk.eyj",
    "atatt3",
    "atctt3",
    "access_token$",
    "sgp_",
    "bkua_",  # rules written raw for their end or digits: their prefixes still mark lookalikes
    "phx_",
}
# "sk-" starts the keys of many providers, documented or not: there is no one format to fail.
_LOOKALIKE_PREFIXES: tuple[str, ...] = tuple(sorted((_TOKEN_PREFIXES | _EXTRA_PREFIXES) - {"sk-"}))
# Documented prefixes of values that are public by design: Stripe and Paystack publishable keys,
# Square application ids. Not secrets under any name.
_PUBLIC_PREFIXES = ("pk_live_", "pk_test_", "sq0idp-", "sandbox-sq0idb-")

# Words that some vendor uses as a prefix (``API-``, ``key-``, ``secret_``): not distinctive.
_GENERIC_STEMS = frozenset({"api", "key", "pat", "secret", "dose"})


def _stem(text: str) -> str:
    """Lower-cased, without separators (three C-level replaces: cheaper than a regex)."""
    return text.lower().replace("-", "").replace("_", "").replace(".", "")


def _by_head(prefixes: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Prefixes (three characters or more) grouped by their first three characters, so that a
    value is compared with the few that share its head instead of with all of them."""
    heads: dict[str, tuple[str, ...]] = {}
    for p in sorted(prefixes):
        heads[p[:3]] = (*heads.get(p[:3], ()), p)
    return heads


# The same prefixes with their separators dropped (``ghp_`` -> ``ghp``, ``HRKU-AA`` -> ``hrkuaa``):
# a value starting with one has the provider's prefix written with a separator missing, moved or
# swapped (``ghpXXXX…``, ``glpat_…``, ``sk.pyx-…``), which the provider's format does not allow.
# Three characters are distinctive only where the prefix had a separator of its own.
_STEMS: tuple[str, ...] = tuple(
    sorted(
        {
            st
            for p in _EXTRA_PREFIXES | {r.prefix.lower() for r in RULES if r.prefix}
            for st in (_stem(p),)
            if len(st) >= 4 or (len(st) == 3 and st != p)
        }
        - _GENERIC_STEMS
    )
)
_STEM_SCAN = max(len(p) for p in _LOOKALIKE_PREFIXES) + 8
_PREFIX_HEADS = _by_head((*_LOOKALIKE_PREFIXES, *_PUBLIC_PREFIXES))
_STEM_HEADS = _by_head(_STEMS)
# A distinctive prefix glued to a short word in front (``xghp_…``, ``mytskey-…``): the formats
# start at a word boundary, so this is not the provider's token either.
_GLUED_MAX_WORD = 10
_GLUED_HEADS = _by_head(
    p for p in _LOOKALIKE_PREFIXES if (len(p) >= 4 or "." in p) and _stem(p) not in _GENERIC_STEMS
)


_LETTERS = regex(rf"[a-z]{{1,{_GLUED_MAX_WORD}}}")


def _glued(low: str) -> bool:
    """``low`` is 1-10 ASCII letters followed by a distinctive prefix (one slice lookup each)."""
    m = _LETTERS.match(low)
    if m is None:
        return False
    get = _GLUED_HEADS.get
    for i in range(1, m.end() + 1):
        heads = get(low[i : i + 3])
        if heads is not None and low.startswith(heads, i):
            return True
    return False


# An infix a provider writes into every key: ``T3BlbkFJ`` (base64 of "OpenAI") in OpenAI keys.
_OPENAI_MARKER = "T3BlbkFJ"


# A base64 run long enough to hide a token; decoded and scanned once (no deeper).
_BASE64_RUN = regex(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{40,}={0,2}")
_MAX_DECODED_RUNS = 4


def decoded_hits(text: str) -> Iterator[Hit]:
    """Hits inside base64-encoded runs of ``text`` (a token or a key file stored encoded)."""
    for n, m in enumerate(_BASE64_RUN.finditer(text)):
        if n >= _MAX_DECODED_RUNS:
            return
        run = m.group()
        # A JWT segment is read by its own rule; a base64 JSON document (a Tink keyset, a key
        # file) is decoded like any other run.
        if run.startswith("eyJ") and text[m.end() : m.end() + 1] == ".":
            continue
        try:
            raw = base64.b64decode(run.replace("-", "+").replace("_", "/") + "=" * (-len(run) % 4))
        except (binascii.Error, ValueError):
            continue
        try:
            decoded = raw.decode("utf-8")
        except ValueError:
            decoded = ""
        if not decoded or (
            not decoded.isprintable() and not all(c.isprintable() or c in "\n\r\t" for c in decoded)
        ):
            if _binary_keyset(raw):
                yield Hit(_TINK_LABEL, run, m.start(), m.end(), REASON_FORMAT, _TINK_RULE)
            elif _dc_pat_bytes(raw) and len(run) == len(text):
                yield Hit(_DC_PAT_LABEL, run, 0, len(run), REASON_FORMAT, _DC_PAT_RULE)
            continue
        for hit in iter_hits(decoded):
            yield Hit(f"base64-encoded {hit.kind}", hit.secret, m.start(), m.end(), hit.reason,
                      hit.rule)  # fmt: skip
            break


_TINK_RULE = "tink-keyset"
_TINK_LABEL = next(r.label for r in RULES if r.id == _TINK_RULE)
_DC_PAT_RULE = "atlassian-dc-pat"
_DC_PAT_LABEL = next(r.label for r in RULES if r.id == _DC_PAT_RULE)
_TINK_TYPE_URL = regex(rb"type\.googleapis\.com/google\.crypto\.tink\.\w+")
# a key's material: 1 symmetric, 2 asymmetric private (3 public, 4 remote: in a KMS)
_SECRET_MATERIAL = (1, 2)


def _binary_keyset(raw: bytes) -> bool:
    """``raw`` is a Tink keyset in its binary (protobuf) form holding a secret key: a KeyData
    whose type URL (field 1) is followed by the key's value (field 2) and a symmetric or
    private material type (field 3). An encrypted keyset's KeysetInfo names its types with no
    value after them; public keys and KMS-held keys have other material types."""
    if b"google.crypto.tink." not in raw:
        return False
    n = len(raw)
    for m in _TINK_TYPE_URL.finditer(raw):
        start, end = m.span()
        if start < 2 or raw[start - 2] != 0x0A or raw[start - 1] != end - start:
            continue  # not a length-prefixed field 1
        if end + 1 >= n or raw[end] != 0x12:
            continue  # no value: a KeyInfo of an encrypted keyset
        length, at, shift = 0, end + 1, 0
        while at < n and shift < 35:  # the value's length, a varint
            byte = raw[at]
            length |= (byte & 0x7F) << shift
            at += 1
            shift += 7
            if not byte & 0x80:
                break
        at += length
        if at + 1 < n and raw[at] == 0x18 and raw[at + 1] in _SECRET_MATERIAL:
            return True
    return False


def lookalike(value: str) -> bool:
    """The value carries a provider's distinctive prefix or marker but no rule of the table
    accepted it (wrong length or alphabet, failed checksum, mangled or glued prefix), or it is a
    provider's public value (a publishable key). Either way it is not an unknown credential."""
    low = value.lower()
    heads = _PREFIX_HEADS.get(low[:3])
    if heads is not None and low.startswith(heads):
        return True
    stem = _stem(low[:_STEM_SCAN])
    heads = _STEM_HEADS.get(stem[:3])
    if heads is not None and stem.startswith(heads):
        return True
    return _glued(low) or _OPENAI_MARKER in value


# Rules recognised by a provider's name before the value (``near`` rules), by keyword.
_NAMED_RULES: tuple[tuple[str, int], ...] = tuple(
    (kw, i) for i, r in enumerate(RULES) if r.names for kw in r.keywords
)


def name_rules(name: str) -> frozenset[int]:
    """The ``near`` rules whose provider name occurs in a variable, flag or key name."""
    low = name.lower()
    return frozenset(i for kw, i in _NAMED_RULES if kw in low)


def context_hits(text: str, rules: frozenset[int], min_start: int) -> Iterator[Hit]:
    """Hits of ``rules`` in ``text`` (``NAME=value``) that start at or after ``min_start``."""
    if len(text) - min_start < context_floor(rules):
        return iter(())  # a value shorter than every format its name announces (WANDB_MODE=…)
    return provider_hits(text, Seen(rules, frozenset()), min_start)


@functools.lru_cache(maxsize=1024)  # the rule sets of names: a few per installation
def context_floor(rules: frozenset[int]) -> int:
    """The fewest characters a value holds for any of ``rules`` (a name's context rules) to
    match in it."""
    return min((RULES[i].length[0] for i in rules), default=0)
