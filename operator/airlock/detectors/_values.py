"""Value-side signals: is a literal a placeholder, a reference, or random enough to be a key?

A credential-named variable is only reported when its value could actually be the credential.
Most false positives of name-only checkers come from values that point somewhere else (a file
path, a secret-manager reference, a ``$(VAR)`` expansion, a Helm template) or that are obviously
not filled in (``changeme``, ``<your-token>``, ``xxxx``). Those are recognised here.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from airlock.compilecache import regex

# Values the keyword heuristic ignores when shorter: "abc12" is more often a flag or a unit than
# a password, and credentials in real deployments are longer.
MIN_SECRET_LEN = 6

# Compared after lower-casing and dropping everything but letters and digits.
_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme",
        "changeit",
        "changethis",
        "password",
        "passwd",
        "secret",
        "secrets",
        "token",
        "apikey",
        "key",
        "todo",
        "tbd",
        "fixme",
        "dummy",
        "example",
        "sample",
        "placeholder",
        "test",
        "testing",
        "default",
        "none",
        "null",
        "nil",
        "undefined",
        "empty",
        "unset",
        "notset",
        "redacted",
        "hidden",
        "masked",
        "replaceme",
        "foo",
        "bar",
        "foobar",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "enabled",
        "disabled",
        "enable",
        "disable",
        "required",
        "optional",
        "notrequired",
        "secretvalue",
        "mysecret",
        "mypassword",
        "mytoken",
        "supersecret",
        # published defaults, in every copy of a product's configuration: known to all, so no
        # secret (Grafana's defaults.ini secret_key)
        "sw2ycwtib9zpoohopsmm",
    }
)

_NON_ALNUM = regex(r"[^a-z0-9]+")

# Substrings of the value reduced to lower-case letters and digits that mark documentation
# values and fill-in-the-blanks. "example" also covers the AWS documentation keys.
_PLACEHOLDER_PARTS = (
    "example",
    "placeholder",
    "changeme",
    "replaceme",
    "dummy",
    "redacted",
    "xxxx",
    "fake",
    # "REPLACE_WITH_PASSWORD", "not-a-real-key", "NotASecret": documentation phrases
    "replacewith",
    "notreal",
    "notareal",
    "notasecret",
    "notapassword",
    "notatoken",
)
_BRACKETS = frozenset({"<>", "[]", "{}"})
_FILL_IN = regex(r"(?:your|insert|enter|put|paste|add)[-_ .]")
_METASYNTACTIC = regex(r"^(?:foo|bar|baz|qux|quux|foobar)(?![a-z])")
_FILL_IN_END = ("-here", "_here", " here", ".here")

# Templating and variable references: Kubernetes $(VAR) expansion, shell ${VAR}, Helm/Jinja
# {{ }} and {% %}, ERB/Octopus #{ }, and values encrypted in place. The value is resolved (or
# decrypted) elsewhere. Only one closed after it counts: "${" alone is two characters of a
# generated password as often as a reference's start.
_TEMPLATES = (
    ("$(", ")"), ("${", "}"), ("{{", "}}"), ("{%", "%}"), ("#{", "}"),
    ("$__env{", "}"), ("$__file{", "}"), ("$__vault{", "}"),  # Grafana's configuration
    ("%(", ")s"),  # Python configparser and supervisord: %(ENV_X)s
    ("ENC(", ")"), ("ENC[", "]"),  # encrypted in place: Jasypt, SOPS
)  # fmt: skip
# Whole-value references: $VAR (alone or before a path), %VAR% (Windows), @@VAR@@, __VAR__.
_TEMPLATE_WHOLE = regex(r"^\$[A-Za-z_]\w*(?:[/:.]|$)|^%[A-Za-z_]\w*%$|^@@.*@@$|^__\w+__$")

# Numbers, optionally with a unit ("3600", "1.5", "30s", "512Mi"): TTLs, sizes, limits.
_NUMBER = regex(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[A-Za-z]{0,2}$")

# References to where a secret lives rather than the secret: files, secret managers, vaults.
_REFERENCE = regex(
    # a path is path characters only: "/e{|r[fh…" is a password that begins with a slash; "@"
    # and a path, or a file name of a secret's kind, is a file a client reads the value from
    # (curl -F password=@pw.txt, vault kv put … password=@/run/secrets/pw)
    r"^(?:@?(?:/|\./|\.\./|~/)[\w.@:+~,=%/-]*$"
    r"|@[\w.-]+\.(?:txt|json|ya?ml|pem|key|crt|env|conf|cfg|ini|properties|secret|pw|pass|token)$"
    r"|file:|[A-Za-z]:\\"
    r"|arn:aws[\w-]*:|vault:|ref\+|op://|akv://|sm://|secretsmanager:|ssm:|gcpsm://"
    r"|projects/[^/\s]+/secrets/|azurekeyvault:|keyvault:|k8s:|secret:|secretref:)"
)

_URL = regex(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_B64_KEY = regex(r"^[A-Za-z0-9+/]{16,}={0,2}$")

# The characters of machine-generated tokens (base64, base64url, hex, base62 with separators).
_TOKEN_CHARS = regex(r"^[A-Za-z0-9+/=_\-.~]+$")
# Hex, alone or in hyphen-separated groups (a UUID, a GUID-style key): judged as the hex it holds.
_HEX = regex(r"^[0-9a-fA-F]+(?:-[0-9a-fA-F]+)*$")


def is_placeholder(value: str) -> bool:
    """True when the value is clearly not a real credential (blank, template, boolean, ...)."""
    v = value.strip()
    if not v:
        return True
    if len(set(v)) <= 2:  # "********", "xxxxxx", "000000"
        return True
    low = v.lower()
    norm = _NON_ALNUM.sub("", low)
    if norm in _PLACEHOLDER_WORDS or "***" in v:
        return True
    for part in _PLACEHOLDER_PARTS:
        if part in norm:
            return True
    if v[0] + v[-1] in _BRACKETS:  # <token>, [password], {PASS} (a URI or format template)
        return True
    if _templated(v):
        return True
    if _METASYNTACTIC.match(low) is not None:  # foo_…, bar-…: an example by convention
        return True
    if _TEMPLATE_WHOLE.match(v) is not None or _FILL_IN.match(low) is not None:
        return True
    if low.endswith(_FILL_IN_END):
        return True
    return _NUMBER.match(v) is not None


def _templated(v: str) -> bool:
    """``v`` holds a template or reference opened and closed (string searches: linear)."""
    for start, end in _TEMPLATES:
        at = v.find(start)
        if at >= 0 and v.find(end, at + len(start)) >= 0:
            return True
    return False


def is_reference(value: str) -> bool:
    """True when the value names a place a secret is kept (a path, a vault, a URL) instead."""
    v = value.strip()
    if _REFERENCE.match(v) is not None:
        # a key in base64 may begin with "/" too: whole base64 quads, random-looking once its
        # slashes are gone (a path's words, "/run/secrets/accessToken", are not)
        return not (
            v[0] == "/"
            and len(v) % 4 == 0
            and _B64_KEY.match(v) is not None
            and looks_random(v.replace("/", ""))
        )
    # A URL is a reference unless it carries credentials; those are found by the URL detector,
    # which runs before this filter.
    return _URL.match(v) is not None


# Code, markup and expressions: calls, operators, selectors, escaped markup, shell quoting. Each
# needs what code has and a generated password (symbols drawn at random: "*4$IedU7(v,w") lacks:
# a name before a call's "(" (and its ")" before ";", "{" or "."), a name or a blank beside an
# operator, a lower-case selector of two characters or more.
_OPERATOR = r"(?:&&|\|\||!=|==|=>|->|::)"
_CODE = regex(
    r"&(?:lt|gt|amp|quot|#\d+);"  # HTML-escaped placeholders: &lt;YOURPASSWORD&gt;
    # '$VAR', "${VAR}" in quotes; escaped for make or compose ($$VAR) or a shell (\$VAR)
    r"|^(['\"]?)(?:\$\$?|\\\$)(?:[A-Za-z_]\w*|\{[^{}]*\}|\([^()]*\))\1$"
    r"|[a-z_]{3}\(|\w\(\)|\w\([^()]*\)\s*[;{.]|\bfunction\b|\breturn\b|\bnew\s+\w"  # calls
    # "a == b", "count==limit"; an operator ending the value is not read as one: "==" there is
    # base64 padding (a key's "…w==")
    rf"|(?:[a-z_]{{2}}|\s){_OPERATOR}(?!=*$)|{_OPERATOR}(?:\s|[a-z_]{{2}})"
    r"|^[.#]?[a-z][a-z0-9-]+\s*\{|^\s*[\[{].*[\]}]\s*$"  # CSS selectors, JSON/array literals
    # an element's id or class naming the field it styles (#add-password, .api-key-input)
    r"|^[#.](?:[a-z]+[-_])*(?:pass(?:word)?|pwd|token|secret|key)(?:[-_][a-z]+)*$"
)


def is_code(value: str) -> bool:
    """True when the value is code, markup or an expression rather than a literal."""
    return _CODE.search(value) is not None


def is_prose(value: str) -> bool:
    """Several words: a description or a message, not a credential."""
    return len(value.split()) >= 4


def shannon_entropy(value: str) -> float:
    """Bits per character of the value's own character distribution."""
    n = len(value)
    if n == 0:
        return 0.0
    counts = Counter(value).values()
    return -sum(c / n * math.log2(c / n) for c in counts)


