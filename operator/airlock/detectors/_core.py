"""The detector set: env values, command lines, ConfigMap entries and single values.

Cost model: the engine budget is about 100 µs for a pod with 40 env vars, so the ordinary
variable (``LOG_LEVEL=info``, ``NCCL_DEBUG=INFO``) must be dismissed in about a microsecond.
``check_env`` therefore looks at the value's length first, then at the name (classified once and
memoised per detector set), then walks the value once with the keyword automaton of
:mod:`airlock.detectors._matcher`; only a value holding a keyword reaches a regex.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from airlock.compilecache import regex
from airlock.detectors._formats import Hit
from airlock.detectors._matcher import (
    CREDENTIAL_WORDS,
    DEVICE_WORDS,
    NOTHING,
    TAG_COMMAND,
    TAG_CRED,
    TAG_HEADER,
    Seen,
    context_floor,
    context_hits,
    decoded_hits,
    iter_hits,
    keywords,
    keywords_many,
    lookalike,
    name_rules,
)
from airlock.detectors._names import (
    CONTEXT_AWS_SECRET,
    NameClass,
    classify,
    names_identifier,
    words,
)
from airlock.detectors._providers import RULES
from airlock.detectors._values import (
    MIN_SECRET_LEN,
    is_code,
    is_dotted_name,
    is_filler,
    is_object_name,
    is_placeholder,
    is_prose,
    is_reference,
    is_uuid,
    is_words,
    looks_random,
)
from airlock.errors import AirlockError, PolicyError
from airlock.records import record

_END = sys.maxsize

REASON_ENV = "credential-named variable with a literal value"
REASON_FLAG = "credential-named flag with a literal value"
REASON_KEY = "credential-named key with a literal value"
REASON_SENTENCE = "password stated in a sentence"
REASON_HEADER = "authorization header"
REASON_ENTROPY = "high-entropy value"

KIND_HIGH_ENTROPY = "high-entropy string"

# The shortest value a provider format or credentialed URL can occupy ("ab://:pwd@h").
_MIN_FORMAT_LEN = 10
# The shortest base64 run decoded to look for a token inside.
_MIN_ENCODED_LEN = 40
# Distinct names seen by one detector set are few (env names repeat across pods); the bound only
# protects against a flood of generated names.
_NAME_CACHE_MAX = 4096

_FP_DOMAIN = b"airlock/credential-fingerprint/v1\x00"
_FP_KEYED_DOMAIN = b"airlock/credential-fingerprint/hmac-v1\x00"
# A key shorter than this could itself be guessed; the chart's key is 64 random characters.
MIN_FINGERPRINT_KEY_BYTES = 16


def fingerprint(value: str) -> str:
    """Eight hex characters identifying a credential without revealing it (no key).

    The same credential found twice (two pods, env and ConfigMap, webhook and CLI) gets the same
    fingerprint, so findings can be correlated. 32 bits of a domain-separated SHA-256 reveal
    nothing usable about a random token, but anyone can recompute it: a weak password can be
    confirmed by hashing a guess list. Installations therefore key their fingerprints
    (:class:`FingerprintKey`); this unkeyed form is what ``airlock scan`` prints without
    ``--fingerprint-key-file``.
    """
    digest = _sha256()(_FP_DOMAIN + value.encode("utf-8", "surrogatepass")).hexdigest()
    return str(digest[:8])


# The interpreter's own SHA-256 (up to Python 3.11, and after)
_SHA256_MODULES = ("_sha256", "_sha2")


@functools.cache
def _sha256() -> Callable[[bytes], Any]:
    """SHA-256, from the interpreter's own module where it has one (0.2 ms to load), else from
    :mod:`hashlib`, whose OpenSSL start-up (3.5 ms) is a tenth of a small scan's; loaded on
    the first fingerprint, not at import."""
    for name in _SHA256_MODULES:
        try:
            return __import__(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib

    return hashlib.sha256


class FingerprintKey:
    """A per-installation secret key: fingerprints become HMAC-SHA256, truncated to 32 bits.

    Without the key a fingerprint cannot be recomputed from a guess, so a finding's
    fingerprint no longer confirms a weak password; with the same key (every replica mounts the
    same Secret) the same credential still gets the same fingerprint everywhere. The key is
    never shown: ``repr`` and ``str`` say only that there is one.
    """

    __slots__ = ("_mac",)

    def __init__(self, key: bytes) -> None:
        key = key.strip()
        if len(key) < MIN_FINGERPRINT_KEY_BYTES:
            raise AirlockError(
                f"the fingerprint key must hold at least {MIN_FINGERPRINT_KEY_BYTES} bytes "
                "(not counting surrounding whitespace)"
            )
        import hashlib  # (see fingerprint)
        import hmac

        # The keyed state is computed once; each fingerprint copies it (two compressions).
        self._mac = hmac.new(key, _FP_KEYED_DOMAIN, hashlib.sha256)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> FingerprintKey:
        """The key in a file (the chart mounts its Secret); errors name the file, never bytes."""
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise AirlockError(
                f"cannot read the fingerprint key file {os.fspath(path)}: {exc.strerror}"
            ) from None
        try:
            return cls(data)
        except AirlockError as exc:
            raise AirlockError(f"fingerprint key file {os.fspath(path)}: {exc}") from None

    def fingerprint(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()[:8]

    def __repr__(self) -> str:
        return "FingerprintKey(<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a FingerprintKey is not serialised")


@record(frozen=True)
class Detection:
    """A credential that was found: what it is and a fingerprint, never the value itself."""

    kind: str  # human name of the credential type, e.g. "AWS access key id"
    fingerprint: str  # 8 hex chars
    reason: str  # short, e.g. "provider format"
    rule: str = ""  # id of the provider rule that matched, "" for name-based detections

    def redacted(self) -> str:
        return f"[REDACTED {self.kind} fp:{self.fingerprint}]"

    def __str__(self) -> str:
        return self.redacted()


class _Lazy:
    """A regular expression compiled when first used. The patterns of the rarer readings (the
    clients' command lines, SQL, a device's configuration …) are: compiling the seventy
    patterns of this module at import was a third of ``airlock scan``'s start-up."""

    __slots__ = ("_compiled", "_flags", "_pattern")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._pattern, self._flags = pattern, flags
        self._compiled: re.Pattern[str] | None = None

    @property
    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = regex(self._pattern, self._flags)
        return self._compiled

    def search(self, string: str, pos: int = 0, endpos: int = _END) -> re.Match[str] | None:
        return self.compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0, endpos: int = _END) -> re.Match[str] | None:
        return self.compiled.match(string, pos, endpos)

    def finditer(self, string: str, pos: int = 0, endpos: int = _END) -> Iterator[re.Match[str]]:
        return self.compiled.finditer(string, pos, endpos)


_PASSWORD_CLASS = NameClass(True, "password")


@functools.cache
def _identifier_named(i: int) -> tuple[str, ...]:
    """Rule ``i``'s provider names that say identifier (CC_TEST_REPORTER_ID): a variable whose
    name ends with one still announces the rule. On first use (rare names reach it): reading
    every rule's names took 1 ms of every scan's start-up."""
    return tuple(k for k in RULES[i].keywords if names_identifier(k))


# Kinds of credential a person may choose (a passphrase of words is one); the others are issued.
_CHOSEN_KINDS = frozenset({"password", "secret", "credential"})

_WS = regex(r"\s")
_ENV_ASSIGN = regex(r"^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$", re.DOTALL)
_MYSQL = regex(r"(?:^|/)mysql(?:dump|admin|import|check|show|slap|sh)?$")
_USER_PASS = regex(r"^[^:\s/@]{1,64}:(?P<p>[^\s]{4,})$")
_B64 = regex(r"^[A-Za-z0-9+/]{8,}={0,2}$")
# Unquoted values that are code, not literals: calls, indexing, attribute paths.
_CODEISH = regex(r"[\[\]{}()]|^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$")
# The same for the whole rest of a ``key = value`` line of a file (unquoted): indexing
# (``settings["db"]``, ``argv[1]``), a parenthesised expression, an attribute path. A bracket
# alone is no sign of code there: generated passwords draw them (``x7]Lq(2…``); calls,
# templates and selectors are told apart afterwards, as for any value under a credential name.
# An attribute path is code unless a segment is a token's, not an identifier's: 12+ letters
# and digits, the digits in 3+ runs among the letters (Vault's ``s.…``, a Kubernetes bootstrap
# token's secret half); code names its attributes with words, a date or a version at most
# (``settings.api_token``, ``cfg.v1beta1``, ``settings.OPENAI_API_KEY_2024``).
_RANDOM_SEGMENT = r"\.(?=[A-Za-z0-9]{12,}(?:\.|$))(?:[A-Za-z]*+\d++){3}"
_KV_CODE = regex(
    r"(?<!\w)[A-Za-z_]\w*+\[(?:['\"\d]|:[A-Za-z_]\w*+\])"  # an index: x["k"], x[1], Ruby x[:k]
    rf"|^\(.*\)$|^(?!.*?{_RANDOM_SEGMENT})[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+$"
)  # a name starts after no word character and is taken whole (possessive): linear
_IDENTIFIER = regex(r"^[A-Za-z_]\w*$")
_CALLEE = regex(r"@?[A-Za-z_][\w.]*\Z")  # what a call's name is (Azure's @Microsoft.…)
# Calls whose positional arguments are a user and a password, written as literals: .NET's
# NetworkCredential(user, password) and Oracle's oci_connect(user, password, db); the
# DirectoryEntry(path, user, password) of .NET, PHP's new PDO(dsn, user, password), and the
# connect calls of MySQL clients (mysqli_connect, pymysql, MySQLdb, Perl's DBI: host or DSN,
# user, password). A dotted name or a constant (AuthenticationTypes.Secure, PDO::…) is code.
_CALL_MARK = regex(r"NetworkCredential|DirectoryEntry|connect|PDO|mysqli")
_LITERAL_ARG = r"(?:\"[^\"\r\n]*\"|'[^'\r\n]*')"
_CALL_VALUE = r"(?P<q>[\"'])(?P<val>(?![A-Za-z_]\w*(?:\.|::)[A-Za-z_])[^\"'\r\n]+)(?P=q)"
_CALL_CREDENTIALS = (
    _Lazy(rf"\b(?:NetworkCredential|oci_p?connect)\(\s*{_LITERAL_ARG}\s*,\s*{_CALL_VALUE}"),
    _Lazy(
        r"(?:\bDirectoryEntry|\bnew\s+PDO|\bmysqli?_p?connect|\bnew\s+mysqli|\bpymysql\.connect"
        r"|\bMySQLdb\.connect|\bmysql\.connector\.connect|\bDBI\s*(?:->|\.|::)\s*connect)"
        rf"\(\s*(?:{_LITERAL_ARG}|\$\w+)\s*,\s*{_LITERAL_ARG}\s*,\s*{_CALL_VALUE}"
    ),
)
# A value that is a line of configuration (``HELLO="…"``, ``PUBLIC_KEY: '…'``): its own keys are
# read by the embedded scan, the line as a whole is not one credential.
_CONFIG_LINE = regex(r"^[A-Za-z_][\w.-]*[ \t]*[:=][ \t]*[\"']")
# A value that may itself be configuration: an assignment, a key: value pair, a header, XML, a
# call given a key and a value (``setProperty("API_TOKEN", "…")``), a command line's flag given
# its value after a blank (``-Password …``), a .netrc entry, a header set by a proxy's directive
# (``proxy_set_header Authorization "Basic …"``).
_EMBEDDED = regex(
    r"[=:]|</|[\"'][ \t]*,|(?:^|[ \t])--?[A-Za-z]|\bmachine\b|\b(?:Bearer|Basic)[ \t]"
)
_SEPARATOR = regex(r"[-_.]")
# A value that is one base64 blob (a token or a key file stored encoded).
_B64_BLOB = regex(r"[A-Za-z0-9+/_-]{40,}={0,2}\Z")

