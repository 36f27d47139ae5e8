"""Structured credentials that a single regex cannot confirm: key blocks, key files, URLs.

Private-key blocks (PEM, also with escaped newlines, without their BEGIN line, or base64-encoded
as in a kubeconfig's ``client-key-data``), GCP service-account key files, credentials inside
URLs and connection strings (``scheme://user:password@host``, ODBC / ADO.NET
``Server=...;Password=...``, JDBC ``?password=``), and Kubernetes Secret manifests written out
in a text (their ``data`` and ``stringData`` values). Each is run by the matcher only when its
keyword was seen, and each checks the secret part is real (a body, not a stub or a template).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from collections.abc import Iterator
from typing import NamedTuple

from airlock.compilecache import regex
from airlock.detectors._values import is_placeholder

REASON_FORMAT = "provider format"
REASON_URL = "credentialed URL"
REASON_PEM = "private key block"
REASON_CONN = "connection string password"

KIND_URL = "password in URL"
KIND_CONN = "password in connection string"
KIND_SECRET_DATA = "Kubernetes Secret data"  # noqa: S105 - a kind, not a password
# How a password that is code starts: C's `pwd = (char *) …`, the shell's `PASSWORD=$(…)`
_CODE_START = ("(", "$(", "${")


class Hit(NamedTuple):
    """A credential found in a text: what it is, the secret part, and where it is."""

    kind: str
    secret: str
    start: int
    end: int
    reason: str
    rule: str = ""

    def __repr__(self) -> str:  # the secret never leaves in a repr, even by accident
        return f"Hit({self.kind!r}, <redacted>, {self.start}, {self.end}, {self.reason!r})"


_PEM = regex(
    r"-{3,}[ \t]*BEGIN[ \t]+(?P<type>(?:[A-Z0-9]+[ \t]+)*?)PRIVATE[ \t]+KEY(?:[ \t]+BLOCK)?"
    r"[ \t]*-{3,}"
    r"(?P<body>.*?)(?:-{3,}[ \t]*END\b[^\n]*|\Z)",
    re.DOTALL,
)
# A key body whose BEGIN line was cut off: base64 lines and then the END line.
_PEM_TAIL = regex(
    r"(?P<body>(?:[A-Za-z0-9+/=]{40,}(?:\\n|\r?\n))+[A-Za-z0-9+/=]*(?:\\n|\r?\n)?)"
    r"-{3,}[ \t]*END[ \t]+(?P<type>(?:[A-Z0-9]+[ \t]+)*?)PRIVATE[ \t]+KEY"
)
# A certificate, CA bundle, CRL, CSR or public key: base64 whose letters spell a provider's token
# now and then by chance, never a credential. The body is base64 and line breaks only (no "-",
# so the search cannot run past the next marker), its END names the same label, and it decodes to
# one DER SEQUENCE: a token wrapped in such lines is not hidden by them.
_PUBLIC_PEM = regex(
    r"-{5}BEGIN (?P<label>(?:TRUSTED )?CERTIFICATE|X509 CRL|(?:NEW )?CERTIFICATE REQUEST|PKCS7"
    r"|(?:RSA |EC )?PUBLIC KEY)-{5}(?P<body>[A-Za-z0-9+/=\s\\]{40,}?)-{5}END (?P=label)-{5}"
)
_PEM_HEADER_LINE = regex(r"^[ \t]*[A-Za-z-]+:[^\n]*$", re.MULTILINE)
_NOT_BASE64 = regex(r"\\n|[^A-Za-z0-9+/=]+")
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
# "-----BEGIN" base64-encoded at each of the three byte alignments.
_B64_PEM = regex(
    r"(?<![A-Za-z0-9+/])(?P<s>(?:LS0tLS1CRUdJTi|0tLS0tQkVHSU4g|tLS0tLUJFR0lO)[A-Za-z0-9+/]{60,}={0,2})"
)
_PUTTY = regex(
    r"PuTTY-User-Key-File-\d+:[^\n]*\n(?s:.*?)Private-Lines:\s*\d+\s*\n"
    r"(?P<s>[ \t]*[A-Za-z0-9+/=][A-Za-z0-9+/=\r\n \t]{39,})"  # (lines indented in a text)
)
# A private key in DER, base64-encoded with no PEM lines around it (the body of a key file
# pasted alone): one run, or lines of one, starting with a SEQUENCE's "M"
_DER_RUN = regex(
    r"(?<![A-Za-z0-9+/])(?P<s>M[A-Za-z0-9+/]{59,}"
    r"(?:(?:\\n|[ \t]*\r?\n[ \t]*)[A-Za-z0-9+/]+)*={0,2})(?![A-Za-z0-9+/=])"
)
_DER_SEQUENCE, _DER_INTEGER, _DER_OCTETS, _DER_OID = 0x30, 0x02, 0x04, 0x06
# after the version: RSA's n, e, d, p, q, d mod (p-1), d mod (q-1), q^-1 mod p; DSA's p, q, g, y, x
_KEY_INTEGERS = {8: "RSA private key", 5: "DSA private key"}

_SA_TYPE = regex(r"\"type\"\s*:\s*\"service_account\"")
_SA_KEY = regex(r"\"private_key\"\s*:\s*\"(?P<s>(?:[^\"\\]|\\.)*)\"")

# user (possibly empty) : password @ host, after any scheme; the password is the secret.
_URL = regex(r"://(?P<u>[^\s:/@?#'\"]*):(?P<s>[^\s/@'\"]+)@[^\s/@'\"]")
# Oracle's JDBC URLs put user/password before the "@": jdbc:oracle:thin:scott/…@//db:1521/svc
_ORACLE_URL = regex(
    r"jdbc:oracle:(?:thin|oci8?|kprb):(?P<u>[A-Za-z_][\w$#.]*+)/(?P<s>[^\s/@'\"]++)@"
)
# ODBC / ADO.NET / JDBC key-value connection strings and URL query passwords.
_CONN_PASSWORD = regex(
    r"(?i)(?:^|[;?&\s\"'{])(?:password|pwd|passwd)\s*=\s*(?P<q>[\"']?)(?P<s>[^;&\"'\s]{3,})(?P=q)"
)
_CONN_CONTEXT = regex(
    r"(?i)(?:server|data source|host|hostname|address|addr|uid|user id|user|username|"
    r"database|initial catalog|dsn|driver|jdbc|account)\s*="
)


# A Kubernetes Secret written out in a text: `kind: Secret` (not ExternalSecret, SopsSecret …)
# and, at the same indentation (the same object), a `data:` or `stringData:` block whose entries
# are the secret (base64 under data). Lines may end in "\r\n".
_SECRET_KIND = regex(
    r"""(?im)^(?P<ind>[ \t]*+)["']?kind["']?[ \t]*+:[ \t]*+["']?secret["']?[ \t]*+"""
    r"(?:#[^\r\n]*)?\r?$"
)
_SECRET_BLOCK = regex(r"(?m)^(?P<ind>[ \t]*+)(?P<b>data|stringData)[ \t]*+:[ \t]*+(?:#[^\n]*)?\r?$")
# an entry's key, up to its value: `key: `, the key maybe quoted
_SECRET_KEY = regex(r"""[ \t]++["']?[\w.-]++["']?[ \t]*+:[ \t]*+""")
_BLOCK_SCALAR = regex(r"[|>][-+]?[0-9]?[ \t]*(?:#.*)?")
_SECRET_B64 = regex(r"(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")
_DOCUMENT = regex(r"(?m)^---(?=[ \t\r\n]|$)")
_MIN_SECRET_DATA = 6  # decoded bytes: a shorter value is a flag or a stub ("bar")


