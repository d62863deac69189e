"""The API key format: ``ob_<prefix>_<secret>``; generating, parsing and hashing keys.

``prefix`` is 8 characters of ``[a-z0-9]`` (no ``_``, so the key splits unambiguously) that
identify the row; ``secret`` is 32 random bytes, URL-safe base64 (256 bits). With that much
randomness a single SHA-256 is as strong as a slow password hash, and it needs no server key
(rotating Django's or Outbound's keys leaves API keys working).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

KEY_MARK = "ob"
PREFIX_LENGTH = 8
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
SECRET_BYTES = 32
# ob_ + prefix + _ + 43 base64 characters; anything much longer is not one of ours.
MAX_KEY_LENGTH = 128


def new_prefix() -> str:
    return "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))


def new_key(prefix: str) -> str:
    return f"{KEY_MARK}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def hash_key(key: str) -> str:
    """The stored form of a key (hex SHA-256 of the whole key, so the prefix is bound too)."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_matches(key: str, hashed: str) -> bool:
    return hmac.compare_digest(hash_key(key), hashed)


def parse_prefix(key: str) -> str | None:
    """The prefix of a well-formed key, ``None`` for anything else."""
    if len(key) > MAX_KEY_LENGTH:
        return None
    mark, _, rest = key.partition("_")
    prefix, sep, secret = rest.partition("_")
    if mark != KEY_MARK or not sep or not secret or len(prefix) != PREFIX_LENGTH:
        return None
    if any(c not in PREFIX_ALPHABET for c in prefix):
        return None
    return prefix
