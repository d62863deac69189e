"""The registry of authentication-object providers: each declares its parameters and secrets.

The serializer, the validation and the responses are generated from these declarations;
adding a provider is adding one entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.validators import URLValidator


@dataclass(frozen=True)
class Param:
    name: str
    max_length: int = 255
    required: bool = True
    secret: bool = False
    default: str | None = None
    url: bool = False
    label: str = ""
    # Part of where the provider's secrets go: change it and they must be entered again.
    destination: bool = False


@dataclass(frozen=True)
class Provider:
    key: str
    label: str
    params: tuple[Param, ...] = field(default_factory=tuple)

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.secret)

    @property
    def destination_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.destination)

    @property
    def public_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if not p.secret)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)


MICROSOFT_CLIENT_CREDENTIALS = Provider(
    key="microsoft_client_credentials",
    label="Microsoft Client Credentials",
    params=(
        Param("tenant_id", max_length=100, label="Tenant ID", destination=True),
        Param("client_id", max_length=100, label="Client ID", destination=True),
        Param("client_secret", max_length=1024, secret=True, label="Client secret"),
        Param(
            "authority_url",
            max_length=255,
            required=False,
            url=True,
            default="https://login.microsoftonline.com",
            label="Authority URL",
            destination=True,
        ),
        Param(
            "scope",
            max_length=255,
            required=False,
            default="https://outlook.office365.com/.default",
            label="Scope",
        ),
    ),
)

IMANAGE = Provider(
    key="imanage",
    label="iManage",
    params=(
        Param("server_url", max_length=255, url=True, label="Server URL", destination=True),
        Param("username", max_length=254, label="Username", destination=True),
        Param("password", max_length=1024, secret=True, label="Password"),
        Param("client_id", max_length=255, label="Client ID", destination=True),
        Param("client_secret", max_length=1024, secret=True, label="Client secret"),
    ),
)

# A sealed secret opens only for the endpoint it was saved for, under a key of the ring.
SECRETS_UNREADABLE = (
    "The saved secret cannot be read (it was saved for another endpoint, or the encryption key "
    "changed); enter it again."
)

PROVIDERS: dict[str, Provider] = {p.key: p for p in (MICROSOFT_CLIENT_CREDENTIALS, IMANAGE)}

PROVIDER_CHOICES = [(p.key, p.label) for p in PROVIDERS.values()]

# The token endpoint is only ever called over HTTPS (see microsoft.fetch_token).
https_url = URLValidator(schemes=["https"])


def defaults(provider: Provider) -> dict[str, Any]:
    return {p.name: p.default for p in provider.params if p.default is not None}