def _vowel_ratio(value: str) -> float:
    letters = [c for c in value if c.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for c in letters if c in "aeiouAEIOU") / len(letters)


def looks_random(value: str, *, strict: bool = False) -> bool:
    """Whether a value looks machine-generated, like a key, rather than a word or a slug.

    Entropy alone is weak on short strings (any string of distinct characters scores high), so it
    is combined with character classes and the share of vowels among letters: random base62 has
    about 19 % vowels, English words and model names about 35-40 %. ``strict`` is for values with
    no credential name around them (a bare command-line argument): longer, mixed-case, not hex
    (hex strings there are digests and commit ids).
    """
    n = len(value)
    if n < (32 if strict else 16) or _TOKEN_CHARS.match(value) is None:
        return False
    has_digit = any(c.isdigit() for c in value)
    has_lower = any(c.islower() for c in value)
    has_upper = any(c.isupper() for c in value)
    if _HEX.match(value) is not None:
        # judged as the hex it holds (a and e are two of hex's six letters: the share of vowels
        # says nothing there); a UUID whose version says time-based or name-based (1, 2, 3, 5)
        # identifies a thing, random ones (version 4, or no version bits) do not
        if strict or _IDENTIFYING_UUID.fullmatch(value) is not None:
            return False
        digits = value.replace("-", "")
        return len(digits) >= 32 and has_digit and shannon_entropy(digits) >= 3.0
    if strict:
        if "." in value or value[0] == "/" or not (has_digit and has_lower and has_upper):
            return False
        return shannon_entropy(value) >= 4.2 and _vowel_ratio(value) < 0.3
    if not has_digit or not (has_lower or has_upper):
        return False
    return shannon_entropy(value) >= 3.5 and _vowel_ratio(value) < 0.33