_AUTH_HEADER = regex(  # (also a headers map's index: headers['Authorization'] = '…')
    r"(?i)\b(?:proxy-)?authorization[\"']?\]?[ \t]*+[:=]?[ \t]*+[\"']?[ \t]*+"
    r"(?P<scheme>bearer|basic|token|apikey|api-key|api-token|sso-key|key|ssws|bot|geniekey)"
    r"[ \t]+"
    r"(?P<val>[A-Za-z0-9._~+/=:-]{8,})"
)
# An Authorization header with no scheme before its token (APIs that take a raw key there): the
# token is the whole value (a scheme is followed by a blank: AWS4-HMAC-SHA256 Credential=…)
_AUTH_BARE = regex(
    r"(?i)\b(?:proxy-)?authorization[\"']?[ \t]*+:[ \t]*+[\"']?[ \t]*+"
    r"(?P<val>[A-Za-z0-9._~+/=-]{16,}+)(?=[\"',;\r\n]|$)"
)
# A bearer token written without its header's name (``AUTH_HEADER="Bearer …"``, a list item):
# the scheme as HTTP writes it, capitalised (prose says "the bearer of")
_BEARER = regex(r"(?<![\w-])Bearer[ \t]++(?P<val>[A-Za-z0-9._~+/=-]{16,}+)(?![^\s\"',;])")
_HEADER_KIND = {"bearer": "bearer token", "basic": "HTTP basic credentials"}
# Basic credentials decoded: a password may hold blanks (the header's structure says what it is)
_BASIC_USER_PASS = regex(r"^[^:\s/@]{1,64}:(?P<p>[^\x00-\x1f\x7f]{4,})$")
_CURL_HEADER = _Lazy(
    r"(?:-H|--header)(?:=|[ \t]*+)(?P<q>[\"'])(?P<key>[\w-]++)[ \t]*+:[ \t]*+"
    r"(?P<val>[^\"'\n]++)(?P=q)"
)
# A command's flags are looked for after its name, in the same command: up to a ";", "|", "&"
# or a line break that is not continued with a backslash (or a comment, or the end of a quoted
# item of a list: ["docker login …", "docker run -p 8080:80 …"]). Each flag is matched once and told
# its command by bisection (a regex scanning from each command name to the line's end took
# quadratic time on "curl curl curl …").
_COMMAND_END = _Lazy(r"[;|&]|(?<!\\)\n|[ \t]#|[\"'][ \t]*+[,\]]")
# a MySQL client run as a command: first on its line, or after ";", "|", "&", "(", "`" or a
# quote (`sh -c 'mysql …'`), maybe after shell words (until, if, sudo, env, VAR=value …); not
# an argument ("--name mysql"), an image ("mysql:8.0"), mysqld_exporter or a JDBC URL
# (The same place for every client of _CLIENT_PASSWORDS: "docker run --name mongo -p 27017:…"
# runs docker, not mongo. sudo's options may come first, some with a value: sudo -E -u ops. A
# command also starts after " -- " (kubectl exec vault-0 -- vault operator unseal …), as a YAML
# list's item ("- mc alias set …") and after a Dockerfile's RUN.)
# The program's path is read a segment at a time, none holding an opening ("{", "("): from
# every "{" of "{{{{…" a scan to the token's end was quadratic (seconds on 40 KB). So are the
# assignments before a command (VAR=value), at most 16 of them, each value holding no place a
# command starts: from every '"' of 'a=" a=" …' the run was read to its end (40 s on 100 KB).
_PROGRAM_PATH = r"(?:[^\s;|&\"'/\\{(]*+[/\\])*+"
_AT_COMMAND = (
    r"(?m:^|[;|&(`\"'{]|[ \t]--(?=[ \t]))[ \t]*+(?:-[ \t]++)?(?:RUN[ \t]++)?"
    r"(?:(?:sudo(?:[ \t]++-[A-Za-z]++(?:[ \t]++(?![-/])[\w.@-]++)?)*"
    r"|exec|command|time|env|nohup|nice|if|until|while|then|do|!)[ \t]++"
    r"|[A-Za-z_]\w{0,64}+=[^\s;|&(`\"'{]{0,256}+[ \t]++){0,16}" + _PROGRAM_PATH
)
# The clients of a container registry that log in with -p or --password-stdin, the global
# options that may stand before their subcommand (docker --config /tmp/c login)
_REGISTRY_CLIENTS = ("docker", "podman", "buildah", "nerdctl", "skopeo", "oras")
_REGISTRY_CLIENT = rf"(?:{'|'.join(_REGISTRY_CLIENTS)})(?:\.exe)?"
_GLOBAL_OPTIONS = r"(?:[ \t]++--?[A-Za-z][\w-]*+(?:[= \t]++(?!-)\S++)?){0,4}?"


def _run(program: str) -> _Lazy:
    """Where ``program`` (a regex) runs as a command: at a command's start, then a blank."""
    return _Lazy(_AT_COMMAND + program + r"(?=\s)")


_MYSQL_CMD = _run(r"mysql(?:dump|admin|import|check|show|slap|sh)?")

_CURL = regex(r"\bcurl\b")
# curl's -u/--user USER:PASSWORD; the password may be quoted apart (kevin:'…'), or empty when
# the user name is an API key
_CURL_U = _Lazy(
    r"[ \t\n](?:-u|--user)(?:[ \t]+|=)[\"']?(?P<user>[^\s:\"']*):[\"']?(?P<val>[^\s\"']*)"
)
# Clients given a password on their command line, one row each: words one of which a text must
# hold for the row to run (any case: PSEXEC.EXE), the command, and its flag with the password
# (the first one of each command). MySQL's -pPASSWORD (glued; -p alone prompts); sshpass -p
# among its own options (ssh's -p that follows is a port); PsExec's -p after its -u (elsewhere
# a remote program's flag); redis-cli -a or --pass; smbclient's -U user%password. A value that
# is a command substitution (``$(kubectl get secret …)``, backticks) or the next option (``-p``
# alone prompts: mongosh -p --authenticationDatabase admin) is no literal: it is not matched.
_FLAG_VALUE = (
    r"(?:(?P<q>[\"'])(?!\$\(|`)(?P<qval>[^\"'\n]+)(?P=q)|(?!\$\(|`|-)(?P<val>[^\s\"';|&]+))"
)
# between a flag and its value, or a command's words: blanks, and lines continued with "\"
_GAP = r"(?:[ \t]|\\\r?\n)++"
_GAP_OPT = r"(?:[ \t]|\\\r?\n)*+"
# a flag's value that is no password: a port or a port mapping (docker run -p 8080:80), a
# certificate's or a key store's file name (az login -p sp-cert.pem)
_NOT_A_PASSWORD = regex(
    r"\d{1,5}(?::\d{1,5}){0,2}(?:/(?:tcp|udp|sctp))?|[\w.-]+\.(?:pem|pfx|p12|crt|cer|key|jks)",
    re.IGNORECASE,
)
_ANONYMOUS_USERS = ("anonymous", "ftp")  # anonymous FTP's: its password is an e-mail address
_ANONYMOUS = rf"(?i:{'|'.join(_ANONYMOUS_USERS)})"
_CLIENT_PASSWORDS: tuple[tuple[tuple[str, ...], _Lazy, _Lazy], ...] = (
    (("mysql",), _MYSQL_CMD, _Lazy(rf"[ \t]-p{_FLAG_VALUE}")),
    (
        ("sshpass",),
        _Lazy(_AT_COMMAND + r"sshpass(?:[ \t]++(?:-v|-P[ \t]++\S++))*+(?=[ \t]++-p)"),
        _Lazy(rf"[ \t]-p[ \t]*+{_FLAG_VALUE}"),
    ),
    (
        ("psexec", "paexec"),
        _Lazy(r"(?i)(?<![\w.-])(?:psexec(?:64)?|paexec)(?:\.exe)?(?=\s)"),
        _Lazy(rf"[ \t]-u[ \t]++\S++[ \t]++-p[ \t]++{_FLAG_VALUE}"),
    ),
    (
        ("redis-cli",),
        _run(r"redis-cli"),
        _Lazy(rf"[ \t](?:-a|--pass){_GAP}{_FLAG_VALUE}"),
    ),
    (
        ("smbclient", "rpcclient", "smbcacls", "smbget"),
        _run(r"(?:smbclient|rpcclient|smbcacls|smbget)"),
        _Lazy(r"[ \t](?:-U[ \t]*+|--user[ \t=][ \t]*+)[\"']?[^\s%\"']{1,256}+%(?P<val>[^\s\"']+)"),
    ),
    # a registry login's -p (docker, podman, buildah, nerdctl, skopeo, oras, after their global
    # options; helm registry login), az login's and az acr login's -p (a service principal's
    # secret, a registry's password): not docker run's -p, a port
    (
        ("login",),
        _Lazy(
            _AT_COMMAND + rf"(?:{_REGISTRY_CLIENT}{_GLOBAL_OPTIONS}"
            r"|helm[ \t]++registry|az(?:\.cmd)?(?:[ \t]++acr)?)[ \t]++login(?=\s)"
        ),
        _Lazy(rf"[ \t]-p{_GAP}{_FLAG_VALUE}"),
    ),
    # SQL Server's command-line tools: -P (capital), glued or apart
    (
        ("sqlcmd", "osql", "bcp"),
        _run(r"(?i:sqlcmd|osql|bcp)(?:\.exe)?"),
        _Lazy(rf"[ \t]-P(?:{_GAP})?{_FLAG_VALUE}"),
    ),
    # OpenLDAP's clients: -w, the bind password (-W prompts for it)
    (
        ("ldap",),
        _run(r"ldap(?:search|add|modify|delete|modrdn|passwd|whoami|compare|exop)"),
        _Lazy(rf"[ \t]-w(?:{_GAP})?{_FLAG_VALUE}"),
    ),
    # InfluxDB's CLI: influx setup -p or --password (the initial admin's password)
    (
        ("influx",),
        _run(r"influx[ \t]++setup"),
        _Lazy(rf"[ \t](?:-p|--password){_GAP}{_FLAG_VALUE}"),
    ),
    # RabbitMQ: rabbitmqctl add_user NAME PASSWORD, change_password NAME PASSWORD
    (
        ("rabbitmqctl",),
        _run(r"rabbitmqctl(?:\.bat)?"),
        _Lazy(
            rf"[ \t](?:add_user|change_password){_GAP}(?:\"[^\"\n]*+\"|'[^'\n]*+'|[^\s\"';|&]++)"
            rf"{_GAP}{_FLAG_VALUE}"
        ),
    ),
    # MongoDB's shells and tools: -p (their port is --port)
    (
        ("mongo",),
        _run(r"mongo(?:sh|dump|restore|export|import|stat|top|files)?(?:\.exe)?"),
        _Lazy(rf"[ \t]-p{_GAP}{_FLAG_VALUE}"),
    ),
    # Cassandra's cqlsh and RabbitMQ's rabbitmqadmin: -p (apart or glued on) or --password
    (
        ("cqlsh", "rabbitmqadmin"),
        _run(r"(?:cqlsh|rabbitmqadmin)"),
        _Lazy(rf"[ \t](?:-p(?:{_GAP}|=)?|--password(?:{_GAP}|=)){_FLAG_VALUE}"),
    ),
    # NATS: the server's --pass, the nats CLI's --password (not a nats:// URL)
    (
        ("nats ", "nats-server"),
        _run(r"nats(?:-server)?"),
        _Lazy(rf"[ \t](?:--pass|--password)(?:{_GAP}|=){_FLAG_VALUE}"),
    ),
    # etcd's etcdctl --user NAME:PASSWORD (a name alone prompts); lftp -u NAME,PASSWORD (not
    # anonymous FTP's, whose password is by custom an e-mail address)
    (
        ("etcdctl",),
        _run(r"etcdctl"),
        _Lazy(rf"[ \t]--user(?:[ \t]++|=)[\"']?[^\s:\"']{{1,256}}+:{_FLAG_VALUE}"),
    ),
    (
        ("lftp",),
        _run(r"lftp"),
        _Lazy(rf"[ \t]-u[ \t]++[\"']?(?!{_ANONYMOUS},)[^\s,\"']{{1,256}}+,{_FLAG_VALUE}"),
    ),
)


class _Client(NamedTuple):
    """A client's password flag in an argument list (``[sshpass, -p, PW, ssh, …]``)."""

    flags: tuple[str, ...]  # whose next argument is the password (``--name=PW`` too)
    glued: str = ""  # a flag that may hold it glued on: sshpass -pPW, smbclient -Uuser%PW
    separator: str = ""  # the value is a user, this, the password (smbclient's user%password)
    after_user: bool = False  # only right after ``-u USER`` (PsExec)
    own_options: bool = False  # only among the program's own options (sshpass)
    command: tuple[tuple[str, ...], ...] = ()  # words that must follow the program: login
    user_first: bool = False  # a flag (a subcommand) takes a user, then the password


_SMB = _Client(("-U", "--user"), "-U", separator="%")
_PSEXEC = _Client(("-p",), after_user=True)
_LDAP_CLIENTS = (
    "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapmodrdn", "ldappasswd", "ldapwhoami",
    "ldapcompare", "ldapexop",
)  # fmt: skip
_MONGO_CLIENTS = (
    "mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport", "mongostat",
    "mongotop", "mongofiles",
)  # fmt: skip
_CLIENTS = {
    "sshpass": _Client(("-p",), "-p", own_options=True),
    "psexec": _PSEXEC,
    "psexec64": _PSEXEC,
    "paexec": _PSEXEC,
    "redis-cli": _Client(("-a", "--pass")),
    "smbclient": _SMB,
    "rpcclient": _SMB,
    "smbcacls": _SMB,
    "smbget": _SMB,
    **dict.fromkeys(_REGISTRY_CLIENTS, _Client(("-p",), command=(("login",),))),
    "az": _Client(("-p",), command=(("login",), ("acr", "login"))),
    "helm": _Client(("-p",), command=(("registry", "login"),)),
    **dict.fromkeys(("sqlcmd", "osql", "bcp"), _Client(("-P",), "-P")),
    "rabbitmqctl": _Client(("add_user", "change_password"), user_first=True),
    "influx": _Client(("-p",), command=(("setup",),)),
    **dict.fromkeys(_LDAP_CLIENTS, _Client(("-w",), "-w")),
    **dict.fromkeys(_MONGO_CLIENTS, _Client(("-p",))),
    **dict.fromkeys(("cqlsh", "rabbitmqadmin"), _Client(("-p", "--password"), "-p")),
    "nats-server": _Client(("--pass",)),
    "nats": _Client(("--password",)),
    "etcdctl": _Client(("--user",), separator=":"),
    "lftp": _Client(("-u",), separator=","),
}
# SQL that sets a password: MySQL's and Oracle's IDENTIFIED [WITH plugin] BY in a CREATE|ALTER
# USER or GRANT (Oracle's unquoted too; not BY VALUES, BY PASSWORD or BY RANDOM PASSWORD, nor a
# ClickHouse *_hash plugin's digest; prose says "identified by its name"), PostgreSQL's and SQL
# Server's CREATE|ALTER USER|ROLE|LOGIN … [WITH] [ENCRYPTED] PASSWORD [=] '…', MySQL's SET
# PASSWORD [FOR …] = ['…' | PASSWORD('…')]. A statement may run over several lines. Stored hashes
# are left out: PostgreSQL's ('md5…', 'SCRAM-SHA-256$…') and MySQL's ('*' and 40 hex digits).
_SQL_QUOTED = r"(?:'(?P<sq>[^'\n]++)'|\"(?P<dq>[^\"\n]++)\")"
_SQL_PASSWORDS = (
    _Lazy(
        r"(?i)\b(?:(?:create|alter)\s++user|grant)\b[^;]{0,200}?\bidentified\s++"
        r"(?:with\s++(?P<plugin>\w++)\s++)?by\s++(?!(?:values|password|random)\b)"
        rf"(?:{_SQL_QUOTED}|(?P<bare>[A-Za-z_][\w$#]*+)(?![\w$#(]))"
    ),
    _Lazy(
        r"(?i)\b(?:create|alter)\s++(?:user|role|login)\b[^;]{0,200}?\bpassword\b\s*+=?\s*+"
        + _SQL_QUOTED
    ),
    _Lazy(r"(?i)\bset\s++password\b[^;=]{0,200}+=\s*+(?:password\s*+\(\s*+)?" + _SQL_QUOTED),
)
_MAX_STATEMENTS = 64  # per pattern and text
_SQL_HASH = _Lazy(r"(?i)md5[0-9a-f]{32}\Z|SCRAM-SHA-256\$|\*[0-9a-f]{40}\Z")
# A flag given key=value pairs (helm's --set a=1,auth.password=…, kubectl's --from-literal=k=v,
# terraform's -var 'k=v', ansible's --extra-vars "k=v k2=v2", argo's -p k=v): the flag's
# argument, quoted or bare; the pairs in it are split at commas (or blanks, quoted), and each
# value is a literal, as a flag's value is (never code: `login(token=hf_token)` is no flag).
_FLAG_ARGUMENT = _Lazy(
    r"(?<![\w-])--?(?P<flag>[A-Za-z][\w-]{0,64}+)"
    r"(?:=|[ \t]++|\"[ \t]*+,[ \t]*+(?=\"))(?!-)"  # (not the next flag; "--set", "k=v" in JSON)
    r"(?:\"(?P<dq>[^\"\n]*+)\"|'(?P<sq>[^'\n]*+)'"
    r"|(?P<bare>(?:[^\s\"'`;|&<>()\\]++|\\(?!\r?\n)|\"[^\"\n]*+\"|'[^'\n]*+')++))"  # (k="v" in it)
)
_PAIR = _Lazy(r"(?:^|(?<=[,\s&;]))(?P<key>[A-Za-z_][\w.\-/\[\]]{0,128}+)=")
# flags whose pairs name files, not values (kubectl --from-file=key=path, helm --set-file)
_FLAG_NAME = regex(r"[A-Za-z][\w.-]{0,64}")
_FILE_FLAGS = frozenset({"from-file", "set-file", "from-env-file", "env-file", "var-file"})


