"""Re-sealing every secret of every :class:`SecretHolder` model under the primary key."""

from __future__ import annotations

from django.apps import apps
from django.db import transaction

from outbound.core.models import SecretHolder
from outbound.core.secrets import KeyRing, SecretDecryptionError


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
