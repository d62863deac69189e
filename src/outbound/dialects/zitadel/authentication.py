"""ZITADEL's auth: ``Authorization: Bearer <JWT>`` or ``Bearer ob_…`` (an Outbound API key)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from outbound.core.authentication import INVALID_API_KEY, ApiKeyAuthentication

BEARER = b"bearer"
KEY_MARK = b"ob_"


class ZitadelApiKeyAuthentication(ApiKeyAuthentication):
    """An API key sent the way ZITADEL clients send a personal access token: as a Bearer token.

    Only tokens that look like Outbound keys (``ob_…``) are claimed; anything else is left to
    the JWT authentication. Verification is the accounts app's, so revoked, expired and
    unknown keys are refused exactly as with ``Api-Key``; being a subclass, the key also
    meets :class:`outbound.core.authentication.RefuseApiKeys` wherever that applies.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != BEARER or not parts[1].startswith(KEY_MARK):
            return None
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID_API_KEY) from None
        return self.authenticate_key(raw_key)

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="zitadel"'


class ZitadelApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.dialects.zitadel.authentication.ZitadelApiKeyAuthentication"
    name = "zitadelBearerApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "`Bearer ob_<prefix>_<secret>`: an Outbound API key used as a ZITADEL "
                "personal access token. A JWT access token is accepted as `Bearer` too."
            ),
        }