def _flag_pairs(argument: str) -> Iterator[tuple[str, str, int]]:
    """(key, value, offset of the value) of each ``key=value`` in a flag's argument: one pair
    takes the rest of the argument, several are split at commas, blanks, ``&`` and ``;``
    (form-encoded, URL-like); helm's escaped comma ``\\,`` stays in its value, unescaped. A
    value that is a command substitution (backticks, ``$(``) is skipped."""
    found = [m for m in _PAIR.finditer(argument) if argument[m.start() - 1 : m.start()] != "\\"]
    if not found:
        return
    one = len(found) == 1 and found[0].start() == 0
    for n, m in enumerate(found):
        stop = len(argument) if one or n + 1 == len(found) else found[n + 1].start()
        value, at = argument[m.end() : stop], m.end()
        if not one:
            value = value.rstrip(", \t&;").replace("\\,", ",")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value, at = value[1:-1], at + 1  # k="v" within a bare argument
        if value.startswith("`") or "$(" in value:
            continue
        yield m.group("key"), value, at


# A literal piped into what reads a password from its input: echo … | docker login
# --password-stdin (podman, helm registry …), echo user:… | chpasswd, echo … | passwd --stdin
# (what echo or a here-string gives: quoted, or bare up to what the shell would expand)
_STDIN_VALUE = r"(?:\"(?P<dq>[^\"\n$`\\]++)\"|'(?P<sq>[^'\n]++)'|(?P<bare>[^\s\"'`;|&<>()$\\]++))"
_PIPED_PASSWORD = _Lazy(
    r"(?<![\w.-])(?:echo(?:[ \t]++-[neE]++)*+|printf(?:[ \t]++['\"][^'\"\n%]*+%s(?:\\n)?['\"])?)"
    rf"[ \t]++{_STDIN_VALUE}"
    rf"[ \t]*+\|{_GAP_OPT}(?:sudo(?:[ \t]++-[A-Za-z]++)*+[ \t]++)?{_PROGRAM_PATH}"
    rf"(?:(?:(?:{_REGISTRY_CLIENT}{_GLOBAL_OPTIONS}|helm[ \t]++registry)[ \t]++login\b"
    r"(?:[^\n;|&]|\\\n)*?[ \t]--password-stdin|passwd\b[^\n;|&]*?[ \t]--stdin)\b"
    r"|htpasswd\b[^\n;|&]*?[ \t]-[A-Za-z]*?i"  # htpasswd -i: the password from stdin
    r"|(?P<users>chpasswd\b(?![ \t]++(?:-e|--encrypted)\b)))"  # (-e: hashes)
)
# … or fed to it on a here-string (docker login -u ci --password-stdin <<< '…', htpasswd -i …
# <<< '…'): found from the "<<<", the command it feeds read once from where its list begins (a
# ";", "&&", "||" or line break before it; a lone "|" or "&" may be a redirection's, 2>&1, or
# inside a $(…)): searching the whole line before every "<<<" (or from every "docker" on it)
# took quadratic time on a line of thousands of them
_HERE_STRING = _Lazy(r"<<<[ \t]*+" + _STDIN_VALUE)
_HERE_CUT = _Lazy(r";|\n|&&|\|\|")
_HERE_LOGIN = _Lazy(rf"(?<![\w.-]){_REGISTRY_CLIENT}[ \t]")
_HERE_HTPASSWD = _Lazy(r"(?<![\w.-])htpasswd[ \t]")
_STDIN_FLAG = _Lazy(r"[ \t]-[A-Za-z]*?i")  # htpasswd's -i, alone or in a cluster (-iBc)


def _here_strings(text: str) -> Iterator[re.Match[str]]:
    """The here-strings fed to a registry login's ``--password-stdin`` or to ``htpasswd -i``."""
    if "<<<" not in text:
        return
    cuts = [m.start() for m in _HERE_CUT.finditer(text)]
    judged: dict[int, bool] = {}  # where a command begins -> whether it reads a password
    for m in _HERE_STRING.finditer(text):
        i = bisect.bisect_left(cuts, m.start()) - 1
        begin = cuts[i] + 1 if i >= 0 else 0
        feeds = judged.get(begin)
        if feeds is None:
            head = text[begin : m.start()]
            htpasswd = _HERE_HTPASSWD.search(head) if "htpasswd" in head else None
            feeds = judged[begin] = (
                "--password-stdin" in head and _HERE_LOGIN.search(head) is not None
            ) or (htpasswd is not None and _STDIN_FLAG.search(head, htpasswd.end() - 1) is not None)
        if feeds:
            yield m


def _group_of(m: re.Match[str], names: Sequence[str]) -> str:
    """The first of ``names`` that took part in ``m`` (of a pattern's alternative values)."""
    return next(g for g in names if m.groupdict().get(g) is not None)


# OpenSSL's pass phrase arguments: -passin, -passout, -pass, -password with "pass:" before a
# literal (env:VAR, file:PATH, fd:N and stdin name where it is instead)
_OPENSSL_FLAGS = frozenset({"-passin", "-passout", "-pass", "-password"})
_OPENSSL_PASS = _Lazy(
    rf"(?<![\w-])-pass(?:in|out|word)?{_GAP}(?P<q>[\"']?)pass:"
    r"(?:\"(?P<dq>[^\"\n]++)\"|'(?P<sq>[^'\n]++)'|(?P<val>[^\s\"';|&]++))(?P=q)"
)
_NETRC = regex(r"\bpassword[ \t]+(?P<val>\S+)")
# Network device configuration (Cisco IOS and its kin, kept in ConfigMaps by automation): a
# line's command and the secret it sets, after an optional encryption type: 0 (clear) or 7
# (reversible). Types 5, 8 and 9 are hashes, read by the hash rules (their "5" is no secret).
# The value ends the line (prose goes on: "Enable password authentication for …"); a
# community string is followed by its access (RO, RW). The well-known default communities
# (public, private) are no secret. IOS writes the commands in lower case and the access in
# capitals (prose capitalises: "Enable secret scanning"); a line may be an Ansible list item
# (- "enable secret …"), and the value is no lone lower-case word ("enable password policy").
_DEVICE_SECRET = _Lazy(
    r"(?m)^[ \t]*+(?:-[ \t]++)?[\"']?(?:(?:enable[ \t]++(?:password|secret)"
    r"(?:[ \t]++level[ \t]++\d++)?|pac[ \t]++key)(?:[ \t]++[07](?=[ \t]))?[ \t]++"
    r"(?![a-z]++[\"']?[ \t]*+\r?$)(?P<val>[^\s\"']++)[\"']?[ \t]*+\r?$"
    r"|snmp-server[ \t]++community[ \t]++(?![a-z]++[ \t])(?P<community>[^\s\"',]++)"
    r"[ \t]++(?:RO|RW)\b)"
)
_DEFAULT_COMMUNITIES = frozenset({"public", "private"})
# An HTML form's password field and the value it is filled with (a tag's attributes, any order)
_MAX_TAG = 2048
_INPUT_TAG = regex(r"(?i)<input(?![\w-])")
_PASSWORD_TYPE = regex(r"(?i)\stype[ \t]*=[ \t]*[\"']?password(?![\w-])")
_VALUE_ATTR = regex(
    r"(?i)\svalue[ \t]*=[ \t]*(?:\"(?P<d>[^\"<]*)\"|'(?P<s>[^'<]*)'|(?P<u>[^\s\"'<>]+))"
)


def _concatenation(operators: str) -> str:
    """A value that is the inside of code's concatenation (``' + pw + '``, ``" . $pw . "``):
    it opens or closes with one of ``operators`` after or before a quote."""
    op = f"[{operators}]"
    return rf"""^[ \t]*["'`]?[ \t]*{op}[ \t]|[ \t]{op}[ \t]*["'`]?[ \t]*$"""


# a value written by code around the tag: a concatenation (+, PHP's ., VB's &), Razor's @Model
_BUILT_VALUE = regex(_concatenation("+.&") + r"|^@\w")
# inside escaped JSON (a string in code or a shell command): a concatenation, or what a shell
# expands ($PW, ${PW}, $(…), `…`)
_SPLICED = regex(_concatenation("+.") + r"|\$[A-Za-z_{(]|`")
# Configuration directives, a blank, the password: redis.conf's requirepass and masterauth,
# OpenLDAP's rootpw (slapd.conf) and bindpw (ldap.conf, nslcd.conf). A value in braces is a
# scheme's hash ({SSHA}…, {CRYPT}…), not the password.
_DIRECTIVE_WORDS = ("requirepass", "masterauth", "rootpw", "bindpw")
_DIRECTIVE_PASSWORD = _Lazy(
    r"^[ \t]*(?:requirepass|masterauth|rootpw|bindpw)[ \t]+(?![{])(?P<val>\S+)", re.M | re.I
)
# A password told in a sentence of a note or a README kept in a ConfigMap or an annotation:
# "the default password is 'Secret123'", "the password for user 'postgres' is \"hunter22\"": the
# quoted value right after "password [for USER] is|was [set to]". What a sentence says of a
# password (its state, its scheme, the name of what holds it) is no password.
_STATED_PASSWORD = _Lazy(
    r"(?i)\bpass(?:word|phrase)(?:[ \t]++for[ \t]++(?:the[ \t]++)?(?:user|account|login)?[ \t]*+"
    r"(?:\"[^\"\n]{1,40}\"|'[^'\n]{1,40}'|`[^`\n]{1,40}`|[\w.@-]{1,40}))?"
    r"[ \t]++(?:is|was)[ \t]++(?:set[ \t]++to[ \t]++)?(?P<q>[\"'`])(?P<val>[^\"'`\s]{1,64})(?P=q)"
)
_JUDGEMENTS = frozenset({
    "correct", "incorrect", "invalid", "valid", "wrong", "weak", "strong", "expired", "missing",
    "blank", "unset", "disabled", "enabled", "locked", "unknown", "mandatory", "ignored",
    "plain", "plaintext", "cleartext", "bcrypt", "scrypt", "argon2", "argon2id", "pbkdf2", "md5",
    "sha1", "sha256", "sha512", "crypt", "scram-sha-256",
})  # fmt: skip
# a state ("rotated", "hashed"), or words joined ("auto-generated", "kube-system", "read-only")
_STATE_OR_NAME = regex(r"[a-z]+ed|[A-Za-z]+(?:[-_.][A-Za-z]+)+")


def _stated_password(value: str) -> bool:
    """What a sentence says is the password, not what it says of one."""
    return not (
        value.lower() in _JUDGEMENTS
        or value.startswith("-")
        or _STATE_OR_NAME.fullmatch(value) is not None
    )


# What `vault operator init` prints, kept in a note or a ConfigMap: "Unseal Key 1: …" (Shamir
# shares, base64) and "Recovery Key 1: …" (auto-unseal); the root token is a provider format
_VAULT_KEY_LINE = _Lazy(
    r"^[ \t]*(?:Unseal|Recovery)[ \t]++Key[ \t]++\d{1,2}:[ \t]*+"
    r"(?P<val>[A-Za-z0-9+/]{32,}={0,2})(?![\w+/=-])",
    re.M,
)
# a key share as Vault prints it: base64 (33 bytes: 44 characters) or hex
_UNSEAL_SHARE = regex(r"[A-Za-z0-9+/]{40,}={0,2}|[0-9a-f]{64,}")
# PgBouncer's auth_file (userlist.txt): "user" "password" a line, or a stored hash
_USERLIST_LINE = _Lazy(r'^[ \t]*"(?:[^"\n]|"")*+"[ \t]++"(?P<val>(?:[^"\n]|"")++)"', re.M)
# A PostgreSQL password file line: host:port:database:user:password (":" and "\" escaped).
_PGPASS_LINE = _Lazy(r"^(?:(?:[^:\\\n]|\\.)*:){4}(?P<val>(?:[^:\\\n]|\\.)+)$", re.M)


