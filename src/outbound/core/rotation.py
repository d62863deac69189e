"""Re-sealing every secret of every :class:`SecretHolder` model under the primary key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from django.apps import apps
from django.db import transaction

from outbound.core.models import SecretHolder
from outbound.core.secrets import KeyRing, SecretDecryptionError, keyring


def secret_holder_models() -> list[type[SecretHolder]]:
    return [m for m in apps.get_models() if issubclass(m, SecretHolder)]


@transaction.atomic
def reseal_all(ring: KeyRing) -> int:
    """Decrypt with any key of ``ring`` and encrypt with its primary; return the count."""
    count = 0
    for model in secret_holder_models():
        manager = model._default_manager
        for row in manager.select_for_update().exclude(sealed_secrets={}).iterator():
            sealed = dict(row.sealed_secrets or {})
            for name, token in sealed.items():
                if KeyRing.kid_of(token) == ring.primary.kid:
                    continue
                try:
                    plain = ring.decrypt(token, context=row.secret_context(name))
                except SecretDecryptionError as exc:
                    raise SecretDecryptionError(
                        f"{model._meta.label_lower} #{row.pk}, secret {name!r}: {exc}"
                    ) from exc
                sealed[name] = ring.encrypt(plain, context=row.secret_context(name))
                count += 1
            manager.filter(pk=row.pk).update(sealed_secrets=sealed)
    return count


def rebind(
    rows: Iterable[Any],
    *,
    old_context: Callable[[Any, str], str],
    new_context: Callable[[Any, str], str],
) -> int:
    """Re-seal each row's secrets from ``old_context`` to ``new_context`` (data migrations that
    change what a secret is bound to); returns how many were re-sealed. Secrets already bound
    anew are left as they are. A secret that opens under neither stops the migration (rolled
    back), so a migration run without the deployment's keys is not recorded as done while
    every secret is left unreadable."""
    ring: KeyRing | None = None
    count = 0
    for row in rows:
        sealed = dict(row.sealed_secrets or {})
        for name, token in sealed.items():
            ring = ring or keyring()
            try:
                plain = ring.decrypt(token, context=old_context(row, name))
            except SecretDecryptionError:
                try:
                    ring.decrypt(token, context=new_context(row, name))
                except SecretDecryptionError:
                    raise SecretDecryptionError(
                        f"{row._meta.label_lower} #{row.pk}, secret {name!r} cannot be opened "
                        "with the configured keys: run the migration with the deployment's "
                        "OUTBOUND_SECRET_KEY (or its var/secret.key)."
                    ) from None
                continue
            sealed[name] = ring.encrypt(plain, context=new_context(row, name))
            count += 1
        if sealed != row.sealed_secrets:
            type(row)._default_manager.filter(pk=row.pk).update(sealed_secrets=sealed)
    return count
