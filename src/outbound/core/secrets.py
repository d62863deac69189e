"""Encryption of secrets at rest: an AES-GCM key ring with key ids, rows bound through AAD.

A stored secret looks like ``enc1$<kid>$<base64url(nonce || ciphertext+tag)>``. The key id
names the key that sealed it, so keys can rotate: the first key of the ring seals, every key
of the ring opens. The associated data names the row and field (``mail.smtpconfig:<uid>:password``)
so a ciphertext copied onto another row does not decrypt there, and, where the row says so,
the destination the secret was entered for (``…:password@["smtp.example.com","587",…]``), so
it does not decrypt for any other server either.

Keys come from ``OUTBOUND_SECRET_KEY`` (comma-separated, newest first) or, when that is
unset, from ``var/secret.key`` (one key per line, newest first), generated with mode 0600 on
first use.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import secrets as _random
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

logger = logging.getLogger(__name__)

PREFIX = "enc1"
NONCE_BYTES = 12


class SecretDecryptionError(Exception):
    """A stored secret could not be opened: unknown key id, wrong row, or tampering."""


def binding_text(values: tuple[Any, ...]) -> str:
    """The destination a secret is bound to, as associated data: one unambiguous text."""
    return json.dumps(["" if v is None else str(v) for v in values], separators=(",", ":"))


def new_key() -> str:
    """A fresh 256-bit key in the text form the environment and key file hold."""
    return base64.urlsafe_b64encode(_random.token_bytes(32)).decode()


def _key_bytes(text: str) -> bytes:
    """32 key bytes from a base64 key, or derived (HKDF) from any other passphrase."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text.encode())
        if len(raw) == 32:
            return raw
    except (binascii.Error, ValueError):
        pass
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"outbound-passphrase"
    ).derive(text.encode())


@dataclass(frozen=True)
class Key:
    kid: str
    material: bytes

    @classmethod
    def from_text(cls, text: str) -> Key:
        material = _key_bytes(text)
        kid = hashlib.sha256(b"outbound-kid:" + material).hexdigest()[:8]
        return cls(kid=kid, material=material)


class KeyRing:
    """The keys in use: ``keys[0]`` seals new secrets, all of them open old ones."""

    def __init__(self, keys: list[Key]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self.keys = keys
        self._by_kid = {k.kid: k for k in keys}

    @classmethod
    def from_texts(cls, texts: list[str]) -> KeyRing:
        return cls([Key.from_text(t) for t in texts if t.strip()])

    @property
    def primary(self) -> Key:
        return self.keys[0]

    def encrypt(self, plaintext: str, *, context: str) -> str:
        key = self.primary
        nonce = _random.token_bytes(NONCE_BYTES)
        sealed = AESGCM(key.material).encrypt(nonce, plaintext.encode(), context.encode())
        blob = base64.urlsafe_b64encode(nonce + sealed).decode()
        return f"{PREFIX}${key.kid}${blob}"

    def decrypt(self, token: str, *, context: str) -> str:
        if not isinstance(token, str):
            raise SecretDecryptionError("malformed secret")
        try:
            prefix, kid, blob = token.split("$", 2)
            raw = base64.urlsafe_b64decode(blob.encode())
        except (ValueError, binascii.Error) as exc:
            raise SecretDecryptionError("malformed secret") from exc
        if prefix != PREFIX or kid not in self._by_kid:
            raise SecretDecryptionError(f"no key with id {kid!r} in the key ring")
        if len(raw) <= NONCE_BYTES:  # AESGCM raises ValueError (not InvalidTag) on a short nonce
            raise SecretDecryptionError("malformed secret")
        try:
            plain = AESGCM(self._by_kid[kid].material).decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], context.encode()
            )
            return plain.decode()
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise SecretDecryptionError(
                "secret does not belong to this row or was altered"
            ) from exc

    @staticmethod
    def kid_of(token: str) -> str:
        return token.split("$", 2)[1] if token.count("$") >= 2 else ""


def read_key_texts(env_value: str, key_file: Path) -> list[str]:
    """The configured keys, newest first; generates the key file when nothing is configured."""
    if env_value.strip():
        return [t.strip() for t in env_value.split(",") if t.strip()]
    if key_file.exists():
        texts = [line.strip() for line in key_file.read_text().splitlines() if line.strip()]
        if not texts:
            raise ValueError(f"The key file {key_file} holds no key.")
        return texts
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = new_key()
    # Write the key to a private temporary file (mkstemp: mode 0600) and link it into place,
    # so the key file appears complete or not at all: a process that loses the race reads a
    # whole key, never an empty file still being written.
    fd, tmp = tempfile.mkstemp(dir=key_file.parent, prefix=".secret-key-")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(key + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, key_file)
        except FileExistsError:  # another process won the race; use its key
            return read_key_texts("", key_file)
    finally:
        os.unlink(tmp)
    print(
        f"WARNING: OUTBOUND_SECRET_KEY is not set; generated a new encryption key in {key_file} "
        "(mode 0600). Back it up: secrets stored under it cannot be read without it.",
        file=sys.stderr,
    )
    return [key]


def write_key_file(key_file: Path, texts: list[str]) -> None:
    """Replace the key file atomically, keeping mode 0600."""
    tmp = key_file.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    # The mode given to os.open only applies when the file is created: a leftover temporary
    # file from an interrupted run keeps its old (maybe world-readable) mode unless reset.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(t + "\n" for t in texts))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, key_file)


def django_secret_key(key_file: Path) -> str:
    """Django's signing key (sessions, CSRF, JWTs) from ``key_file``, generated once.

    It is kept apart from the encryption keys so that rotating those does not sign everyone
    out; deployments with several machines set ``DJANGO_SECRET_KEY`` instead.
    """
    if key_file.exists():
        text = key_file.read_text().strip()
        if text:
            return text
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key = _random.token_urlsafe(48)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


_ring: KeyRing | None = None
# When the ring came from the key file: the file and the keys it held then.
_ring_file: tuple[Path, list[str]] | None = None


_ring_stamp: tuple[int, int] | None = None


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)


def _remember_stamp(stamp: tuple[int, int] | None) -> None:
    global _ring_stamp
    _ring_stamp = stamp


def _keys_in_file(path: Path) -> list[str] | None:
    try:
        texts = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    return texts or None


def keyring() -> KeyRing:
    """The process's key ring, read from the settings.

    A ring read from the key file follows the file's changes, so that a running server
    keeps working across ``outbound rotate-key`` run by another process, instead of failing
    to open the re-sealed secrets or sealing new ones under a key the rotation drops. A key
    file that vanished or was emptied is not followed: the keys in use stay.
    """
    global _ring, _ring_file
    if _ring is not None and _ring_file is not None:
        path, texts = _ring_file
        stamp = _stat(path)
        if stamp != _ring_stamp:  # only re-read when the file changed
            current = _keys_in_file(path)
            if current is not None and current != texts:
                _ring, _ring_file = KeyRing.from_texts(current), (path, current)
            _remember_stamp(stamp)
    if _ring is None:
        from django.conf import settings

        env_value = settings.OUTBOUND_SECRET_KEY
        key_file = Path(settings.OUTBOUND_SECRET_KEY_FILE)
        texts = read_key_texts(env_value, key_file)
        _ring = KeyRing.from_texts(texts)
        _ring_file = None if env_value.strip() else (key_file, texts)
        _remember_stamp(_stat(key_file) if _ring_file else None)
    return _ring


def reset_keyring(ring: KeyRing | None = None) -> None:
    """Use ``ring`` from now on (or re-read the settings on next use)."""
    global _ring, _ring_file
    _ring = ring
    _ring_file = None