def _keyword_fragment(extra: Sequence[tuple[str, ...]], *, folded: bool = True) -> str:
    """A case-insensitive alternation that every credential-named key must contain.

    Used inside the text and script regexes so that lines whose key cannot be credential-named
    are skipped by the regex engine instead of by Python code.
    """
    kws = set(CREDENTIAL_WORDS) | {seq[-1].lower() for seq in extra}
    words = "|".join(sorted(re.escape(k) for k in kws))
    return f"(?i:{words})" if folded else f"(?:{words})"


# A value in a script: double-quoted, single-quoted, or bare up to a shell metacharacter.
_VALUE = r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\"'`;&|()<>]+))"


@record(frozen=True)
class _Patterns:
    """Regexes that depend on the policy's extra credential names; compiled once per set."""

    kv_line: re.Pattern[str]
    keyword: re.Pattern[str]  # any credential word: the lines worth trying kv_line on
    keyword_lower: re.Pattern[str]  # the same over lower-cased text: no per-position case folding
    json_pair: re.Pattern[str]
    json_escaped_pair: re.Pattern[str]  # {\"token\": \"…\"}: JSON inside a string literal
    xml_element: re.Pattern[str]  # <password>…</password> (Maven settings.xml)
    xml_property: re.Pattern[str]  # <name>fs.s3a.secret.key</name><value>…</value> (Hadoop)
    xml_add: re.Pattern[str]  # <add key="ApiKey" value="…" /> (.NET appSettings, NuGet.config)
    xml_value: re.Pattern[str]  # <AdministratorPassword><Value>…</Value> (Windows unattend.xml)
    string_pair: re.Pattern[str]  # setProperty("API_TOKEN", "…"), env["API_TOKEN"] = "…"
    # a name and its value as a Kubernetes env list writes them (and Postman's key/value)
    name_value_json: re.Pattern[str]  # {"name": "API_TOKEN", "value": "…"}
    name_value_yaml: re.Pattern[str]  # - name: API_TOKEN⏎  value: …
    inline_pair: re.Pattern[str]  # {user: 'x', password: '…'} (YAML flow, JavaScript objects)
    hcl_variable: re.Pattern[str]  # variable "db_password" { default = "…" } (Terraform)
    script_assign: re.Pattern[str]
    script_flag: re.Pattern[str]


# An assignment on a line of configuration or code, as the languages write it. Before the key,
# up to four words: modifiers and a type (``export``, ``private static final String``, ``var``,
# ``const``) or a provider's name (``cohere token = '…'``). After it, a type annotation before
# " =" (Go ``var key string =``, TypeScript and Kotlin ``key: string =``; never ``key: value=``,
# a base64 value's padding). The operators: ":" and
# "=" (not "== ", a comparison), and before a blank or a quote Go's and make's ":=", make's
# "?=", "::=", ":::=", "+=" and PHP's ".="; "=>" (PHP arrays, Ruby hashes) after a blank or a
# quote. So `KEY==x`, `KEY=>x` and `key:=x` (.properties) still give the values "=x", ">x", "=x".
# Before the key a sigil may stand: PHP's and Perl's "$", Ruby's "@" and ":" (a symbol).
_DECLARED = r"(?:[A-Za-z_$][\w$.:<>\[\]*?]*+(?<!:)[ \t]++){0,4}"  # (no "word:": prose)
# An object's member written with "->" (PHP, Perl, C): ``$mail->Password = '…'``
_MEMBER_OF = r"(?P<member>(?:[$@]?[A-Za-z_]\w*+->)++)?"
# A line commented out keeps its credential: "#", "//", "--", ";", "*" (a block comment's line)
_COMMENTED = r"(?:(?:#+|//+|--|;+|\*)[ \t]*)?"
# A log line's level tag before what it prints: "[DEBUG] Using key=…"
_LOGGED = r"(?:\[[A-Za-z]{3,8}\][ \t]*)?"
_TYPED = r"(?:(?:[ \t]*:[ \t]*|[ \t]+)[A-Za-z_*\[][\w.<>\[\]*?|]*+(?=[ \t]+[:?+.]?=))?"
_ASSIGN = r"(?:(?::::=|::=|:=|\?=|\+=|\.=)(?=[ \t\"'`])|(?<=[ \t\"'])=>|=(?!=[ \t])|:)"


def _compile_patterns(extra: Sequence[tuple[str, ...]]) -> _Patterns:
    # a policy's extra names are spelled inside the patterns: those are never cached on disk
    make: Callable[..., re.Pattern[str]] = regex if not extra else re.compile
    kw = _keyword_fragment(extra)
    # A lookahead finds the keyword, then a possessive run takes the whole key: written as
    # `[\w.-]*{kw}[\w.-]*` the regex backtracks over every keyword occurrence of a long run and
    # goes quadratic on hostile input (a 200 kB "passwordtoken..." line took minutes).
    key = rf"(?=[\w.\-]*?{kw})[\w.\-]++"
    return _Patterns(
        kv_line=make(
            rf"^[ \t]*{_LOGGED}{_COMMENTED}(?:-[ \t]+)?{_DECLARED}{_MEMBER_OF}"
            rf"(?P<q>[\"']?)[$@:]?(?P<key>{key})(?P=q){_TYPED}"
            # (a member is assigned with "=" only: "client->token: request" is a diagram)
            rf"[ \t]*(?(member)=(?![=>])|{_ASSIGN})[ \t]*(?P<val>[^\r\n]*)\r?$",
            re.MULTILINE,
        ),
        keyword=make(kw),
        keyword_lower=make(_keyword_fragment(extra, folded=False)),
        json_pair=make(rf"\"(?P<key>{key})\"\s*:\s*\"(?P<val>(?:[^\"\\\r\n]|\\.)*)\""),
        json_escaped_pair=make(
            rf"\\\"(?P<key>{key})\\\"[ \t]*+:[ \t]*+\\\"(?P<val>[^\"\\\r\n]++)\\\""
        ),
        xml_element=make(
            rf"<(?P<key>{key})>[ \t\r\n]*(?P<val>[^<>\s](?:[^<>\r\n]*[^<>\s])?)[ \t\r\n]*"
            rf"</(?P=key)>"
        ),
        xml_property=make(
            rf"<name>\s*(?P<key>{key})\s*</name>\s*<value>(?P<val>[^<>\r\n]*)</value>"
        ),
        xml_add=make(
            rf"<add\s+key\s*=\s*(?P<q>[\"'])(?P<key>{key})(?P=q)\s+value\s*=\s*"
            r"(?P<vq>[\"'])(?P<val>[^\"'\r\n]*)(?P=vq)"
        ),
        xml_value=make(  # the element may carry attributes (wcm:action="add")
            rf"<(?P<key>{key})(?:[ \t][^<>]{{0,200}}+)?>[ \t\r\n]*+<(?i:value)>"
            r"(?P<val>[^<>\r\n]+)</(?i:value)>"
        ),
        name_value_json=make(
            rf"\"(?:name|key)\"\s*:\s*\"(?P<key>{key})\"\s*,\s*\"value\"\s*:\s*"
            r"\"(?P<val>(?:[^\"\\\r\n]|\\.)*)\""
        ),
        name_value_yaml=make(
            rf"^[ \t]*(?:-[ \t]+)?name[ \t]*:[ \t]*(?P<q>[\"']?)(?P<key>{key})(?P=q)[ \t]*\r?\n"
            r"[ \t]*value[ \t]*:[ \t]*(?P<val>[^\r\n]*)\r?$",
            re.MULTILINE,
        ),
        inline_pair=make(
            rf"[{{,][ \t]*(?P<q>[\"']?)(?P<key>{key})(?P=q)[ \t]*[:=][ \t]*"
            r"(?:(?P<vq>[\"'])(?P<val>[^\"'\r\n]*)(?P=vq)"
            r"|(?P<bare>[^\s\"',{}\[\]]++)(?=[ \t]*[,}]))"
        ),
        # a setter's call, or a getter's whose second argument is a default (getenv("API_TOKEN",
        # "…"), os.environ.get, getProperty); not any call: field("password", "string"),
        # keyring.get_password("db_password", "svc-user")
        string_pair=make(
            rf"(?:\b(?i:set\w*+|put\w*+|get|getenv\w*+|get_env\w*+|getproperty|getstring)\(|\[)"
            rf"[ \t]*(?P<q>[\"'])(?P<key>{key})(?P=q)[ \t]*"
            # (a value opening with "-" is an option's alias: add_argument("--hf-token", "--hub"))
            r"(?:,|\][ \t]*=(?!=))[ \t]*(?P<vq>[\"'])(?P<val>(?!-)[^\"'\r\n]*)(?P=vq)"
        ),
        # Terraform's variable block with a default (variable "db_password" { default = "…" }),
        # after blocks of its own (validation { … }, type = object({ … })) one level deep
        hcl_variable=make(
            rf"\bvariable[ \t]+\"(?P<key>{key})\"[ \t]*\{{(?:[^{{}}]|\{{[^{{}}]*+\}})*?"
            rf"\bdefault[ \t]*=[ \t]*"
            r"\"(?P<val>[^\"\r\n]*)\""
        ),
        script_assign=make(rf"(?<![\w$.\-/])(?:export[ \t]+)?(?P<key>(?=\w*?{kw})\w++)={_VALUE}"),
        # (apart from its flag, a value is no other option: keytool -genkeypair -storepass …)
        script_flag=make(rf"(?<![\w-])--?(?P<key>(?=[A-Za-z]){key})(?:=|[ \t]+(?!-))" + _VALUE),
    )


_DEFAULT_PATTERNS = _compile_patterns(())


# a literal's quotes; backticks (Go's raw strings, JavaScript's template literals) only around
# the whole value: a generated password may start with one
_QUOTES = "\"'`"


def _clean_text_value(raw: str) -> tuple[str, bool]:
    """The literal of a ``key: value`` / ``KEY=value`` line and whether it was quoted."""
    v = raw.strip()
    if v and v[0] in _QUOTES:  # ("" is in every string)
        first = _first_literal(v)
        if first is not None:
            return first, True
        if _operator_after_literal(v):
            return "", True  # code: no literal value
    if v.endswith(" \\"):
        v = v[:-2].rstrip()  # a shell line continued: "--set auth.password=… \\"
    if v.endswith(","):
        v = v[:-1].rstrip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in _QUOTES:
        return v[1:-1], True
    if len(v) >= 3 and v[-1] == ";" and v[0] == v[-2] and v[0] in _QUOTES:  # a statement
        return v[1:-2], True
    if v[:1] in "\"'":
        return v[1:], True
    hash_at = v.find(" #")
    if hash_at >= 0:
        v = v[:hash_at].rstrip()
    if "," in v and (more := _MORE_PAIRS.search(v)) is not None:
        v = v[: more.start()]  # helm's --set pw=…,image.tag=1: the pairs after are no value
    return v.rstrip(";"), False


# (a dotted key after the comma: a password's own ",X=" stays; helm's keys are paths)
_MORE_PAIRS = regex(r",[A-Za-z_][\w-]{0,64}\.[\w.\[\]-]{0,128}=")


# what may follow a whole literal in code: the statement's or an item's end, a comment, a pipe
# (`"…"; // note`, `'…' | '…'`), a method called on it (`"…".encode()`). An operator after it
# (`"django-insecure-" + …`, `"%s" % x`, PHP's `"pw-" . $s`) makes the literal only a part of
# the value: the line is code.
_AFTER_LITERAL = (";", ",", ")", "|", "#", "//")
_METHOD_CALL = regex(r"\.[A-Za-z_]\w*\(")
_OPERATOR_AFTER = ("+", "%", "*", ".", "?", "&&", "||", "or ", "and ", "if ")


def _first_literal(v: str) -> str | None:
    """The quoted literal that ``v`` opens, when code follows it (or nothing does); None when
    what follows its closing quote is no code (the quote was part of the value)."""
    q, i = v[0], 1
    while (j := v.find(q, i)) >= 0:
        k = j
        while q == '"' and v[k - 1] == "\\":  # (v[0] is the quote: k stops at 1)
            k -= 1
        if (j - k) % 2:  # an escaped quote
            i = j + 1
            continue
        if q == "'" and v[j + 1 : j + 2] == "'":  # YAML writes a quote twice
            i = j + 2
            continue
        rest = v[j + 1 :].lstrip()
        whole = not rest or rest.startswith(_AFTER_LITERAL) or _METHOD_CALL.match(rest)
        return v[1:j] if whole else None
    return None


def _operator_after_literal(v: str) -> bool:
    """``v`` opens a quoted literal that an operator follows (a concatenation, a format)."""
    end = v.find(v[0], 1)
    return end > 0 and v[end + 1 :].lstrip().startswith(_OPERATOR_AFTER)


def _query_parameter(text: str, at: int, scheme: int) -> bool:
    """The name at ``text[at]`` is a URL query parameter's: after "?" or "&", and after the
    text's first "://" (at ``scheme``, -1 for none)."""
    return at > 0 and text[at - 1] in "?&" and 0 <= scheme < at


def _b64_utf8(value: str) -> str | None:
    """The UTF-8 text ``value`` is the (standard, padded) base64 encoding of, if it is one."""
    if _B64.match(value) is None:
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _decoded_user_pass(value: str, shape: re.Pattern[str] = _USER_PASS) -> re.Match[str] | None:
    """``user:password`` (as ``shape`` reads it) that ``value`` is the base64 encoding of."""
    decoded = _b64_utf8(value)
    return None if decoded is None else shape.match(decoded)


def _decoded_text(value: str) -> str | None:
    """The printable text that ``value`` is the base64 encoding of, if it is one."""
    text = _b64_utf8(value)
    if text is None:
        return None
    # 12 characters at least: random bytes decode to short text often enough (an 8-character
    # password is 6 bytes, sometimes valid UTF-8), to 12 ASCII characters hardly ever
    return text if len(text) >= 12 and text.isascii() and text.isprintable() else None