def _pem_body(raw: str) -> str:
    return _NOT_BASE64.sub("", _PEM_HEADER_LINE.sub("", raw))


def _real_key_body(body: str) -> bool:
    return len(body) >= _PEM_MIN_BODY and len(set(body)) > 10 and not is_placeholder(body)


def _pem_kind(type_words: str) -> str:
    words = type_words.split()
    return _PEM_KINDS.get(words[0] if words else "", "private key")


def _der_item(raw: bytes, at: int, tag: int) -> tuple[int, int] | None:
    """Where the content of the DER item at ``at`` starts and ends, if its tag is ``tag``."""
    if at + 2 > len(raw) or raw[at] != tag:
        return None
    size, start = raw[at + 1], at + 2
    if size & 0x80:
        n = size & 0x7F
        if not 1 <= n <= 3 or start + n > len(raw):
            return None
        size, start = int.from_bytes(raw[start : start + n], "big"), start + n
    end = start + size
    return (start, end) if end <= len(raw) else None


def _key_info(raw: bytes, at: int, end: int) -> bool:
    """PKCS#8's AlgorithmIdentifier (a SEQUENCE that opens with an OID) and private key."""
    alg = _der_item(raw, at, _DER_SEQUENCE)
    if alg is None or raw[alg[0] : alg[0] + 1] != bytes([_DER_OID]):
        return False
    key = _der_item(raw, alg[1], _DER_OCTETS)
    return key is not None and key[1] - key[0] >= 16 and key[1] <= end


