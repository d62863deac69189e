"""Authentication objects: named credentials (e.g. a Microsoft app registration) used by
SMTP configurations and integrations. Their secrets are sealed on the row."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from outbound.core.models import SecretHolder
from outbound.integrations.providers import PROVIDER_CHOICES, PROVIDERS, Provider


class AuthenticationObject(SecretHolder):
    name = models.CharField(max_length=100, unique=True)
    provider = models.CharField(max_length=64, choices=PROVIDER_CHOICES)
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def provider_spec(self) -> Provider:
        return PROVIDERS[self.provider]

    def param(self, name: str) -> Any:
        return (self.parameters or {}).get(name)

    def destination(self) -> tuple[Any, ...]:
        return tuple(self.param(n) for n in self.provider_spec.destination_names)

    def secret_binding(self, name: str) -> tuple[Any, ...]:
        return self.destination()


UNIQUE = {"unique": "This field must be unique."}


class ObjectClass(models.Model):
    """A kind of record in the platform (e.g. "Matter") that integrations file documents for."""

    name = models.CharField(max_length=100, unique=True, error_messages=UNIQUE)
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ObjectClassField(models.Model):
    """A field of an object class (e.g. the matter number an iManage folder is matched on)."""

    object_class = models.ForeignKey(ObjectClass, on_delete=models.CASCADE, related_name="fields")
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["object_class", "name"], name="integrations_field_name_unique_per_class"
            )
        ]

    def __str__(self) -> str:
        return self.name


class Integration(SecretHolder):
    """A typed integration configuration. Type-specific values live in ``parameters`` (and
    sealed secrets), as the type registry (``outbound.integrations.types``) declares them."""

    uuid = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=100, unique=True, error_messages=UNIQUE)
    description = models.CharField(max_length=500, blank=True, default="")
    is_enabled = models.BooleanField(default=False)
    authentication_object = models.ForeignKey(
        AuthenticationObject,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="integrations",
    )
    object_class = models.ForeignKey(
        ObjectClass, null=True, blank=True, on_delete=models.PROTECT, related_name="integrations"
    )
    parameters = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    modified_at = models.DateTimeField(auto_now=True, db_index=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name