class _Found:
    """Detections of one text, keeping the first of overlapping or repeated findings.

    Kept spans are disjoint, so they are stored sorted and an overlap test is a bisection:
    a hostile ConfigMap with thousands of matches stays linear-logarithmic.
    """

    __slots__ = ("detections", "ends", "keys", "starts")

    def __init__(self) -> None:
        self.detections: list[Detection] = []
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.keys: set[tuple[str, str]] = set()

    def overlaps(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.starts, end)
        return i > 0 and self.ends[i - 1] > start

    def add(self, start: int, end: int, det: Detection | None) -> None:
        if det is None or self.overlaps(start, end):
            return
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)
        key = (det.kind, det.fingerprint)
        if key not in self.keys:
            self.keys.add(key)
            self.detections.append(det)


# Configuration inside a value is read for its keys, and their values again: so deep at most (a
# hostile "token: token: token: …" would otherwise recurse once a word)
_MAX_DEPTH = 3
_CLEAN_MAX_ENTRIES = 50_000  # about 5 MB of short strings at most; cleared when full
_CLEAN_MAX_LEN = 512  # longer values (scripts, certificates) are checked every time
_CLEAN_TEXT_MAX_CHARS = 8_000_000  # ConfigMap files known clean, all together; cleared when full


class _Weighed:
    """Inputs known to hold no credential, at most ``limit()`` of weight together (characters of
    text, env entries), emptied when full like the memo of clean values. The limit is read at
    each addition (tests lower it)."""

    __slots__ = ("_limit", "_seen", "_weight")

    def __init__(self, limit: Callable[[], int]) -> None:
        self._seen: set[Any] = set()
        self._weight = 0
        self._limit = limit

    def __contains__(self, item: object) -> bool:
        return item in self._seen

    def add(self, item: object, weight: int) -> None:
        limit = self._limit()
        if self._weight + weight > limit:
            self._seen.clear()
            self._weight = 0
            if weight > limit:
                return
        self._seen.add(item)
        self._weight += weight


def _remember(memo: set[Any], item: Any, limit: int = _CLEAN_MAX_ENTRIES) -> None:
    """Add ``item`` to a memo of clean inputs, emptied first when it holds ``limit`` items (no
    eviction order to keep: a memo refills from the next requests)."""
    if len(memo) >= limit:
        memo.clear()
    memo.add(item)


REDACTED = "[REDACTED]"
_SHOWN_CLEAN: set[str] = set()  # texts redact() found nothing in (short ones; bounded)
_SHOWN_CLEAN_MAX = 10_000  # messages and paths, about 100 characters each: ~2 MB at most


def redact(text: str) -> str:
    """``text`` with every credential that the provider formats, key blocks, connection strings
    and credentialed URLs find in it replaced by ``[REDACTED]``.

    The last guard before text built from an object leaves the process (a finding's message and
    path, an admission warning, a policy error): rules name what they found and quote values
    only where they need to, and this makes sure that a value which is a credential is never
    among them, whichever rule quoted it.
    """
    if len(text) < _MIN_FORMAT_LEN or text in _SHOWN_CLEAN:
        return text
    spans = sorted((hit.start, hit.end) for hit in iter_hits(text))
    if not spans:
        if len(text) <= _CLEAN_MAX_LEN:
            _remember(_SHOWN_CLEAN, text, _SHOWN_CLEAN_MAX)
        return text
    parts: list[str] = []
    at = -1  # end of the last marker's span
    for start, end in spans:
        if start < at:  # overlaps the span before: one marker for both
            at = max(at, end)
            continue
        parts += [text[max(at, 0) : start], REDACTED]
        at = end
    parts.append(text[at:])
    return "".join(parts)


