"""PrivX's auth: ``Authorization: Bearer <JWT>``, and its OAuth2 scopes mapped to permissions."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.request import Request

from outbound.core.authentication import OutboundJWTAuthentication
from outbound.core.permissions import HasOutboundPermission, has_permission

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"

# Which PrivX scopes a caller holding an Outbound permission is taken to have.
SCOPES_BY_PERMISSION: dict[str, tuple[str, ...]] = {
    EDIT: ("admin", "workflowsManage"),
    VIEW: ("workflowsView",),
}


class PrivxBearerAuthentication(OutboundJWTAuthentication):
    """Outbound's JWT, presented as PrivX clients do (``Bearer``); 401s challenge ``Bearer``."""

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class PrivxScopePermission(HasOutboundPermission):
    """The core permission check, with a refusal that names the PrivX scopes required.

    ``admin`` and ``workflowsManage`` include viewing, as in PrivX: a caller holding
    ``outbound_mail_setup.edit`` may also read.
    """

    def has_permission(self, request: Request, view: Any) -> bool:
        granted = super().has_permission(request, view)
        needed = self.required(request, view)
        if not granted and needed == VIEW and request.user and request.user.is_authenticated:
            granted = has_permission(request.user, EDIT)
        if not granted:
            scopes = SCOPES_BY_PERMISSION.get(needed, ()) if isinstance(needed, str) else ()
            if needed == VIEW:
                scopes += SCOPES_BY_PERMISSION[EDIT]
            self.message = (
                f"Insufficient scope: this operation requires one of {', '.join(scopes)}."
                if scopes
                else "Insufficient scope."
            )
        return granted


class PrivxBearerScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.dialects.privx.authentication.PrivxBearerAuthentication"
    name = "privxBearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": (
                "PrivX-style `Authorization: Bearer <access token>` (obtain one from "
                "POST /api/auth/token/). PrivX scopes map to Outbound permissions: `admin` "
                "and `workflowsManage` = `outbound_mail_setup.edit`, `workflowsView` = "
                "`outbound_mail_setup.view`."
            ),
        }
