"""Commvault's ``Authtoken`` header (``<API key>`` or ``QSDK <API key>``) over Outbound API keys."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from outbound.core.authentication import INVALID_API_KEY, ApiKeyAuthentication

HEADER = "Authtoken"
META_KEY = "HTTP_AUTHTOKEN"
QSDK = "qsdk"


class AuthtokenAuthentication(ApiKeyAuthentication):
    """``Authtoken: ob_…`` or ``Authtoken: QSDK ob_…``: the key's owner, limited to the key.

    A request without the header is anonymous (the view then answers 401); a header that
    holds anything but a valid key is a 401 at once. A subclass of the core's API key
    authentication, so what refuses API keys (``RefuseApiKeys``) refuses these too.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        value = request.META.get(META_KEY)
        if value is None:
            return None
        parts = str(value).split()
        if len(parts) == 2 and parts[0].lower() == QSDK:
            parts = parts[1:]
        if len(parts) != 1:
            raise AuthenticationFailed(INVALID_API_KEY)
        return self.authenticate_key(parts[0])

    def authenticate_header(self, request: Request) -> str:
        return HEADER


class AuthtokenScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.dialects.commvault.authentication.AuthtokenAuthentication"
    name = "commvaultAuthtoken"
    priority = 1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": HEADER,
            "description": (
                "An Outbound API key (`ob_<prefix>_<secret>`), bare or as `QSDK <key>`; create "
                "one with POST /api/auth/api-keys/. It acts as its owner, limited to the key's "
                "permissions."
            ),
        }