class DetectorSet:
    """All credential detectors, tuned by one policy.

    Everything policy-specific (extra credential names, allow-listed values) is compiled here,
    once per policy; the ``check_*`` methods only run precompiled regexes. The only state that
    changes after construction is the memo of name classifications, which is a pure cache.
    """

    __slots__ = (
        "_allow",
        "_clean_args",
        "_clean_envs",
        "_clean_texts",
        "_extra",
        "_key",
        "_names",
        "_patterns",
    )

    def __init__(
        self,
        extra_credential_names: Iterable[str] = (),
        allow_values: Iterable[str] = (),
        *,
        fingerprint_key: FingerprintKey | None = None,
    ) -> None:
        errors: list[tuple[str, str]] = []
        extra: list[tuple[str, ...]] = []
        for i, name in enumerate(extra_credential_names):
            ws = tuple(words(name))
            if not ws:
                errors.append(
                    (f"spec.detectors.extraCredentialNames[{i}]", "must contain letters or digits")
                )
            else:
                extra.append(ws)
        allow: list[re.Pattern[str]] = []
        for i, pattern in enumerate(allow_values):
            path = f"spec.detectors.allowValues[{i}]"
            try:
                compiled = re.compile(pattern)  # a policy's: never cached (it may spell a token)
            except re.error as exc:
                errors.append((path, f"invalid regular expression: {exc}"))
                continue
            if compiled.search("") is not None:
                errors.append(
                    (path, "pattern matches the empty string, so it would allow every value")
                )
                continue
            allow.append(compiled)
        if errors:
            detail = "; ".join(f"{p}: {m}" for p, m in errors)
            raise PolicyError(f"invalid detector settings: {detail}", errors)
        self._extra: tuple[tuple[str, ...], ...] = tuple(extra)
        # a container's literal env entries known to hold no credential, as a whole, bounded
        # by their number. Only negatives are remembered, so no credential is ever kept beyond
        # the call that saw it; the same list recurs in every Pod of a controller, and an
        # injected sidecar's in every workload, so most lookups on the hot path hit.
        self._clean_envs = _Weighed(lambda: _CLEAN_MAX_ENTRIES)
        # the same for whole ConfigMap files (key, text), bounded by their total length: a scan
        # reads a ConfigMap twice (for its readers' context, then to report it) and the audit
        # every pass, and a file costs tens of nanoseconds a character to search
        self._clean_texts = _Weighed(lambda: _CLEAN_TEXT_MAX_CHARS)
        # and whole command lines (a container's args recur in every Pod of its controller)
        self._clean_args: set[tuple[str, ...]] = set()
        self._allow: tuple[re.Pattern[str], ...] = tuple(allow)
        self._patterns = _compile_patterns(self._extra) if self._extra else _DEFAULT_PATTERNS
        self._names: dict[str, tuple[NameClass | None, frozenset[int]]] = {}
        self._key = fingerprint_key

    def keyed(self, key: FingerprintKey | None) -> DetectorSet:
        """The same detectors whose fingerprints are keyed with ``key`` (None: unkeyed).

        Shares the compiled settings and the memos of names and clean values: neither depends
        on the key (a fingerprint is computed only for what is detected, never memoised).
        """
        if key is self._key:
            return self
        other = DetectorSet.__new__(DetectorSet)
        other._extra = self._extra
        other._allow = self._allow
        other._patterns = self._patterns
        other._clean_texts = self._clean_texts
        other._clean_envs = self._clean_envs
        other._clean_args = self._clean_args
        other._names = self._names
        other._key = key
        return other

    @property
    def is_keyed(self) -> bool:
        """Whether fingerprints are keyed (an installation key), not recomputable from a guess."""
        return self._key is not None

    # -- helpers ---------------------------------------------------------------------------

    def _fp(self, secret: str) -> str:
        key = self._key
        return fingerprint(secret) if key is None else key.fingerprint(secret)

    def _detection(self, hit: Hit) -> Detection:
        return Detection(hit.kind, self._fp(hit.secret), hit.reason, hit.rule)

    def _classify(self, name: str) -> NameClass | None:
        return self._name(name)[0]

    def _context_rules(self, name: str) -> frozenset[int]:
        return self._name(name)[1]

    def _name(self, name: str) -> tuple[NameClass | None, frozenset[int]]:
        names = self._names
        found = names.get(name)
        if found is None:
            # a name that says its value is an identifier or a digest (ELASTIC_CA_FINGERPRINT,
            # --model-hash) announces no provider's credential, whatever provider it names,
            # unless a rule's own name says so (Code Climate's CC_TEST_REPORTER_ID)
            rules = name_rules(name)
            if rules and names_identifier(name):
                low = name.lower()
                rules = frozenset(
                    i for i in rules if any(low.endswith(k) for k in _identifier_named(i))
                )
            found = (classify(name, self._extra), rules)
            if len(names) >= _NAME_CACHE_MAX:
                names.clear()
            names[name] = found
        return found

    def _allowed(self, secret: str, whole: str = "") -> bool:
        for p in self._allow:
            if p.search(secret) is not None or (whole and p.search(whole) is not None):
                return True
        return False

    def _first(self, hits: Iterable[Hit], whole: str = "") -> Detection | None:
        for hit in hits:
            if not self._allowed(hit.secret, whole):
                return self._detection(hit)
        return None

    def _formats(self, name: str, value: str, seen: Seen, whole: str = "") -> Detection | None:
        """Provider formats in the value, then the formats its name announces (``near`` rules),
        then formats inside the value when it is one base64-encoded blob."""
        det = (
            self._first(iter_hits(value, seen), whole or value) if seen.rules or seen.tags else None
        )
        if det is None and len(value) >= _MIN_ENCODED_LEN and _B64_BLOB.match(value) is not None:
            det = self._first(decoded_hits(value), whole or value)
        if det is None and name:
            ctx = self._context_rules(name)
            if ctx:
                # ": " joins them, not "=": a format whose alphabet holds "=" (base64) must not
                # take the separator for its first character (its value would never start)
                text = f"{name}: {value}"
                det = self._first(context_hits(text, ctx, len(name) + 2), whole or value)
        return det

    def _named(self, cls: NameClass, value: str, reason: str, whole: str = "") -> Detection | None:
        """The keyword + value heuristic: a credential name with a value that could be one.

        Names are evidence, not verdict: the value must still be a literal that could be the
        credential, not code, prose, a path, a URL, a reference, a placeholder, or a lookalike of
        a provider format that the format's own rule refused.
        """
        v = _unquote(value.strip())
        if len(v) < MIN_SECRET_LEN or is_placeholder(v) or is_reference(v) or is_prose(v):
            return None
        if is_code(v) or lookalike(v) or _config_line(v) or _variable(v) or is_object_name(v):
            return None
        # base64 of text is judged by that text: "ZHVtbXkg…" (a placeholder) is no more a secret
        # than "dummy …"; random bytes (a key) do not decode to text
        text = _decoded_text(v)
        if text is not None and self._named(cls, text, reason, whole) is None:
            return None
        # A lower-case dotted name is a host, a package or a property (``app.corp.example``,
        # ``header.payload``); an issued token or key is random, so letters in words are a name
        # (``SKILLS_inventory``). A password or secret is chosen by a person and may be either
        # (``correct-horse-battery-staple``).
        # A value typed to fill a field (abcdef…, 123456…, one chunk repeated) is no issued
        # token or key, which are random; a password may be a person's weak choice.
        if cls.kind not in _CHOSEN_KINDS and (is_dotted_name(v) or is_words(v) or is_filler(v)):
            return None
        if not cls.strong:
            pair = _weak_auth_value(v) if cls.kind == "credential" else None
            # (the one weak "secret" name, a Vault SecretID's, also takes a UUID: how Vault
            # prints one; a name or a path under it is a secret's name)
            issued = looks_random(v) or (cls.kind == "secret" and is_uuid(v))
            if pair is False or (pair is None and not issued):
                return None
        elif cls.kind != "password" and _WS.search(v) is not None:
            return None  # tokens and keys have no spaces; a password may
        if self._allowed(v, whole):
            return None
        kind = "AWS secret access key" if cls.context == CONTEXT_AWS_SECRET else cls.kind
        return Detection(kind, self._fp(v), reason)

    def _literal(
        self,
        name: str,
        value: str,
        cls: NameClass | None,
        reason: str,
        *,
        generic: bool,
        whole: str = "",
        seen: Seen | None = None,
        depth: int = 0,
    ) -> Detection | None:
        """One literal (an env value, a flag's value, a bare argument) under ``name``;
        ``seen``: what the keyword automaton found in it, when the caller already looked;
        ``depth``: how many values it lies inside (configuration in a value is read for its
        keys, and their values again, up to :data:`_MAX_DEPTH`)."""
        if len(value) >= _MIN_FORMAT_LEN:
            seen = keywords(value) if seen is None else seen
            det = self._formats(name, value, seen, whole)
            if det is not None:
                return det
            if depth < _MAX_DEPTH and (
                (
                    (self._extra or TAG_CRED in seen.tags or TAG_HEADER in seen.tags)
                    and _EMBEDDED.search(value) is not None
                )
                or TAG_COMMAND in seen.tags
            ):
                det = self._embedded(value, seen, depth + 1)
                if det is not None:
                    return det
        if cls is not None:
            return self._named(cls, value, reason, whole)
        # A prefix-less random blob: tokens with a vendor prefix and separators are the
        # table's to judge (a lookalike that its rule refused is not reported by entropy).
        if (
            generic
            and _SEPARATOR.search(value) is None
            and looks_random(value, strict=True)
            and not lookalike(value)
            and not is_filler(value)
            and not self._allowed(value, whole)
        ):
            return Detection(KIND_HIGH_ENTROPY, self._fp(value), REASON_ENTROPY)
        return None

    def _pair_list(self, args: Sequence[str], i: int) -> tuple[bool, Detection | None] | None:
        """``args[i]`` as a flag's list of pairs (glued, ``--set=a=1,b=2``, or the argument
        after the flag), judged by :meth:`_pairs`; ``None`` when it is none (a file flag's
        pairs name files: nothing to judge)."""
        arg = args[i]
        if arg.startswith("-"):
            flag, eq, argument = arg.lstrip("-").partition("=")
            if not eq or "=" not in argument or _FLAG_NAME.fullmatch(flag) is None:
                return None  # (not a PEM block's "-----BEGIN …")
        elif i and args[i - 1].startswith("-") and _PAIR.match(arg) is not None:
            flag, argument = args[i - 1].lstrip("-").partition("=")[0], arg
        else:
            return None
        if flag in _FILE_FLAGS:
            return True, None
        is_list, det = self._pairs(argument)
        return (is_list, det) if is_list else None

    def _positional(self, args: Sequence[str]) -> tuple[int, Detection] | None:
        """The password that a program of :data:`_SUBCOMMANDS` (among the first arguments,
        after ``sudo`` …) takes as a positional argument, judged under its name."""
        n = _program_at(args)
        if n is None or args[n].rpartition("/")[2].lower() not in _SUBCOMMANDS:
            return None
        for at, name, cut in _positional_passwords(args[n:], self._classify):
            cls = self._classify(name)
            det = self._literal(name, args[n + at][cut:], cls, REASON_FLAG, generic=False)
            if cls is not None and det is not None:
                return n + at, det
        return None

    def _pairs(self, argument: str) -> tuple[bool, Detection | None]:
        """Whether a flag's argument is a list of ``key=value`` pairs holding a credential-named
        key (more than one pair, the first at the start: one pair is read as an assignment),
        and the first credential among them."""
        first = _PAIR.match(argument)
        pairs = list(_flag_pairs(argument))
        if first is None or len(pairs) < 2:
            return False, None  # one pair, or a value with "=" in it (a URL's query, base64)
        named = False
        for key, value, _at in pairs:
            cls = self._classify(key)
            if cls is not None:
                named = True
                det = self._literal(key, value, cls, REASON_FLAG, generic=False)
                if det is not None:
                    return True, det
        return named, None  # (no credential-named key: the argument is judged as usual)

    def _embedded(self, value: str, seen: Seen, depth: int) -> Detection | None:
        """A value that is itself configuration (``password=…``, ``{"token": …}``, a header),
        ``depth`` values deep."""
        found = _Found()
        self._scan_headers(value, found)
        if self._extra or TAG_CRED in seen.tags:
            self._scan_kv(value, found, depth)
            p = self._patterns
            self._script_values(p.script_flag, value, found, REASON_FLAG, depth)
            self._script_values(p.script_assign, value, found, REASON_ENV, depth)
        self._scan_commands(value, found, depth)
        return found.detections[0] if found.detections else None

    # -- public API -----------------------------------------------------------------------

    def check_value(self, value: str) -> Detection | None:
        """Provider formats, private keys and credentialed URLs only (no name to go by)."""
        if len(value) < _MIN_FORMAT_LEN:
            return None
        return self._first(iter_hits(value), value)

    def could_be_credential(self, fragment: str) -> bool:
        """Whether a fragment that a message would quote (a URI's host or path segment) is, or
        may be, a credential: a provider format, or a value that looks machine-generated. Such
        fragments are left out of messages."""
        return looks_random(fragment) or self.check_value(fragment) is not None

    def check_env(self, name: str, value: str) -> Detection | None:
        """A literal env var: provider formats under any name, or a credential name + literal."""
        found = self.check_envs(((0, name, value),)) if len(value) >= MIN_SECRET_LEN else None
        return found[0][1] if found else None

    def check_envs(self, entries: tuple[tuple[int, str, str], ...]) -> list[tuple[int, Detection]]:
        """``check_env`` of a container's literal env vars, ``(index, name, value)`` entries;
        each detection with its entry's index. The values share one walk of the keyword
        automaton, and a list found clean is remembered whole."""
        if entries in self._clean_envs:
            return []
        seens = iter(keywords_many([e[2] for e in entries if len(e[2]) >= _MIN_FORMAT_LEN]))
        names = self._names
        out: list[tuple[int, Detection]] = []
        short = True  # every value short enough for the list to be remembered
        # every env entry of every request passes here: module names read once, _plain inline
        least, formats, encoded, longest = (
            MIN_SECRET_LEN,
            _MIN_FORMAT_LEN,
            _MIN_ENCODED_LEN,
            _CLEAN_MAX_LEN,
        )
        nothing, blob = NOTHING, _B64_BLOB.match
        # with extra credential names, any value may hold one assigned (zork=…): none is skipped
        skip = not self._extra
        for i, name, value in entries:
            n = len(value)
            if n < least:
                continue
            if n > longest:
                short = False
            seen = next(seens) if n >= formats else None
            cls, ctx = names.get(name) or self._name(name)
            if (
                skip
                and cls is None
                and (not ctx or n < context_floor(ctx))
                and (seen is None or (seen is nothing and (n < encoded or blob(value) is None)))
            ):
                continue  # the ordinary value: no keyword, no name to go by, not a blob
            det = self._literal(name, value, cls, REASON_ENV, generic=False, seen=seen)
            if det is not None:
                out.append((i, det))
        if not out and short:
            self._clean_envs.add(entries, len(entries))
        return out

    def check_args(self, args: Sequence[str]) -> list[tuple[int, Detection]]:
        """Credentials in a command line; each detection with the index of its argument.

        A credential-named flag takes its value from ``--flag=value`` or from the next argument.
        ``-pVALUE`` is a password only when the same list runs a MySQL client (elsewhere ``-p``
        is a port or a path); so are the password flags of the clients of :data:`_CLIENTS`
        (sshpass, PsExec, redis-cli, smbclient, docker login …) in their lists, and OpenSSL's
        ``pass:…`` after ``-passin``/``-passout``. Arguments containing whitespace are
        scripts (``sh -c``).
        """
        line = tuple(args)
        if line in self._clean_args:
            return []
        out = self._check_args(line)
        if not out and sum(map(len, line)) <= _CLEAN_MAX_LEN:
            _remember(self._clean_args, line)
        return out

    def _check_args(self, args: tuple[str, ...]) -> list[tuple[int, Detection]]:
        out: list[tuple[int, Detection]] = []
        mysql = any(_MYSQL.search(a) is not None for a in args if "mysql" in a)
        client, where = _client_of(args)
        skip = -1
        count = len(args)
        det: Detection | None
        positional = self._positional(args)
        if positional is not None:
            out.append(positional)
        for i, arg in enumerate(args):
            if i == skip or (positional is not None and i == positional[0]):
                continue
            if client is not None and i in where:
                # sshpass -p PW, PsExec -u USER -p PW, redis-cli -a PW, smbclient -U user%PW:
                # the first such flag of the client
                given = _client_password(client, args, i)
                if given is not None:
                    at, value = given
                    client = None
                    det = self._named(_PASSWORD_CLASS, value, REASON_FLAG, args[at])
                    if det is not None:
                        out.append((at, det))
                    skip = at
                    continue
            if arg in _OPENSSL_FLAGS and i + 1 < count and args[i + 1].startswith("pass:"):
                det = self._named(_PASSWORD_CLASS, args[i + 1][5:], REASON_FLAG, args[i + 1])
                if det is not None:
                    out.append((i + 1, det))
                skip = i + 1
                continue
            if len(arg) < MIN_SECRET_LEN:
                continue
            listed = self._pair_list(args, i)
            if listed is not None:  # helm's --set a=1,auth.password=…, ansible's -e 'k=v k=v'
                if listed[1] is not None:
                    out.append((i, listed[1]))
                continue
            if _WS.search(arg) is not None or '"' in arg or "'" in arg:
                out.extend((i, d) for d in self._scan_script(arg))
                continue
            if arg[0] == "-":
                flag, eq, val = arg.lstrip("-").partition("=")
                if eq and arg[1] == "D":
                    flag = flag[1:]  # a JVM system property: -Dsonar.login=…
                cls = self._classify(flag) if flag else None
                if eq:
                    # a random-looking value is a credential by its looks alone, unless the
                    # flag says it is an identifier or a digest (--run-id, --dataset-hash)
                    generic = not names_identifier(flag)
                    det = self._literal(flag, val, cls, REASON_FLAG, generic=generic, whole=arg)
                elif cls is not None and i + 1 < count and not args[i + 1].startswith("-"):
                    det = self._literal(flag, args[i + 1], cls, REASON_FLAG, generic=False)
                    if det is not None:
                        out.append((i + 1, det))
                        skip = i + 1
                    continue
                elif mysql and arg.startswith("-p") and not arg.startswith("--"):
                    det = self._named(_PASSWORD_CLASS, arg[2:], REASON_FLAG, arg)
                else:
                    det = self._literal("", arg, None, REASON_FLAG, generic=False)
            else:
                m = _ENV_ASSIGN.match(arg)
                if m is not None:
                    # formats first, over the whole argument: one may span the "="
                    # (``AccountKey=…``, base64 padding, ``…=`` glued to a suffix), and a
                    # provider's format names the credential better than the key's name does
                    det = None
                    if len(arg) >= _MIN_FORMAT_LEN:
                        det = self._formats("", arg, keywords(arg))
                    if det is None:
                        key = m.group(1)
                        det = self._literal(
                            key, m.group(2), self._classify(key), REASON_ENV,
                            generic=not names_identifier(key), whole=arg,
                        )  # fmt: skip
                else:
                    det = self._literal("", arg, None, REASON_FLAG, generic=True)
            if det is not None:
                out.append((i, det))
        return out

    def check_text(self, key: str, text: str) -> list[Detection]:
        """A ConfigMap data entry: a single value under ``key``, or a whole file.

        Files (.env, properties, YAML, JSON, INI, netrc) are read line by line for
        credential-named keys, and searched anywhere for provider formats and private keys.
        """
        stripped = text.strip()
        if len(stripped) < MIN_SECRET_LEN:
            return []
        known = self._clean_texts  # entries and annotations recur across objects and requests
        if (key, text) in known:
            return []
        if key.lower().endswith("pgpass"):  # PostgreSQL's password file, one entry a line
            found = _Found()
            for m in _PGPASS_LINE.finditer(text):
                self._named_at(found, "password", m.group("val"), m.start("val"), REASON_KEY)
            return found.detections
        if key.lower().endswith("userlist.txt"):  # PgBouncer's: "user" "password" a line
            found = _Found()
            for m in _USERLIST_LINE.finditer(text):
                value = m.group("val")
                if _SQL_HASH.match(value) is None:
                    self._named_at(found, "password", value, m.start("val"), REASON_KEY)
            return found.detections
        if "\n" not in stripped:
            det = self._literal(key, stripped, self._classify(key), REASON_KEY, generic=False)
            if det is None:
                known.add((key, text), len(text))
            return [det] if det is not None else []
        found = _Found()
        self._scan_formats(text, found)
        self._scan_headers(text, found)
        self._scan_kv(text, found)
        self._scan_commands(text, found)  # an init script's mysql -p, curl -u
        if not found.detections:
            known.add((key, text), len(text))
        return found.detections

    # -- text and script scanners ------------------------------------------------------------

    def _scan_formats(self, text: str, found: _Found) -> None:
        for hit in iter_hits(text):
            if not self._allowed(hit.secret):
                found.add(hit.start, hit.end, self._detection(hit))
        if len(text) >= _MIN_ENCODED_LEN:
            for hit in decoded_hits(text):
                if not self._allowed(hit.secret):
                    found.add(hit.start, hit.end, self._detection(hit))

    def _scan_headers(self, text: str, found: _Found) -> None:
        if "uthorization" in text or "UTHORIZATION" in text:
            for m in _AUTH_HEADER.finditer(text):
                val = m.group("val")
                scheme = m.group("scheme").lower()
                if is_placeholder(val) or self._allowed(val) or not _header_value_ok(scheme, val):
                    continue
                if scheme != "basic" and lookalike(val):
                    continue  # a JWT's header alone, a provider format that its rule refused
                kind = _HEADER_KIND.get(scheme, "authorization token")
                found.add(
                    m.start("val"), m.end("val"), Detection(kind, self._fp(val), REASON_HEADER)
                )
            self._scan_bare(_AUTH_BARE, text, found, "authorization token")
        if "Bearer" in text:
            self._scan_bare(_BEARER, text, found, "bearer token")

    def _scan_bare(self, pattern: re.Pattern[str], text: str, found: _Found, kind: str) -> None:
        """A token with no scheme (``Authorization: <token>``) or no header name (``Bearer
        <token>``): reported when it looks like a token."""
        for m in pattern.finditer(text):
            val = m.group("val")
            start, end = m.span("val")
            if (
                _bare_token(val)
                and not lookalike(val)
                and not self._allowed(val)
                and not found.overlaps(start, end)
            ):
                found.add(start, end, Detection(kind, self._fp(val), REASON_HEADER))

    def _named_at(  # noqa: PLR0917
        self, found: _Found, key: str, value: str, start: int, reason: str, depth: int = 0
    ) -> None:
        cls = self._classify(key)
        if cls is None or found.overlaps(start, start + len(value)):
            return
        det = self._literal(key, value, cls, reason, generic=False, depth=depth)
        found.add(start, start + len(value), det)

    def _scan_kv(self, text: str, found: _Found, depth: int = 0) -> None:
        p = self._patterns
        # kv_line tried only on the lines holding a credential word: one scan of the text for
        # the words instead of the key's lookahead at every line start (a config file of
        # thousands of lines holds a handful of such keys)
        low = text.lower()
        if len(low) == len(text):  # (a few characters lower to two: then offsets would differ)
            hits = list(p.keyword_lower.finditer(low))
        else:
            hits = list(p.keyword.finditer(text))
        if not hits:
            return  # no key in the text can be credential-named (JSON and .netrc ones neither)
        done = -1  # end of the last line whose first statement held a credential-named key
        line_end = -1  # end of the line of the previous hit
        floor = 0  # where the previous hit of the same line stood
        for k in hits:
            if k.start() < done:
                continue
            if k.start() > line_end:  # the first hit of a line: the line as one statement
                start = text.rfind("\n", 0, k.start()) + 1
                end = text.find("\n", k.end())
                line_end = end = len(text) if end < 0 else end
                floor = start
                m = p.kv_line.match(text, start, end)
                if m is not None and self._classify(m.group("key")) is not None:
                    self._named_line(found, m, depth)
                    done = end
                    continue
            # statements run together on one line (``$user = "x"; $password = "y";``): the
            # one the keyword is in, up to the next ";" (each statement read once: linear)
            semi = text.rfind(";", floor, k.start())
            floor = k.end()
            if semi >= 0:
                stop = text.find(";", k.end(), line_end)
                m = p.kv_line.match(text[semi + 1 : line_end if stop < 0 else stop])
                if m is not None:
                    self._named_line(found, m, depth, semi + 1)
        # the other shapes of a key and its value, in this order (the first of overlapping
        # findings is kept), each tried only where one of its marks is; a line's value is
        # cleaned as kv_line's is
        for marks, pattern, line in (
            (('"',), p.json_pair, False),
            (('\\"',), p.json_escaped_pair, False),
            (("</",), p.xml_element, False),
            (("</",), p.xml_property, False),
            (('"value"',), p.name_value_json, False),
            (("value",), p.name_value_yaml, True),
            (("{",), p.inline_pair, False),
            (("<add",), p.xml_add, False),
            (("<Value>", "<value>"), p.xml_value, False),
            (("(", "["), p.string_pair, False),
            (("variable",), p.hcl_variable, False),
        ):
            if not any(mark in text for mark in marks):
                continue
            if line:
                for m in pattern.finditer(text):
                    self._named_line(found, m, depth)
            else:
                self._named_pairs(found, pattern, text, depth)
        if "<input" in low:
            self._password_inputs(text, found, depth)
        if "machine" in text:
            for m in _NETRC.finditer(text):
                at = m.start("val")
                self._named_at(found, "password", m.group("val"), at, REASON_KEY, depth)

    def _password_inputs(self, text: str, found: _Found, depth: int) -> None:
        """The value an HTML form's password field is filled with (``<input type="password"
        value="…">``, its attributes in any order). Each tag is read once, up to its ``>`` (or,
        never closed, the next tag); a value built in code (``' + pw + '``, ``@Model.Password``)
        is not a literal."""
        for tag in _INPUT_TAG.finditer(text):
            at = tag.start()
            end = text.find(">", at, at + _MAX_TAG)
            nxt = text.find("<", at + 1, at + _MAX_TAG if end < 0 else end)
            if nxt >= 0:
                end = nxt
            elif end < 0:
                end = min(len(text), at + _MAX_TAG)
            if _PASSWORD_TYPE.search(text, at, end) is None:
                continue
            m = _VALUE_ATTR.search(text, at, end)
            if m is None:
                continue
            group = _group_of(m, ("d", "s", "u"))
            val = m.group(group)
            if group == "u" and val.endswith("/") and text.startswith(">", m.end()):
                val = val[:-1]  # <input … value=abc/>: the tag's own slash
            if _BUILT_VALUE.search(val) is None:
                self._named_at(found, "password", val, m.start(group), REASON_KEY, depth)

    def _named_line(self, found: _Found, m: re.Match[str], depth: int, at: int = 0) -> None:
        """A ``key: value`` line's match: its literal (unquoted code is no literal); ``at``: the
        offset of the matched string in the text."""
        value, quoted = _clean_text_value(m.group("val"))
        if "member" in m.re.groupindex and m.group("member") and not quoted:
            return  # code assigning a member: a literal is quoted (md5($pw), $pw . '', buf)
        if quoted or _KV_CODE.search(value) is None:
            self._named_at(found, m.group("key"), value, m.start("val") + at, REASON_KEY, depth)

    def _named_pairs(self, found: _Found, pattern: re.Pattern[str], text: str, depth: int) -> None:
        """Every key and value ``pattern`` finds: group ``val``, or ``bare`` (an unquoted
        value) where the pattern has one and ``val`` did not match. (Only an XML property's
        value may have blanks around it: they are dropped.)"""
        bare = "bare" in pattern.groupindex
        for m in pattern.finditer(text):
            group = "bare" if bare and m.group("val") is None else "val"
            val = m.group(group)
            if pattern is self._patterns.xml_property:
                val = val.strip()
            elif pattern is self._patterns.json_escaped_pair and _SPLICED.search(val) is not None:
                continue  # '{\"password\": \"' + pw + '\"}', a shell's $PW or `cat …` in it
            self._named_at(found, m.group("key"), val, m.start(group), REASON_KEY, depth)

    def _script_values(
        self, pattern: re.Pattern[str], text: str, found: _Found, reason: str, depth: int = 0
    ) -> None:
        scheme = text.find("://")
        for m in pattern.finditer(text):
            key = m.group("key")
            bare = m.group("bare")
            if bare is not None:
                if _CODEISH.search(bare) is not None or (
                    text.startswith("(", m.end("bare")) and _CALLEE.match(bare) is not None
                ):
                    continue  # (a call cut at its parenthesis: @Microsoft.KeyVault(…))
                # `login(token=hf_token)`: lower-case names with identifier values are code
                # (a flag's value, `-Ddb.password=hunter2`, is a literal, and so is a URL query
                # parameter's, `?api_key=…` or `&token=…`).
                if (
                    reason != REASON_FLAG
                    and _IDENTIFIER.match(bare) is not None
                    and not key.isupper()
                    and not _query_parameter(text, m.start("key"), scheme)
                ):
                    continue
                self._named_at(found, key, bare, m.start("bare"), reason, depth)
            else:
                group = "dq" if m.group("dq") is not None else "sq"
                self._named_at(found, key, m.group(group), m.start(group), reason, depth)

    def _scan_script(self, text: str) -> list[Detection]:
        found = _Found()
        self._scan_formats(text, found)
        self._scan_headers(text, found)
        p = self._patterns
        self._script_values(p.script_flag, text, found, REASON_FLAG)
        self._script_values(p.script_assign, text, found, REASON_ENV)
        self._scan_commands(text, found)
        self._scan_kv(text, found)
        return found.detections

    def _scan_commands(self, text: str, found: _Found, depth: int = 0) -> None:
        """What clients take on their command lines: curl's ``-H "Name: value"`` under a
        credential-like name and ``-u user:password``, the passwords of ``mysql -pPASSWORD``,
        sshpass, PsExec, redis-cli, smbclient, registry logins … (:data:`_CLIENT_PASSWORDS`)
        and OpenSSL's ``pass:…``; a network device's secrets; SQL that sets a password; and
        the password that a client's connect call takes as a literal argument."""
        if "(" in text and _CALL_MARK.search(text) is not None:
            for pattern in _CALL_CREDENTIALS:
                for m in pattern.finditer(text):
                    at = m.start("val")
                    self._named_at(found, "password", m.group("val"), at, REASON_KEY, depth)
        if "curl" in text:
            if "-H" in text or "--header" in text:
                for m in _CURL_HEADER.finditer(text):
                    key = m.group("key")
                    if key.lower() not in ("authorization", "proxy-authorization"):
                        at = m.start("val")
                        self._named_at(found, key, m.group("val"), at, REASON_HEADER, depth)
            for m in _command_flags(text, _CURL, _CURL_U, first_only=False):
                password = m.group("val")
                if password:
                    self._named_at(found, "password", password, m.start("val"), REASON_FLAG, depth)
                else:  # `-u KEY:`: an API key as the user name, no password (Stripe, Mailgun)
                    user = m.group("user")
                    if looks_random(user, strict=True) and not is_filler(user):
                        self._named_at(found, "api_key", user, m.start("user"), REASON_FLAG, depth)
        low = text.lower()
        if any(w in text for w in DEVICE_WORDS):
            for m in _DEVICE_SECRET.finditer(text):
                group = "val" if m.group("val") is not None else "community"
                value = m.group(group)
                if value.lower() not in _DEFAULT_COMMUNITIES:
                    at = m.start(group)
                    self._named_at(found, "password", value, at, REASON_KEY, depth)
        for names, command, flag in _CLIENT_PASSWORDS:
            if any(n in low for n in names):
                for m in _command_flags(text, command, flag, first_only=True):
                    group = "val" if m.group("val") is not None else "qval"
                    value, at = m.group(group), m.start(group)
                    if _NOT_A_PASSWORD.fullmatch(value) is None:
                        self._named_at(found, "password", value, at, REASON_FLAG, depth)
        if "identified" in low or "password" in low:
            self._scan_sql(text, found, depth)
        if "=" in text and "-" in text:
            self._scan_flag_pairs(text, found, depth)
        if "key" in low and ("unseal" in low or "recovery" in low):
            for m in _VAULT_KEY_LINE.finditer(text):
                if not is_filler(m.group("val")):
                    at = m.start("val")
                    self._named_at(found, "unseal_key", m.group("val"), at, REASON_KEY, depth)
        if any(w in low for w in _DIRECTIVE_WORDS):  # (no credential word in bindpw, rootpw)
            for m in _DIRECTIVE_PASSWORD.finditer(text):
                at = m.start("val")
                self._named_at(found, "password", m.group("val"), at, REASON_KEY, depth)
        if "pass" in low and (" is " in low or " was " in low):
            for m in _STATED_PASSWORD.finditer(text):
                if _stated_password(m.group("val")):
                    at = m.start("val")
                    self._named_at(found, "password", m.group("val"), at, REASON_SENTENCE, depth)
        if ("|" in text or "<<<" in text) and (
            "stdin" in low or "chpasswd" in low or "htpasswd" in low
        ):
            self._scan_piped(text, found, depth)
        if (
            "htpasswd" in low
            or "config" in low
            or " set " in low
            or "vault" in low
            or "user add" in low
            or "mysqladmin" in low
        ):
            self._scan_positional(text, found, depth)
        if "pass:" in text:
            for m in _OPENSSL_PASS.finditer(text):
                group = _group_of(m, ("val", "dq", "sq"))
                at = m.start(group)
                self._named_at(found, "password", m.group(group), at, REASON_FLAG, depth)

    def _scan_sql(self, text: str, found: _Found, depth: int) -> None:
        """The passwords SQL statements set (:data:`_SQL_PASSWORDS`)."""
        for pattern in _SQL_PASSWORDS:
            # (a statement each: an init script sets a few passwords, a text of thousands of
            # "create role password '" is hostile, and each value judged costs)
            for m in itertools.islice(pattern.finditer(text), _MAX_STATEMENTS):
                group = _group_of(m, ("sq", "dq", "bare"))
                value = m.group(group)
                if (
                    _SQL_HASH.match(value) is None
                    and _SPLICED.search(value) is None  # "… BY '" + pw + "'": code
                    and not (m.groupdict().get("plugin") or "").lower().endswith("_hash")
                ):
                    self._named_at(found, "password", value, m.start(group), REASON_KEY, depth)

    def _scan_flag_pairs(self, text: str, found: _Found, depth: int) -> None:
        """The credential-named pairs given to a flag (helm's --set, kubectl's
        --from-literal …): :data:`_FLAG_ARGUMENT`, :func:`_flag_pairs`."""
        for m in _FLAG_ARGUMENT.finditer(text):
            group = _group_of(m, ("dq", "sq", "bare"))
            argument = m.group(group)
            if "=" in argument and m.group("flag") not in _FILE_FLAGS:
                base = m.start(group)
                for key, value, at in _flag_pairs(argument):
                    if text[base + at + len(value) : base + at + len(value) + 1] != "(":
                        # (not a call cut at its parenthesis: @Microsoft.KeyVault(…))
                        self._named_at(found, key, value, base + at, REASON_FLAG, depth)

    def _scan_piped(self, text: str, found: _Found, depth: int) -> None:
        """A literal piped or fed on a here-string into what reads a password."""
        for m in itertools.chain(_PIPED_PASSWORD.finditer(text), _here_strings(text)):
            group = _group_of(m, ("dq", "sq", "bare"))
            raw, at = m.group(group), m.start(group)
            users = m.groupdict().get("users") is not None
            for line in raw.split("\\n"):  # echo -e's and printf's "\n": lines
                value, skip = line, 0
                if users:  # user:password
                    user, colon, value = line.partition(":")
                    skip = len(user) + len(colon)
                    value = value if colon else ""
                if value:
                    self._named_at(found, "password", value, at + skip, REASON_FLAG, depth)
                at += len(line) + 2

    def _scan_positional(self, text: str, found: _Found, depth: int) -> None:
        """The passwords :data:`_SUBCOMMANDS`' programs take as an argument of their own."""
        read = -1  # where the last command read ended: a start inside it is no command
        starts = (m for m in _POSITIONAL_START.finditer(text) if m.start("program") > read)
        for m in itertools.islice(starts, _MAX_STATEMENTS):
            words, read = _command_words(text, m.start("program"))
            for index, name, cut in _positional_passwords([w for w, _ in words], self._classify):
                value, at = words[index]
                self._named_at(found, name, value[cut:], at + cut, REASON_FLAG, depth)


