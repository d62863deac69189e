"""``outbound rotate-key``: re-seal every stored secret under the newest key.

With the key file (``OUTBOUND_SECRET_KEY`` unset), a new key is generated and put first in
``var/secret.key``; once every secret is re-sealed the old keys are dropped from the file.
With ``OUTBOUND_SECRET_KEY``, put the new key first (``new,old``), run this, then remove the
old key from the variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from outbound.core.rotation import reseal_all
from outbound.core.secrets import (
    KeyRing,
    SecretDecryptionError,
    new_key,
    read_key_texts,
    reset_keyring,
    write_key_file,
)


class Command(BaseCommand):
    help = "Re-encrypt every stored secret under the newest key (and make one, with the key file)."

    def handle(self, *args: Any, **options: Any) -> None:
        key_file = Path(settings.OUTBOUND_SECRET_KEY_FILE)
        using_file = not settings.OUTBOUND_SECRET_KEY.strip()
        texts = read_key_texts(settings.OUTBOUND_SECRET_KEY, key_file)
        if using_file:
            texts = [new_key(), *texts]
            write_key_file(key_file, texts)  # new key first; old ones still open old secrets
        ring = KeyRing.from_texts(texts)
        reset_keyring(ring)
        try:
            count = reseal_all(ring)
        except SecretDecryptionError as exc:
            # Nothing was re-encrypted (one transaction). The key file keeps the new key and
            # the old ones, so every secret stays readable, also by running servers.
            raise CommandError(
                f"Cannot re-encrypt {exc}. Nothing was changed"
                + (
                    "; the key file holds the new key and the old ones."
                    if using_file
                    else "; is the key that sealed it in OUTBOUND_SECRET_KEY?"
                )
            ) from exc
        if using_file:
            write_key_file(key_file, texts[:1])
        self.stdout.write(
            f"Re-encrypted {count} secret(s) under key {ring.primary.kid}."
            + ("" if using_file else " Remove the old keys from OUTBOUND_SECRET_KEY now.")
        )
