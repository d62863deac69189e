"""Authentication objects: named credentials (e.g. a Microsoft app registration) used by
SMTP configurations and integrations. Their secrets are sealed on the row."""

from __future__ import annotations

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