# Programs given a password as a positional argument, after their subcommand: MinIO's client
# (mc alias set NAME URL ACCESS_KEY SECRET_KEY; the older mc config host add; mc admin user add
# ALIAS USER SECRET_KEY), vault's data (write|kv put|kv patch PATH key=value), htpasswd in batch
# mode (-b: [FILE] USER PASSWORD; -n: no file), etcd's etcdctl user add NAME:PASSWORD (a name
# alone prompts), mysqladmin's password NEW (and old-password NEW), and configuration setters
# (aws configure set KEY VALUE, npm|yarn|pnpm config set KEY VALUE or KEY=VALUE, git config
# [options] KEY VALUE: a value only when the key is credential-named). Options with a value of
# their own are skipped with it (htpasswd -C 10, aws --profile p, git --file f).
_SUBCOMMANDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mc": (("alias", "set"), ("config", "host", "add"), ("admin", "user", "add")),
    "mcli": (("alias", "set"), ("config", "host", "add"), ("admin", "user", "add")),
    "htpasswd": ((),),
    "aws": (("configure", "set"),),
    "npm": (("config", "set"), ("set",)),
    "yarn": (("config", "set"),),
    "pnpm": (("config", "set"), ("set",)),
    "git": (("config", "set"), ("config",)),  # git 2.46's git config set too
    "vault": (("operator", "unseal"), ("write",), ("kv", "put"), ("kv", "patch")),
    "etcdctl": (("user", "add"),),
    "mysqladmin": (("password",), ("old-password",)),
}
# what mysqladmin may be asked to do after its password command (anything else is prose)
_MYSQLADMIN_COMMANDS = frozenset({
    "create", "debug", "drop", "extended-status", "flush-hosts", "flush-logs",
    "flush-privileges", "flush-status", "flush-tables", "flush-threads", "kill", "ping",
    "processlist", "reload", "refresh", "shutdown", "start-replica", "start-slave", "status",
    "stop-replica", "stop-slave", "variables", "version",
})  # fmt: skip
# each program's options that take a value (skipped with it; vault's -f forces, git's -f names a
# file); htpasswd's -C and -r may also end a cluster of its flags (-nbBC 10)
_MC_OPTIONS = frozenset({"--api", "--path", "--config-dir"})
_NPM_OPTIONS = frozenset({"--location", "-L", "--userconfig", "--registry", "--globalconfig"})
_OPTION_VALUES: dict[str, frozenset[str]] = {
    "mc": _MC_OPTIONS,
    "mcli": _MC_OPTIONS,
    "htpasswd": frozenset({"-C", "-r"}),
    "aws": frozenset({"--profile", "--region", "--output", "--endpoint-url"}),
    "npm": _NPM_OPTIONS,
    "yarn": _NPM_OPTIONS,
    "pnpm": _NPM_OPTIONS,
    "git": frozenset({"--file", "-f", "--blob", "--type"}),
    "vault": frozenset({
        "-address", "-namespace", "-ca-cert", "-ca-path", "-client-cert", "-client-key",
        "-tls-server-name",
    }),
    "etcdctl": frozenset({
        "--endpoints", "--user", "--password", "--cacert", "--cert", "--key", "--dial-timeout",
        "--command-timeout", "--keepalive-time", "--keepalive-timeout", "--discovery-srv",
        "-w", "--write-out",
    }),
    "mysqladmin": frozenset({
        "-u", "--user", "-h", "--host", "-P", "--port", "-S", "--socket", "-c", "--count",
        "-i", "--sleep", "-w", "--wait", "--protocol", "--defaults-file",
    }),
}  # fmt: skip
_POSITIONAL_START = _Lazy(
    _AT_COMMAND
    + r"(?P<program>mcli|mc|htpasswd|aws|npm|yarn|pnpm|git|vault|etcdctl|mysqladmin)(?=[ \t])"
)
# a part of a shell word: a template ({{ … }}), quoted, or bare up to a blank, an operator, a
# quote or a line continued with "\\"
_SHELL_PART = _Lazy(
    r"""\{\{[^\n]*?\}\}|"(?P<dq>[^"\n]*+)"|'(?P<sq>[^'\n]*+)'"""
    r"""|(?:[^\s"'`;|&<>()\\{]|\\(?!\r?\n|\Z)|\{(?!\{))++"""
)
_BLANKS = _Lazy(r"(?:[ \t]++|\\\r?\n)++")  # blanks, and a line continued with "\"


