"""Core models: the event stream (audit trail and change sequence) and the secret holder."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from outbound.core.secrets import binding_text, keyring


class EventSource(models.TextChoices):
    """Which way in made a change: an API shape, the console, or the command line."""

    ALX = "alx", "ALX API"
    NATIVE = "native", "Outbound API"
    ZITADEL = "zitadel", "ZITADEL API"
    HITACHI = "hitachi", "Hitachi API"
    COMMVAULT = "commvault", "Commvault API"
    PRIVX = "privx", "PrivX API"
    CONSOLE = "console", "Console"
    CLI = "cli", "Command line"


class Event(models.Model):
    """One change to one resource. ``sequence`` only grows; values are never stored, only names.

    ``source`` is filled by :func:`outbound.core.events.record_event`; events recorded before
    it existed have ``""`` (unknown).
    """

    sequence = models.BigAutoField(primary_key=True)
    resource_type = models.CharField(max_length=50)
    resource_id = models.CharField(max_length=64)
    action = models.CharField(max_length=50)
    changed_fields = models.JSONField(default=list, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    source = models.CharField(max_length=20, choices=EventSource.choices, blank=True, default="")

    class Meta:
        ordering = ["sequence"]
        indexes = [models.Index(fields=["resource_type", "resource_id", "sequence"])]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.resource_type}:{self.resource_id} {self.action}"


class SecretHolder(models.Model):
    """A row that keeps secrets, sealed with the key ring and bound to this row's ``uid``.

    Secrets are set and read only through :meth:`set_secret` / :meth:`get_secret`; the
    ``sealed_secrets`` column holds ciphertext only.
    """

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    sealed_secrets = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        abstract = True

    def secret_binding(self, name: str) -> tuple[Any, ...]:
        """The destination secret ``name`` is for (e.g. the SMTP server and user), or ``()``.

        It is part of the associated data, so a secret changes destination only by being
        entered again: opened for any other destination, the ciphertext fails to decrypt,
        even on a path that forgot the services' rule.
        """
        return ()

    def secret_context(self, name: str) -> str:
        context = f"{self._meta.label_lower}:{self.uid}:{name}"
        binding = self.secret_binding(name)
        return f"{context}@{binding_text(binding)}" if binding else context

    def set_secret(self, name: str, value: str | None) -> None:
        sealed = dict(self.sealed_secrets or {})
        if value is None:
            sealed.pop(name, None)
        else:
            sealed[name] = keyring().encrypt(value, context=self.secret_context(name))
        self.sealed_secrets = sealed

    def get_secret(self, name: str) -> str | None:
        token = (self.sealed_secrets or {}).get(name)
        if token is None:
            return None
        return keyring().decrypt(token, context=self.secret_context(name))

    def has_secret(self, name: str) -> bool:
        return name in (self.sealed_secrets or {})


def stamp_actor(instance: models.Model, actor: Any, *, creating: bool) -> None:
    """Who made the change, on a model with ``created_by`` / ``modified_by``: a signed-in
    user is recorded, anything else (the command line, a worker) leaves them as they were."""
    if getattr(actor, "pk", None):
        instance.modified_by = actor  # type: ignore[attr-defined]
        if creating:
            instance.created_by = actor  # type: ignore[attr-defined]
