"""Synthetic tokens for detector tests: built at run time, so no token-shaped literal sits in
the tests."""

from __future__ import annotations

import string
import zlib

B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def crc_token(prefix: str, body: str) -> str:
    """``prefix`` + ``body`` + the base62 CRC32 of ``body`` in 6 characters: the checksum
    GitHub (and npm) put at the end of their tokens' 30 random characters."""
    n, check = zlib.crc32(body.encode()), ""
    while n:
        n, r = divmod(n, 62)
        check = B62[r] + check
    return prefix + body + check.rjust(6, "0")