def _positional_passwords(
    args: Sequence[str], named: Callable[[str], NameClass | None]
) -> list[tuple[int, str, int]]:
    """(index, name, cut) of the password that one of :data:`_SUBCOMMANDS`' programs takes as
    a positional argument in ``args`` (``name``: a key to classify; for a setter, its key;
    ``cut``: where the value starts in that argument, after a ``key=``); for vault's data,
    every credential-named ``key=value`` pair (``named`` classifies the keys), to be judged
    in turn (password=$DB_PASSWORD api_key=…)."""
    program = args[0].rpartition("/")[2].lower() if args else ""
    chains = _SUBCOMMANDS.get(program)
    if chains is None:
        return []
    flags = ""
    rest: list[int] = []
    options = _OPTION_VALUES.get(program, frozenset())
    i, n = 1, len(args)
    while i < n:
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            short = not arg.startswith("--")
            flags += arg.lstrip("-") if short else ""
            valued = arg in options or (
                program == "htpasswd" and short and arg[-1] in "Cr"  # -nbBC 10
            )
            i += 2 if valued else 1
            continue
        rest.append(i)
        i += 1
    words = [args[j] for j in rest]
    for chain in chains:
        if tuple(words[: len(chain)]) != chain:
            continue
        # each takes a fixed number of arguments: more words are prose ("git config
        # user.password expects plaintext, …"), fewer a prompt
        after = rest[len(chain) :]
        if chain == ("admin", "user", "add"):  # mc admin user add ALIAS USER SECRET
            return [(after[2], "secret_key", 0)] if len(after) == 3 else []
        if program in ("mc", "mcli"):
            return [(after[3], "secret_key", 0)] if len(after) == 4 else []
        if chain == ("operator", "unseal"):  # vault operator unseal KEY (alone, it prompts)
            key = len(after) == 1 and _UNSEAL_SHARE.fullmatch(args[after[0]]) is not None
            return [(after[0], "unseal_key", 0)] if key else []
        if program == "vault":  # vault write|kv put|kv patch PATH key=value …
            approle = bool(after) and "approle" in args[after[0]].lower()
            return _vault_pairs(args, after[1:], named, approle=approle)
        if program == "etcdctl":  # etcdctl user add NAME[:PASSWORD]
            colon = args[after[0]].find(":") if len(after) == 1 else -1
            return [(after[0], "password", colon + 1)] if colon > 0 else []
        if program == "mysqladmin":  # mysqladmin password NEW [more of its commands]
            more = [args[j].lower() for j in after[1:]]
            if not after or not _MYSQLADMIN_COMMANDS.issuperset(more):
                return []  # prose ("mysqladmin password failed, retrying") or a prompt
            return [(after[0], "password", 0)]
        if program == "htpasswd":
            if "b" not in flags:
                return []  # it prompts
            at = 1 if "n" in flags else 2
            return [(after[at], "password", 0)] if len(after) == at + 1 else []
        if len(after) != 2:
            return []  # npm config set key=value: read as a pair
        return [(after[1], args[after[0]], 0)]
    return []


def _vault_pairs(
    args: Sequence[str],
    pairs: list[int],
    named: Callable[[str], NameClass | None],
    *,
    approle: bool = False,
) -> list[tuple[int, str, int]]:
    """The credential-named ``key=value`` pairs among ``args[pairs]`` (vault write's data; on
    an AppRole path, ``secret_id`` too: the role's SecretID, judged as a secret); a value read
    from a file (``key=@file``) or from stdin (``key=-``) is none."""
    found: list[tuple[int, str, int]] = []
    for j in pairs:
        m = _PAIR.match(args[j])
        if m is None:
            continue
        value = args[j][m.end() :]
        if value in ("", "-") or value.startswith("@"):
            continue
        key = m.group("key")
        if approle and key.lower() == "secret_id":
            found.append((j, "approle_secret_id", m.end()))
        elif named(key):
            found.append((j, key, m.end()))
    return found


def _command_words(text: str, start: int) -> tuple[list[tuple[str, int]], int]:
    """The words of the command that starts at ``text[start]`` (up to ``;``, ``|``, ``&``, a
    comment or an unescaped line end), each with where its text starts, quotes taken off (a
    word may be parts side by side: ``"http://${HOST}":9000``; a template ``{{ … }}`` is one
    part, kept as written); and where the reading stopped."""
    words: list[tuple[str, int]] = []
    at = start
    while len(words) < _MAX_WORDS:
        blank = _BLANKS.match(text, at)
        if blank is not None:
            at = blank.end()
        if text.startswith("#", at):
            break  # a comment
        parts: list[str] = []
        first = -1
        while (m := _SHELL_PART.match(text, at)) is not None and m.end() > at:
            group = next((g for g in ("dq", "sq") if m.group(g) is not None), None)
            parts.append(m.group(group) if group else m.group())
            if first < 0:
                first = m.start(group) if group else m.start()
            at = m.end()
        if not parts:  # the command's end, or what a word cannot be
            break
        word = "".join(parts)
        if word.isdigit() and text.startswith((">", "<"), at):
            break  # a redirection's descriptor: 2>/dev/null ends the arguments
        words.append((word, first))
    return words, at


_MAX_WORDS = 64  # a command's words read at most (its password comes among the first)


def _client_of(args: tuple[str, ...]) -> tuple[_Client | None, range]:
    """The client an argument list runs (its program first, or after launchers: ``sudo -E -u
    ops``, ``exec``, ``env VAR=…`` …) and where its password flag may stand: sshpass's own
    options come before the command it runs (``sshpass -e ssh -p 2222``: ssh's port). A client's
    name elsewhere is an argument (``docker run --name mongo -p 27017:27017``)."""
    n = _program_at(args)
    if n is None:
        return None, range(0)
    name = args[n].rpartition("/")[2].rpartition("\\")[2].lower()
    client = _CLIENTS.get(name.removesuffix(".exe").removesuffix(".bat"))
    if client is None:
        return None, range(0)
    if client.command:
        for command in client.command:
            after = n + 1 + len(command)
            if tuple(args[n + 1 : after]) == command:
                return client, range(after, len(args))
        return None, range(0)  # docker run -p 8080:80: a port
    if not client.own_options:
        return client, range(n + 1, len(args))
    at = n + 1
    while at < len(args) and args[at] in ("-v", "-P"):
        at += 2 if args[at] == "-P" else 1  # -P takes the prompt to wait for
    return client, range(at, at + 1)


# Programs that run the command after them, and their options that take a value (sudo -u ops)
_LAUNCHERS = frozenset({"sudo", "doas", "exec", "env", "command", "time", "nice", "nohup", "--"})
_LAUNCHER_VALUES = frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-n"})


def _program_at(args: Sequence[str]) -> int | None:
    """The index of the program an argument list runs: the first argument, or the first after
    launchers (``sudo -E -u ops``, ``env VAR=value``); ``None`` past the first few."""
    n = 0
    while n < min(len(args), 24):
        arg = args[n]
        base = arg.rpartition("/")[2]
        if base in _LAUNCHERS or _ENV_ASSIGN.match(arg) is not None:
            n += 1
        elif arg.startswith("-") and n and args[0].rpartition("/")[2] in _LAUNCHERS:
            n += 2 if arg in _LAUNCHER_VALUES else 1
        elif arg.rpartition("/")[2] in ("kubectl", "oc") and "--" in args[n + 1 : n + 16]:
            n = args.index("--", n + 1) + 1  # kubectl exec pod -- COMMAND
        else:
            return n
    return None


def _client_password(client: _Client, args: tuple[str, ...], i: int) -> tuple[int, str] | None:
    """(index, password) that ``args[i]`` gives as ``client``'s password flag, or ``None``."""
    arg = args[i]
    at = i
    if arg in client.flags:
        at = i + 2 if client.user_first else i + 1
        if at >= len(args) or (client.after_user and (i < 2 or args[i - 2] != "-u")):
            return None
        value = args[at]
    elif client.glued and arg.startswith(client.glued) and len(arg) > len(client.glued):
        value = arg[len(client.glued) :]
        if value.startswith("=") and any(f.startswith("--") for f in client.flags):
            value = value[1:]  # -p=PW read as its --password=PW (as in a script)
    else:
        long = next((f for f in client.flags if f[1] == "-" and arg.startswith(f + "=")), None)
        if long is None:
            return None
        value = arg[len(long) + 1 :]
    if client.separator:
        user, separated, value = value.partition(client.separator)
        if not separated:
            return None  # a user alone: the program asks for the password
        if user.lower() in _ANONYMOUS_USERS:
            return None  # anonymous FTP: the password is an e-mail address by custom
    if value.startswith("-") and at != i:
        return None  # the next option: the flag alone prompts (mongosh -p --host …)
    if _NOT_A_PASSWORD.fullmatch(value) is not None:
        return None
    return at, value


def _command_flags(
    text: str, command: re.Pattern[str] | _Lazy, flag: re.Pattern[str] | _Lazy, *, first_only: bool
) -> Iterator[re.Match[str]]:
    """The matches of ``flag`` that stand after a match of ``command`` in the same command
    (``first_only``: the first one of each command). Linear: each pattern runs once over the
    text, and each flag finds its command by bisection."""
    starts = [m.start() for m in command.finditer(text)]
    if not starts:
        return
    ends = [m.start() for m in _COMMAND_END.finditer(text)]
    used: set[int] = set()
    for m in flag.finditer(text):
        at = m.start()
        i = bisect.bisect_left(starts, at) - 1
        if i < 0:
            continue
        begin = starts[i]
        j = bisect.bisect_left(ends, at) - 1
        if j >= 0 and ends[j] > begin:
            continue  # another command began since
        if first_only:
            if begin in used:
                continue
            used.add(begin)
        yield m


def _config_line(value: str) -> bool:
    return ("=" in value or ":" in value) and _CONFIG_LINE.match(value) is not None


def _variable(value: str) -> bool:
    """The value is itself a credential-like identifier (``apiToken``, ``vapidPrivateKey``,
    ``hf_token``): the name of a variable holding the credential, written as code."""
    low = value.lower()
    if not any(w in low for w in CREDENTIAL_WORDS) or _IDENTIFIER.match(value) is None:
        return False
    cls = classify(value)  # not memoised: values are not names, they would flood the memo
    return cls is not None and cls.strong


def _unquote(v: str) -> str:
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1].strip()
    return v


# A bearer token shorter than this is a doc stub ("Bearer abcd-ef-ghij"), not a token.
_MIN_BEARER_LEN = 16


def _bare_token(value: str) -> bool:
    """A scheme-less Authorization value that is a token: letters and digits, not a
    placeholder or a value typed to fill the field."""
    return (
        "/" not in value[:1]
        and not is_reference(value)
        and not is_dotted_name(value)
        and not is_object_name(value)
        and not is_placeholder(value)
        and not is_filler(value)
        and looks_random(value)
    )


def _header_value_ok(scheme: str, value: str) -> bool:
    """Basic credentials must decode to ``user:password``; other schemes need a token's length."""
    if scheme == "basic":
        m = _decoded_user_pass(value, _BASIC_USER_PASS)
        return m is not None and not is_placeholder(m.group("p"))
    return len(value) >= _MIN_BEARER_LEN


def _weak_auth_value(value: str) -> bool | None:
    """``user:password`` or its base64 form under an AUTH-named variable.

    ``None`` when the value is neither, so the caller falls back to the randomness test.
    """
    m = _USER_PASS.match(value)
    if m is None:
        m = _decoded_user_pass(value)
    if m is None:
        return None
    return not is_placeholder(m.group("p"))


DEFAULT_DETECTORS = DetectorSet()
