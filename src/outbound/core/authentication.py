"""Request authentication: JWT access tokens under the ``JWT`` or ``Bearer`` scheme."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework_simplejwt.authentication import JWTAuthentication


class OutboundJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication; accepts ``Authorization: JWT <access>`` and ``Bearer``."""


class OutboundJWTScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.core.authentication.OutboundJWTAuthentication"
    name = "jwtAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`JWT <access token>` (as ALX documents it) or `Bearer <access token>`; "
                "obtain one from POST /api/auth/token/."
            ),
        }
