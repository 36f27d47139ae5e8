"""Plaintext-credential detectors: provider formats, keyword + value heuristics, entropy.

The public surface is :class:`DetectorSet` (built once per policy), :data:`DEFAULT_DETECTORS`,
:class:`Detection` and :func:`fingerprint`. A :class:`Detection` never holds the credential: only
its kind, a fingerprint and the reason it was reported, so it can be logged, put in a message or
a report, and printed with ``repr`` without leaking anything.

Decisions worth knowing (each has a test):

- A credential-named variable is reported only with a literal that could be the credential:
  placeholders (``changeme``, ``<token>``, ``xxxx``, ``your-key-here``), templates (``$(VAR)``,
  ``${VAR}``, ``{{ .Values.x }}``), references (file paths, ``arn:aws:secretsmanager:...``,
  ``vault:...``, plain URLs), booleans, numbers, prose and values shorter than 6 characters are
  not. Polaris flags by name alone; Airlock does not, so ``AWS_SECRET_ACCESS_KEY=xxx`` passes.
- ``*_KEY_ID`` names (``AWS_ACCESS_KEY_ID``) are identifiers, not secrets: the keyword
  heuristic ignores them and the AWS key-id format (AKIA/ASIA...) is detected under any name.
- A private-key block needs a body of at least 40 base64 characters; a header alone (a script
  that greps for ``BEGIN PRIVATE KEY``) or a stub body (``xxxx``) is not a key.
- Stripe test keys (``sk_test_``) are not reported: they only reach test-mode data.
- Bare command-line arguments are reported as high-entropy only when 32+ characters of mixed
  case and digits with few vowels; hex strings (digests, commit ids) never are.
- ``allowValues`` regexes are searched in the detected credential and in the whole env value or
  argument; a match suppresses the detection.
"""

from __future__ import annotations

from airlock.detectors._core import DEFAULT_DETECTORS, Detection, DetectorSet, fingerprint

__all__ = ["DEFAULT_DETECTORS", "Detection", "DetectorSet", "fingerprint"]
