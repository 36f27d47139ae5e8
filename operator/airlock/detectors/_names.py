"""Which variable, flag and key names announce a credential.

A name is split into words (``HF_TOKEN`` -> HF TOKEN, ``dbPassword`` -> DB PASSWORD,
``hub-token`` -> HUB TOKEN) and it is credential-named when it *ends* with a credential noun,
optionally followed by an encoding suffix (``_VALUE``, ``_B64``, ``_CONTENT``, ...). Matching on
whole words at the end is what keeps the classic traps out without a deny-list of every
variable in the world:

- ``TOKENIZER``, ``TOKENIZERS_PARALLELISM``, ``MAX_TOKENS``: TOKENIZER / TOKENS are other words;
- ``PASSWORD_FILE``, ``TOKEN_PATH``, ``AUTH_URL``, ``SECRET_NAME``, ``TOKEN_TTL``: the name ends
  with FILE / PATH / URL / NAME / TTL, so the value is about a credential, not one;
- ``AWS_ACCESS_KEY_ID``, ``KMS_KEY_ID``: ends with ID. Key *identifiers* are not secrets; the AWS
  access key id format (AKIA/ASIA...) is caught by its provider pattern under any name;
- ``PWD`` / ``OLDPWD`` alone are the shell's working directories, ``MYSQL_PWD`` is a password;
- ``PUBLIC_KEY`` is public;
- ``PAD_TOKEN`` / ``EOS_TOKEN`` are a tokenizer's special tokens and ``IMAGE_PULL_SECRET`` /
  ``TLS_SECRET`` name Kubernetes Secret objects.

*Strong* names (PASSWORD, SECRET, TOKEN, API_KEY, ACCESS_KEY, PRIVATE_KEY, CREDENTIALS, ...) are
reported with any non-placeholder literal. *Weak* names (a bare ``KEY``: ``SIGNING_KEY``,
``AZURE_BATCH_KEY``, ``CACHE_KEY``; ``AUTH``) need a value that also looks random, because most
``*_KEY`` variables hold ordinary identifiers.
"""

from __future__ import annotations

from airlock.compilecache import regex
from airlock.records import record