# -- filler: values typed by hand to fill a field ---------------------------------------------

# Each lower-case letter or digit mapped to its successor ("9" wraps to "0" as on a keyboard row).
_SUCCESSOR = str.maketrans(
    "0123456789abcdefghijklmnopqrstuvwxy", "1234567890bcdefghijklmnopqrstuvwxyz"
)
_FILLER_MIN = 12  # letters and digits; shorter values are left to the other tests
_FILLER_SCAN = 160  # a prefix this long is enough to see the pattern
_FILLER_RUN = 5  # successive pairs in a row: "abcdef", "123456", "a1b2c3d4"
_FILLER_CHUNK = 8  # a chunk of this many characters typed twice


def is_filler(value: str) -> bool:
    """A value typed to fill a field, not generated: runs of the alphabet or of digits
    (``abcdef…``, ``123456…``, ``a1b2c3…``, ``AbCdEf…``, ``ABCD-EFGH-…``) or one chunk repeated
    (``testtesttest``, ``Xy7…Xy7…``).

    Machine-generated keys never look like this: six characters in alphabetical order occur in a
    random base62 string about once in 10^7, a repeated run of eight about once in 10^9. Only
    letters and digits count, lower-cased, so separators and case do not hide the pattern.
    """
    s = _NON_ALNUM.sub("", value.lower())[:_FILLER_SCAN]
    n = len(s)
    if n < _FILLER_MIN:
        return False
    succ = s.translate(_SUCCESSOR)
    for lag in (1, 2):  # "abcdef" and the interleaved "a1b2c3" / "aAbBcC"
        hits = run = 0
        for a, b in zip(succ[: n - lag], s[lag:], strict=True):
            if a == b:
                hits += 1
                run += 1
                if run >= _FILLER_RUN:
                    return True
            else:
                run = 0
        if 2 * hits >= n - lag:  # "abcd1234efgh5678": short runs covering half the value
            return True
    seen: set[str] = set()
    for i in range(n - _FILLER_CHUNK + 1):
        chunk = s[i : i + _FILLER_CHUNK]
        if chunk in seen:
            return True
        seen.add(chunk)
    return False