def der_private_key(raw: bytes) -> str | None:
    """The kind of private key ``raw`` is in DER (PKCS#1 RSA, OpenSSL's DSA, PKCS#8, SEC1 EC),
    or ``None``."""
    outer = _der_item(raw, 0, _DER_SEQUENCE)
    if outer is None or outer[1] != len(raw):
        return None
    start, end = outer
    version = _der_item(raw, start, _DER_INTEGER)
    if version is None or version[1] - version[0] != 1:
        return None
    v, at = raw[version[0]], version[1]
    if at >= end:
        return None
    if v == 0 and raw[at] == _DER_INTEGER:  # PKCS#1 RSA, or OpenSSL's DSA: integers only
        count = 0
        while at < end and count <= max(_KEY_INTEGERS):
            item = _der_item(raw, at, _DER_INTEGER)
            if item is None:
                return None
            at, count = item[1], count + 1
        return _KEY_INTEGERS.get(count) if at == end else None
    if v in {0, 1} and raw[at] == _DER_SEQUENCE:  # PKCS#8 (v1: with the public key after)
        return "private key" if _key_info(raw, at, end) else None
    if v == 1:  # SEC1: the private scalar, 24 (P-192) to 66 (P-521) bytes
        key = _der_item(raw, at, _DER_OCTETS)
        return "EC private key" if key is not None and 24 <= key[1] - key[0] <= 66 else None
    return None


def der_key_hits(text: str) -> Iterator[Hit]:
    for m in _DER_RUN.finditer(text):
        body = _NOT_BASE64.sub("", m.group("s"))
        try:
            raw = base64.b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            continue
        kind = der_private_key(raw)
        if kind is not None:
            yield Hit(kind, body, m.start(), m.end(), REASON_PEM, "private-key-der")


def public_pem_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds certificates, CA bundles and public keys."""
    if "-----BEGIN " not in text:
        return []
    spans = []
    for m in _PUBLIC_PEM.finditer(text):
        body = _NOT_BASE64.sub("", m.group("body"))
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            continue
        outer = _der_item(raw, 0, _DER_SEQUENCE)
        if outer is not None and outer[1] == len(raw):
            spans.append(m.span())
    return spans


def service_account_hits(text: str) -> Iterator[Hit]:
    if _SA_TYPE.search(text) is not None:
        for m in _SA_KEY.finditer(text):
            if _real_key_body(_pem_body(m.group("s"))):
                yield Hit("GCP service account key", m.group("s"), m.start(), m.end(),
                          REASON_FORMAT, "gcp-service-account-key")  # fmt: skip


def secret_manifest_hits(text: str) -> Iterator[Hit]:
    """The values of a Kubernetes Secret manifest's ``data`` (padded base64 of at least
    :data:`_MIN_SECRET_DATA` bytes) and ``stringData`` (not a placeholder or a template), in
    each YAML document of ``text`` that is a Secret."""
    bounds = [0, *(m.start() for m in _DOCUMENT.finditer(text)), len(text)]
    for start, end in itertools.pairwise(bounds):
        kind = _SECRET_KIND.search(text, start, end)
        if kind is None:
            continue
        indent = _width(kind.group("ind"))
        for block in _SECRET_BLOCK.finditer(text, start, end):
            if _width(block.group("ind")) == indent:
                yield from _block_hits(text, block, end)


def _width(blanks: str) -> int:
    return len(blanks.expandtabs())


def _lines(text: str, at: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(start, end, indentation)`` of each line of ``text[at:end]`` that holds something other
    than a comment (the end excludes a "\r"); blank and comment lines have indentation -1."""
    while at < end:
        stop = text.find("\n", at, end)
        stop = end if stop < 0 else stop
        line_end = stop - 1 if stop > at and text[stop - 1] == "\r" else stop
        line = text[at:line_end]
        body = line.lstrip(" \t")
        width = -1 if not body or body.startswith("#") else _width(line[: len(line) - len(body)])
        yield at, line_end, width
        at = stop + 1


def _block_hits(text: str, block: re.Match[str], end: int) -> Iterator[Hit]:
    """The entries of one ``data:`` or ``stringData:`` block: the lines indented deeper than
    its key, up to ``end`` (the document's). A literal or folded value (``|``, ``>``) spans
    the lines indented deeper than its entry."""
    indent = _width(block.group("ind"))
    rows: list[tuple[int, int, int]] = []
    for row in _lines(text, block.end() + 1, end):
        if 0 <= row[2] <= indent:
            break  # the block ended
        rows.append(row)
    encoded = block.group("b") == "data"
    i = 0
    while i < len(rows):
        start, stop, width = rows[i]
        i += 1
        key = _SECRET_KEY.match(text, start, stop) if width >= 0 else None
        if key is None:
            continue
        if _BLOCK_SCALAR.fullmatch(text, key.end(), stop) is None:
            # a plain or quoted value may go on over lines deeper than its key (without keys)
            while (
                i < len(rows)
                and rows[i][2] > width
                and _SECRET_KEY.match(text, rows[i][0], rows[i][1]) is None
            ):
                stop = rows[i][1]
                i += 1
            yield from _entry_hit(text, key.end(), stop, encoded=encoded, joined=False)
            continue
        first = last = -1  # the value's lines: those below, deeper than the entry
        while i < len(rows) and (rows[i][2] < 0 or rows[i][2] > width):
            s, e, w = rows[i]
            i += 1
            if w >= 0:
                first = s + (e - s) - len(text[s:e].lstrip(" \t")) if first < 0 else first
                last = e
        yield from _entry_hit(text, first, last, encoded=encoded, joined=True)