_WORDS = regex(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Trailing words that say how the credential is encoded, not what the variable is about.
_ENCODING_SUFFIXES = frozenset(
    {
        "VALUE",
        "VAL",
        "DATA",
        "CONTENT",
        "CONTENTS",
        "B64",
        "BASE64",
        "RAW",
        "JSON",
        "PEM",
        "STRING",
        "STR",
        "PLAIN",
        "PLAINTEXT",
        "LITERAL",
    }
)

# Last word -> kind of credential.
_STRONG_NOUNS = {
    "PASSWORD": "password",
    "PASSWORDS": "password",
    "PASSWD": "password",
    "PASSPHRASE": "password",
    "SECRET": "secret",
    "CLIENTSECRET": "secret",
    "TOKEN": "token",
    "AUTHTOKEN": "token",
    "ACCESSTOKEN": "token",
    "APITOKEN": "token",
    "APIKEY": "API key",
    "ACCESSKEY": "access key",
    "SECRETKEY": "secret key",
    "PRIVATEKEY": "private key",
    "CREDENTIAL": "credential",
    "CREDENTIALS": "credential",
    "CREDS": "credential",
    # programs' own names for a password option or directive, one word each: Redis's
    # requirepass and masterauth (redis.conf, redis-server --requirepass), keytool's and
    # jarsigner's -storepass and -keypass (and -srcstorepass, -destkeypass … of -importkeystore)
    "REQUIREPASS": "password",
    "MASTERAUTH": "password",
    "STOREPASS": "password",
    "KEYPASS": "password",
    "SRCSTOREPASS": "password",
    "DESTSTOREPASS": "password",
    "SRCKEYPASS": "password",
    "DESTKEYPASS": "password",
}
# Too short or too common on their own; credential nouns only after another word (DB_PASS,
# LDAP_BIND_PW).
_STRONG_AFTER_PREFIX = {
    "PASS": "password",
    "PWD": "password",
    "PW": "password",
    "CRED": "credential",
}

# Words before KEY that make it a secret key rather than some key.
_STRONG_KEY_QUALIFIERS = {
    "API": "API key",
    "ACCESS": "access key",
    "SECRET": "secret key",
    "PRIVATE": "private key",
    "ACCOUNT": "account key",
    "AUTH": "API key",
    "SUBSCRIPTION": "API key",
    "SHARED": "shared key",
    "SERVICE": "API key",
    "UNSEAL": "Vault unseal key",  # a share of HashiCorp Vault's master key
}
_PUBLIC_QUALIFIERS = frozenset({"PUBLIC", "PUB"})

# Words before TOKEN that make it a tokenizer's special token (``PAD_TOKEN=<pad>``,
# ``EOS_TOKEN=eos_token``), a count (``MAX_TOKEN=512``) or a listing's cursor
# (``NEXT_PAGE_TOKEN``, ``continuation_token``), words before SECRET that make the value
# the name of a Kubernetes Secret object (``IMAGE_PULL_SECRET=regcred``, ``TLS_SECRET=web-tls``).
_TOKEN_NOT_CREDENTIAL = frozenset({
    "PAD", "EOS", "BOS", "UNK", "SEP", "CLS", "MASK", "STOP", "SPECIAL", "START", "END", "EOT",
    "EOD", "IMAGE", "IMG", "AUDIO", "VIDEO", "VISION", "CHAT", "TOOL", "THINK", "MAX", "MIN", "NUM",
    "CSRF", "XSRF",  # anti-forgery tokens are per-session nonces, not credentials
    "NEXT", "PREV", "CONTINUATION", "CURSOR", "SYNC", "RESUME",  # where a listing goes on
})  # fmt: skip
_SECRET_NOT_CREDENTIAL = frozenset({
    "PULL", "TLS", "K8S", "KUBE", "KUBERNETES", "CERT",
    "EXISTING",  # Helm charts' existingSecret: the name of a Secret to use
})  # fmt: skip
# Words before KEY that make it a key of data, not a secret one (a cache's, a partition's, an
# object's in a bucket, a sort or routing key, a label's).
# (Not PRIMARY: Azure's primary and secondary keys are an account's two access keys.)
_KEY_NOT_CREDENTIAL = frozenset({
    "CACHE", "PARTITION", "SORT", "ROUTING", "FOREIGN", "IDEMPOTENCY", "DEDUP", "LOOKUP",
    "SHARD", "OBJECT", "INDEX", "LABEL", "ANNOTATION", "SELECTOR", "RANGE", "MESSAGE", "JOIN",
    "MAP", "DICT", "METRIC",
})  # fmt: skip
_NOT_CREDENTIAL_QUALIFIERS = {
    "TOKEN": _TOKEN_NOT_CREDENTIAL,
    "SECRET": _SECRET_NOT_CREDENTIAL,
    "KEY": _KEY_NOT_CREDENTIAL,
}

# Words that make a name's value a digest of the credential (Helm's ``checksum/secret``, which
# rolls pods when a Secret changes; ``SECRET_SHA256``), wherever they stand before its noun.
_DIGEST_WORDS = frozenset({"CHECKSUM", "DIGEST", "SHA", "MD5"})

# Last words that make a name's value an identifier or a digest: a random-looking value is
# expected there (``--run-id``, ``MODEL_REVISION``, ``--dataset-hash``), not a credential.
_IDENTIFIER_WORDS = _DIGEST_WORDS | {
    "ID", "IDS", "UUID", "GUID", "HASH", "ETAG", "NONCE", "REVISION", "REV", "COMMIT", "TRACE",
    "SPAN", "SIGNATURE", "FINGERPRINT", "SEED",
}  # fmt: skip

# (PAT, below: a personal access token after another word, GITHUB_PAT; a pattern as often.)
_WEAK_NOUNS = {"KEY": "key", "AUTH": "credential", "AUTHORIZATION": "credential"}
# A personal access token only after another word (GITHUB_PAT): PAT alone is as often a pattern.
_WEAK_AFTER_PREFIX = {"PAT": "token"}

# Lower-case run-together names (``dbpassword``, ``openaiapikey``): suffixes long enough to be
# unambiguous inside one word.
_COMPOUND_SUFFIXES = (
    ("PASSWORD", "password"),
    ("PASSWD", "password"),
    ("PASSPHRASE", "password"),
    ("APIKEY", "API key"),
    ("SECRETKEY", "secret key"),
    ("ACCESSKEY", "access key"),
    ("ACCESSTOKEN", "token"),
    ("AUTHTOKEN", "token"),
    ("APITOKEN", "token"),
    ("CLIENTSECRET", "secret"),
)

# Provider-specific values that only look like a credential next to the provider's name
# (no prefix in the format itself).
CONTEXT_AWS_SECRET = "aws-secret"  # noqa: S105 - a label, not a password
CONTEXT_WANDB = "wandb"
CONTEXT_COHERE = "cohere"


@record(frozen=True)
class NameClass:
    """What a credential-looking name says about its value."""

    strong: bool
    kind: str
    context: str = ""


# Words that camel case splits in two (``PassWord``, ``PassPhrase``): joined again.
_SPLIT_COMPOUNDS = {("PASS", "WORD"): "PASSWORD", ("PASS", "PHRASE"): "PASSPHRASE"}


def words(name: str) -> list[str]:
    """Upper-cased words of a variable, flag or key name."""
    ws = [w.upper() for w in _WORDS.findall(name)]
    if "PASS" in ws:
        i = 0
        while i < len(ws) - 1:
            joined = _SPLIT_COMPOUNDS.get((ws[i], ws[i + 1]))
            if joined is not None:
                ws[i : i + 2] = [joined]
            i += 1
    return ws


def _context(ws: list[str]) -> str:
    joined = "_".join(ws)
    if "WANDB" in ws:
        return CONTEXT_WANDB
    if "COHERE" in ws or joined.startswith("CO_API_KEY") or joined == "CO_API_KEY":
        return CONTEXT_COHERE
    if "SECRET" in ws and ("AWS" in ws or joined.endswith("SECRET_ACCESS_KEY")):
        return CONTEXT_AWS_SECRET
    return ""


def _counted_words(name: str) -> list[str]:
    """``words(name)`` without a trailing count (PASSWORD2, TOKEN_1, SHA256)."""
    ws = words(name)
    while ws and ws[-1].isdigit():
        ws.pop()
    return ws


# Run-together lower-case names (``functionkey``, ``refreshtoken``, ``appsecret``): a noun
# after one of these words is read as the two words (then judged as FUNCTION_KEY would be).
# Not ``signingkey``: git's names a GPG key by its public fingerprint.
_GLUED_QUALIFIERS = {
    "KEY": frozenset(_STRONG_KEY_QUALIFIERS) | {
        "FUNCTION", "MASTER", "HOST", "ENCRYPTION", "LICENSE", "STORAGE", "SAS",
    },
    "TOKEN": frozenset({
        "ACCESS", "AUTH", "API", "BEARER", "REFRESH", "SESSION", "SECRET", "SAS", "BOT", "APP",
        "USER", "SERVICE", "CLIENT", "PERSONAL", "DEPLOY", "RUNNER", "WEBHOOK",
    }),
    "SECRET": frozenset({
        "CLIENT", "APP", "CONSUMER", "WEBHOOK", "SIGNING", "SHARED", "API", "JWT", "TOKEN",
    }),
}  # fmt: skip


def _unglued(word: str) -> list[str] | None:
    for noun, qualifiers in _GLUED_QUALIFIERS.items():
        if word.endswith(noun) and word[: -len(noun)] in qualifiers:
            return [word[: -len(noun)], noun]
    return None


def names_identifier(name: str) -> bool:
    """``name`` (a flag's or a variable's) says its value is an identifier or a digest."""
    ws = _counted_words(name)
    return bool(ws) and ws[-1] in _IDENTIFIER_WORDS


# Bundler's credentials for a gem source, by host: BUNDLE_GEMS__EXAMPLE__COM=user:password (the
# host's dots written "__"); not its build flags or mirrors (BUNDLE_BUILD__…, BUNDLE_MIRROR__…)
_BUNDLER_HOST = regex(r"BUNDLE_(?!BUILD__|MIRROR__)[A-Z0-9][A-Z0-9_-]*__[A-Z0-9][A-Z0-9_-]*\Z")


def classify(name: str, extra: tuple[tuple[str, ...], ...] = ()) -> NameClass | None:
    """The credential class of a name, or ``None`` for an ordinary variable.

    ``extra`` holds the word sequences of the policy's ``extraCredentialNames``: a name matches
    one when it equals it or ends with it word for word (``VENDOR_KEY`` matches
    ``ACME_VENDOR_KEY``), and such names are strong.
    """
    if name.startswith("BUNDLE_") and _BUNDLER_HOST.match(name) is not None:
        return NameClass(False, "credential")  # user:password or a token, for a gem host
    ws = _counted_words(name)
    if not ws:
        return None
    if ws == ["ETCDCTL", "USER"]:
        return NameClass(False, "credential")  # etcdctl's NAME[:PASSWORD] (a name alone prompts)
    if ws[-2:] == ["SECRET", "ID"] and not {"VAULT", "APPROLE"}.isdisjoint(ws):
        # a Vault AppRole's SecretID logs in with its RoleID: a secret when it looks issued (a
        # random value); a name or a path is a secret's name (Azure Key Vault's, a KV path),
        # as AWS Secrets Manager's SecretId always is
        return NameClass(False, "secret")
    for seq in extra:
        if len(ws) >= len(seq) and tuple(ws[-len(seq) :]) == seq:
            return NameClass(True, "credential", _context(ws))
    if not _DIGEST_WORDS.isdisjoint(ws[:-1]):
        return None
    core = list(ws)
    for _ in range(2):
        if len(core) > 1 and core[-1] in _ENCODING_SUFFIXES:
            core.pop()
    if len(core) > 2 and core[-2:] == ["KEY", "BASE"]:
        core.pop()  # a key base: what keys are derived from (Rails' SECRET_KEY_BASE)
    glued = _unglued(core[-1])
    if glued is not None:  # "functionkey", "refreshtoken": read as two words
        core[-1:] = glued
    last = core[-1]
    prev = core[-2] if len(core) > 1 else ""
    ignored = _NOT_CREDENTIAL_QUALIFIERS.get(last, ())
    if prev in ignored or (prev == "PAGE" and len(core) > 2 and core[-3] in ignored):
        return None  # (NEXT_PAGE_TOKEN; a FB_PAGE_TOKEN is a Facebook Page's access token)
    kind = _STRONG_NOUNS.get(last)
    if kind is None and prev:
        kind = _STRONG_AFTER_PREFIX.get(last)
    if kind is None and last == "KEY":
        if prev in _PUBLIC_QUALIFIERS:
            return None
        kind = _STRONG_KEY_QUALIFIERS.get(prev)
    if kind is None:
        for suffix, suffix_kind in _COMPOUND_SUFFIXES:
            if last.endswith(suffix) and last != suffix:
                kind = suffix_kind
                break
    if kind is not None:
        return NameClass(True, kind, _context(ws))
    weak = _WEAK_NOUNS.get(last) or (_WEAK_AFTER_PREFIX.get(last) if prev else None)
    if weak is not None:
        return NameClass(False, weak, _context(ws))
    return None