# A lower-case dotted name: a host name (``app.my.salesforce.com``), a property or package
# name, ``header.payload``. Generated tokens mix case or digits into every part.
_DOTTED_NAME = regex(r"^[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.[a-z][a-z-]*$")


# A Kubernetes object's name (lower-case words joined by "-" or ".") one of whose words is a
# credential noun: "db-credentials", "hf-token-secret", "postgres-password" name the Secret (or
# its key) that holds the credential. A person's password of words ("correct-horse-battery")
# names no credential, "mysecretpassword" is one word, and "password-2024" has digits.
_OBJECT_NAME = regex(r"^[a-z]+(?:[-.][a-z]+)+$")
_CREDENTIAL_NOUNS = frozenset({
    "secret", "secrets", "password", "passwords", "passwd", "token", "tokens", "credential",
    "credentials", "creds", "cred", "key", "keys", "apikey", "auth", "pat",
})  # fmt: skip
_NAME_SEPARATORS = regex(r"[-.]")


def is_object_name(value: str) -> bool:
    """The name of the Kubernetes object (or of its key) that holds a credential."""
    return _OBJECT_NAME.match(value) is not None and not _CREDENTIAL_NOUNS.isdisjoint(
        _NAME_SEPARATORS.split(value)
    )


_IDENTIFYING_UUID = regex(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[1235][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}|0{8}-(?:0{4}-){3}0{12}",
    re.I,
)
_UUID = regex(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def is_uuid(value: str) -> bool:
    """A UUID of any version (Vault prints an AppRole's SecretID so: random, no version bits)."""
    return _UUID.fullmatch(value) is not None


def is_dotted_name(value: str) -> bool:
    """A host, package or property name, not a credential."""
    return _DOTTED_NAME.match(value) is not None


_LETTER_WORDS = regex(r"^[A-Za-z]+(?:[-_.][A-Za-z]+)*$")
_WORD_PARTS = regex(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+")
_MIN_WORD_LEN = 4  # mean letters per word; random mixed case splits into pieces of one or two
_MIN_WORD_VOWELS = 0.25  # English words ~38 % vowels, random letters ~19 %


def is_words(value: str) -> bool:
    """Letters only, written as words (``SKILLS_inventory``, ``notActuallyAKey``): a name or a
    phrase. Generated tokens carry digits and split into one- or two-letter pieces of case."""
    if len(value) < 8 or _LETTER_WORDS.match(value) is None:
        return False
    parts = _WORD_PARTS.findall(value)
    letters = sum(len(p) for p in parts)
    if letters < _MIN_WORD_LEN * len(parts):
        return False
    vowels = sum(1 for c in value if c in "aeiouAEIOU")
    return vowels >= _MIN_WORD_VOWELS * letters
