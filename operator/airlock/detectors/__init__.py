"""Plaintext-credential detectors: a provider rule table, keyword + value heuristics, entropy.

The public surface is :class:`DetectorSet` (built once per policy), :data:`DEFAULT_DETECTORS`,
:class:`Detection`, :func:`fingerprint`, :class:`FingerprintKey` and :func:`redact` (the last
guard on text leaving the process). A :class:`Detection` never
holds the credential: only its kind, a fingerprint, the reason it was reported and the id of the
provider rule that matched, so it can be logged, put in a message or a report, and printed with
``repr`` without leaking anything.

Layout: ``_table`` (the shape of a provider rule), ``_providers`` (the table: over 350 formats
from the providers' documentation), ``_formats`` (structured formats: key blocks, key files, URLs,
connection strings), ``_matcher`` (one Aho-Corasick keyword pass over a string, then only the
regexes it points at; compiled once at import), ``_names`` and ``_values`` (what a name and a
value say), ``_core`` (the detector set).

Decisions worth knowing (each has a test):

- Names are evidence, not verdict. A provider-format value is a finding under any name. A
  credential-named variable is reported only with a literal that could be the credential:
  placeholders (``changeme``, ``<token>``, ``your-key-here``, ``&lt;PASSWORD&gt;``), templates and
  references (``$(VAR)``, ``${VAR}``, ``'$VAR'``, ``{{ .Values.x }}``, file paths,
  ``arn:aws:secretsmanager:...``, ``vault:...``, URLs without credentials), code, prose, booleans,
  numbers and values shorter than 6 characters are not; nor is a lookalike of a provider format
  that the format's own rule refused (a GitHub token whose checksum fails, a provider prefix with
  its separator dropped or swapped or glued to a word, a value with OpenAI's ``T3BlbkFJ`` marker
  that no OpenAI rule accepted), nor a provider's public value (``pk_live_…`` publishable keys).
  Under token and key names (issued, so random) a lower-case dotted name (a host) or letters in
  words (``SKILLS_inventory``) are names; a password or secret may be a passphrase and is kept. A
  value that is itself a credential-named identifier (``apiToken``) is code, and a value that is
  a configuration line (``HELLO="…"``) is read for its own keys. Polaris flags by name alone;
  Airlock does not, so ``AWS_SECRET_ACCESS_KEY=xxx`` passes.
- Fingerprints are keyed per installation (:class:`FingerprintKey`, HMAC-SHA256 truncated to
  32 bits; the chart's Secret, the same on every replica), so a fingerprint in a message or a
  report cannot confirm a guessed password. Without a key (``airlock scan`` without
  ``--fingerprint-key-file``) they are a plain domain-separated SHA-256, which anyone can
  recompute: fine for random tokens, guessable for weak passwords.
- Checksums are verified where the format has one (GitHub ``gh*_`` and npm tokens: CRC32);
  JWTs must have JSON header and claims.
- A value that is itself configuration (``-Ddb.password=…``, ``{"token": …}``, an HTTP header)
  is read for credential-named keys; a value that is one base64 blob is decoded once and read.
- Connection strings and URLs with a password are findings whatever the user name; a
  template or placeholder password is not.
- Configuration and code inside a value are read for credential-named keys as the languages
  write an assignment (``key = …``, ``key: …``, Go ``:=`` and ``var key string =``, typed
  declarations, make's ``?=``, PHP ``=>`` and ``.=``, ``<add key=… value=…/>``, a call or an index
  given the key and a literal, a getter's default, Terraform's ``variable`` default, statements
  run together with ``;``), at most three values deep; a command line in an env value as in
  ``sh -c`` (curl ``-u``/``-H``, and the password flags of clients: ``mysql -p``, ``sshpass -p``
  among its own options, PsExec's ``-p`` after its ``-u``, ``redis-cli -a``, ``smbclient -U
  user%…``, a registry login's and ``az login``'s ``-p``, ``sqlcmd -P``, OpenLDAP clients'
  ``-w``, MongoDB tools' ``-p``, ``rabbitmqctl add_user NAME …``, OpenSSL's ``pass:…``, Redis's
  ``--requirepass``, keytool's ``-storepass``; passwords given as arguments of their own: ``mc
  alias set``'s secret key, ``htpasswd -b``, ``vault operator unseal``, configuration setters
  such as ``aws configure set`` under a credential-named key; key=value pairs given to a flag
  such as helm's ``--set`` and kubectl's ``--from-literal``; a literal piped into ``docker login
  --password-stdin`` or ``chpasswd``; the same in exec-form argument lists, where the program is
  the first argument or follows ``sudo``, ``env``, ``kubectl exec … --``), SQL that sets a
  password (``IDENTIFIED BY``, ``CREATE|ALTER USER … PASSWORD``, ``SET PASSWORD``), and the
  password a database or directory client's call takes as a positional literal
  (``NetworkCredential``, ``mysqli_connect``, ``DBI->connect``). A command substitution
  (``$(kubectl get secret …)``) or an escaped variable (``$$VAR``, ``\\$VAR``) is no literal.
  An HTML form's password field filled in, a Windows answer file's ``<Password><Value>`` and
  a network device's configuration lines (``enable password``, ``snmp-server community … RO``,
  ``pac key``; not the default ``public``), the directives ``requirepass``, ``masterauth``,
  ``bindpw`` and ``rootpw``, PgBouncer's ``userlist.txt`` and Vault's ``Unseal Key N:`` lines
  are read as passwords.
  A Kubernetes Secret manifest written in a text (a ConfigMap, an env value) is reported by its
  ``data`` and ``stringData`` values. A ``Bearer`` token is read without its header's name.
- Password hashes (crypt's ``$1$``/``$apr1$``, ``$5$``/``$6$``, bcrypt, yescrypt, Cisco type 8
  and 9, Argon2, Kerberos AS-REP and TGS hashes) are reported: cracked offline, they are the
  password. Their bodies must look generated (``$2b$12$`` and dots, or a run of the alphabet, is
  a stand-in), and an MD5-crypt salt has 8 characters (``"$1$SEP$HOME/…"`` is shell text).
- ``*_KEY_ID`` names (``AWS_ACCESS_KEY_ID``) are identifiers, not secrets: the keyword
  heuristic ignores them and the AWS key-id format (AKIA/ASIA...) is detected under any name.
- A private-key block needs a body of at least 40 base64 characters; a header alone (a script
  that greps for ``BEGIN PRIVATE KEY``) or a stub body (``xxxx``) is not a key.
- A provider format written with a run of x (``hf_xxxx…``) is reported, as other scanners do;
  one containing a documentation word (``example``, ``your_``, ``fake``) is not.
- Stripe test keys (``sk_test_``) are reported as their own kind: they are credentials too.
- Bare command-line arguments are reported as high-entropy only when 32+ characters of mixed
  case and digits with few vowels and no separators; hex strings (digests, commit ids) never
  are, nor are prefixed tokens, which are the table's to judge, nor values typed by hand (runs of
  the alphabet, a chunk repeated), which only look random.
- A provider name (``near`` rules) starts a word (``ADD_API_KEY`` does not name Datadog's
  ``dd_api``) and stays within a few blanks of the value. A name whose last word says identifier
  or digest (``ELASTIC_CA_TRUSTED_FINGERPRINT``, ``*_HASH``, ``*_ID``) announces no provider,
  unless the provider's own name for its credential says ID (``CC_TEST_REPORTER_ID``). A JVM
  property flag names its provider too (``-Dsonar.login=…``).
- A UUID under a weak key name (``TENANT_KEY``, ``REQUEST_KEY``) is an identifier, not a key.
- A rule's keyword never sits inside an everyday configuration word (``fal`` in ``false``): the
  admission hot path keeps ordinary values on its fast path.
- ``allowValues`` regexes are searched in the detected credential and in the whole env value or
  argument; a match suppresses the detection.
"""

from __future__ import annotations

from airlock.detectors._core import (
    DEFAULT_DETECTORS,
    Detection,
    DetectorSet,
    FingerprintKey,
    fingerprint,
    redact,
)

__all__ = [
    "DEFAULT_DETECTORS",
    "Detection",
    "DetectorSet",
    "FingerprintKey",
    "fingerprint",
    "redact",
]