def _entry_hit(text: str, at: int, stop: int, *, encoded: bool, joined: bool) -> Iterator[Hit]:
    """The hit of the value ``text[at:stop]`` (quotes and a comment after it dropped; the lines
    of a block scalar ``joined``), if it is secret data."""
    if at < 0 or stop <= at:
        return
    raw = text[at:stop]
    if not joined:
        close = raw.find(raw[0], 1) if raw[:1] in ("'", '"') else -1
        if close > 0:  # a quoted value: up to its quote ("#" inside it is the value's)
            raw, at = raw[1:close], at + 1
        else:
            hash_at = raw.find(" #")
            raw = (raw[:hash_at] if hash_at >= 0 else raw).rstrip(" \t")
    value = "".join(raw.split()) if encoded else " ".join(raw.split())
    if value and _secret_value(value, encoded=encoded):
        yield Hit(KIND_SECRET_DATA, value, at, at + len(raw), REASON_FORMAT,
                  "kubernetes-secret-manifest")  # fmt: skip


def _secret_value(value: str, *, encoded: bool) -> bool:
    """Secret data: under stringData, no placeholder (templates and references included);
    under data, padded base64 of enough bytes that are not a placeholder either."""
    if not encoded:
        return len(value) >= _MIN_SECRET_DATA and not is_placeholder(value)
    if _SECRET_B64.fullmatch(value) is None:  # the API server writes it padded
        return False
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return False
    text = decoded.decode("utf-8", "replace")
    return len(decoded) >= _MIN_SECRET_DATA and not is_placeholder(text.strip())


def pem_hits(text: str) -> Iterator[Hit]:
    found = False
    for m in _PEM.finditer(text):
        body = _pem_body(m.group("body"))
        if _real_key_body(body):
            found = True
            yield Hit(
                _pem_kind(m.group("type")), body, m.start(), m.end(), REASON_PEM, "private-key"
            )
    if not found and "END" in text:
        for m in _PEM_TAIL.finditer(text):
            body = _pem_body(m.group("body"))
            if _real_key_body(body):
                yield Hit(_pem_kind(m.group("type")), body, m.start(), m.end(), REASON_PEM,
                          "private-key")  # fmt: skip
    if "PuTTY" in text:
        for m in _PUTTY.finditer(text):
            body = _pem_body(m.group("s"))
            if _real_key_body(body):
                yield Hit("PuTTY private key", body, m.start("s"), m.end("s"), REASON_PEM,
                          "putty-private-key")  # fmt: skip


def b64_pem_hits(text: str) -> Iterator[Hit]:
    for m in _B64_PEM.finditer(text):
        raw = m.group("s")
        try:
            decoded = base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            continue
        for hit in pem_hits(decoded):
            yield Hit(f"base64-encoded {hit.kind}", hit.secret, m.start(), m.end(), REASON_PEM,
                      "private-key-base64")  # fmt: skip
            break


def url_hits(text: str) -> Iterator[Hit]:
    matches = _URL.finditer(text) if "://" in text else iter(())
    if ":oracle:" in text:
        matches = itertools.chain(matches, _ORACLE_URL.finditer(text))
    for m in matches:
        secret = m.group("s")
        user = m.group("u")
        if len(secret) < 3 or is_placeholder(secret) or secret == user or len(set(secret)) <= 2:
            continue
        yield Hit(KIND_URL, secret, m.start("s"), m.end("s"), REASON_URL, "url-password")


def connection_string_hits(text: str) -> Iterator[Hit]:
    """``Password=`` in a connection string: needs another connection key beside it."""
    if _CONN_CONTEXT.search(text) is None:
        return
    for m in _CONN_PASSWORD.finditer(text):
        secret = m.group("s")
        if is_placeholder(secret) or len(set(secret)) <= 2 or secret.startswith(_CODE_START):
            continue
        yield Hit(KIND_CONN, secret, m.start("s"), m.end("s"), REASON_CONN, "connection-string")
