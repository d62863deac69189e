"""Request authentication: JWT access tokens (``JWT``/``Bearer``) and API keys (``Api-Key``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES, JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import Token

API_KEY_KEYWORD = "Api-Key"
INVALID_API_KEY = "Invalid API key."
# One plain sentence per way a credential can fail: every API shape puts it in its own body.
NO_CREDENTIAL = "The Authorization header names a scheme but carries no credential."
MALFORMED_HEADER = "The Authorization header must be a scheme and one credential."
TOKEN_EXPIRED = "The access token has expired."
TOKEN_INVALID = "The access token is not valid."
TOKEN_PASSWORD_CHANGED = "The access token was issued before the password changed."


def malformed_header(parts: list[bytes]) -> AuthenticationFailed:
    """The refusal of an ``Authorization`` header whose scheme is ours but whose shape is not."""
    return AuthenticationFailed(NO_CREDENTIAL if len(parts) < 2 else MALFORMED_HEADER)


class OutboundJWTAuthentication(JWTAuthentication):
    """simplejwt's authentication; accepts ``Authorization: JWT <access>`` and ``Bearer``.

    simplejwt refuses with dictionaries (``detail``, ``code``, ``messages`` naming its token
    classes) that every API shape would otherwise flatten or repr into its body; here each
    refusal is one plain sentence, the same whichever shape answers it.
    """

    def get_raw_token(self, header: bytes) -> bytes | None:
        parts = header.split()
        if len(parts) != 2 and parts and parts[0] in AUTH_HEADER_TYPE_BYTES:
            raise malformed_header(parts)
        return super().get_raw_token(header)

    def get_validated_token(self, raw_token: bytes) -> Token:
        expired = False
        for token_class in jwt_settings.AUTH_TOKEN_CLASSES:
            try:
                return token_class(raw_token)
            except ExpiredTokenError:
                expired = True
            except TokenError:
                pass
        raise AuthenticationFailed(TOKEN_EXPIRED if expired else TOKEN_INVALID)

    def get_user(self, validated_token: Token) -> Any:
        try:
            return super().get_user(validated_token)
        except AuthenticationFailed as exc:
            detail = exc.detail  # simplejwt's {"detail": …, "code": …}
            if isinstance(detail, dict) and detail.get("code") == "password_changed":
                raise AuthenticationFailed(TOKEN_PASSWORD_CHANGED) from None
            # No such user, an inactive one, no user claim: nothing the caller can act on
            # beyond "sign in again", and nothing about the account is revealed.
            raise AuthenticationFailed(TOKEN_INVALID) from None


class ApiKeyAuthentication(BaseAuthentication):
    """``Authorization: Api-Key ob_<prefix>_<secret>``: the key's owner, limited to the key.

    ``request.user`` is the owner with ``_outbound_permission_limit`` set to the key's
    permissions, so :func:`outbound.core.permissions.user_permissions` grants the owner's
    *current* permissions intersected with the key's; ``request.auth`` is the key.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != API_KEY_KEYWORD.lower().encode():
            return None  # not ours: another scheme, or no credentials at all
        if len(parts) != 2:
            raise AuthenticationFailed(INVALID_API_KEY)
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed(INVALID_API_KEY) from None
        return self.authenticate_key(raw_key)

    @staticmethod
    def authenticate_key(raw_key: str) -> tuple[Any, Any]:
        """The one check of a presented key, whatever header carried it (``Api-Key``,
        ZITADEL's ``Bearer``, Commvault's ``Authtoken``): verify it, note its use, and let the
        owner act limited to the key's permissions."""
        # Imported here: DRF loads this module from settings, possibly before apps are ready.
        from outbound.accounts import selectors, services

        key = selectors.api_key_authenticate(raw_key)
        if key is None:
            raise AuthenticationFailed(INVALID_API_KEY)
        services.api_key_mark_used(key=key)
        user = key.owner
        user._outbound_permission_limit = frozenset(key.permissions)  # type: ignore[attr-defined]
        return user, key

    def authenticate_header(self, request: Request) -> str:
        return API_KEY_KEYWORD


class RefuseApiKeys(BasePermission):
    """For what only a person may do (managing API keys): 403 for a request made with a key,
    so a leaked key can neither mint more keys nor revoke its owner's others."""

    message = "This cannot be done with an API key."

    def has_permission(self, request: Request, view: Any) -> bool:
        return not isinstance(request.successful_authenticator, ApiKeyAuthentication)


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


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.core.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Api-Key ob_<prefix>_<secret>`, for services; create one with "
                "POST /api/auth/api-keys/. A key acts as its owner, limited to the key's "
                "permissions."
            ),
        }

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list[Any]]]:
        if RefuseApiKeys in getattr(auto_schema.view, "permission_classes", ()):
            return []  # the operation refuses keys: don't offer them in the docs
        return [{self.name: []}]
