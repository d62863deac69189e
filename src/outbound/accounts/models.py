"""Users, roles and API keys. A role holds permission names; a user holds roles; an API key
holds a subset of its owner's permission names."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class Role(models.Model):
    name = models.CharField(max_length=100, unique=True)
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    roles = models.ManyToManyField(Role, blank=True, related_name="users")

    class Meta:
        ordering = ["username"]


class ApiKey(models.Model):
    """A credential for a service: ``ob_<prefix>_<secret>``, of which only a hash is stored.

    ``prefix`` is public (shown in lists, used to find the row); the secret part carries 256
    random bits, so one SHA-256 of the whole key is enough — no slow password hash needed.
    A request made with the key acts as ``owner`` limited to ``permissions``.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys"
    )
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_key = models.CharField(max_length=64, editable=False)
    permissions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} (ob_{self.prefix}_…)"

    def state(self, now: datetime | None = None) -> str:
        """``revoked``, ``expired`` or ``active``: whether the key may be used at ``now``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"
