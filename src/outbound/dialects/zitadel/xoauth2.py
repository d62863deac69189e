"""ZITADEL's ``xoauth2`` SMTP auth, read as one of Outbound's Microsoft client-credentials
credentials (authentication objects) and written back from one.

ZITADEL carries ``tokenEndpoint``, ``scopes`` and ``clientCredentials{clientId, clientSecret}``
on the SMTP provider itself; Outbound keeps them on a named credential whose secret never
leaves it. So a write names an existing credential — the one whose token endpoint
(``{authority_url}/{tenant_id}/oauth2/v2.0/token``), client id and (if given) scopes are the
ones sent — and a read shows that credential's endpoint, scope and client id.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from outbound.integrations import selectors
from outbound.integrations.microsoft import DEFAULTS, token_url
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import MICROSOFT_CLIENT_CREDENTIALS

FIELD = "xoauth2"
NO_CLIENT_CREDENTIALS = (
    "clientCredentials is required: Outbound signs in to SMTP with OAuth 2.0 client credentials."
)
SECRET_STAYS_ON_CREDENTIAL = (
    "Leave clientSecret empty: Outbound keeps the client secret on its credential "
    "(/api/authentication-objects/), chosen here by tokenEndpoint and clientId."
)
NO_MATCH = (
    "No Microsoft client-credentials credential in Outbound has this tokenEndpoint, clientId "
    "and scopes; create it under /api/authentication-objects/ first."
)


def scope_of(obj: AuthenticationObject) -> str:
    return str(obj.param("scope") or DEFAULTS["scope"])


def render(obj: AuthenticationObject | None) -> dict[str, Any]:
    """``zitadel.settings.v1.SMTPXOAuth2Auth`` of a credential (no secret in it)."""
    if obj is None:
        return {}
    client_id = str(obj.param("client_id") or "")
    return {
        "tokenEndpoint": token_url(obj),
        "scopes": [scope_of(obj)],
        "clientCredentials": {"clientId": client_id} if client_id else {},
    }


def _same_endpoint(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def credential_for(
    *,
    token_endpoint: str,
    client_id: str,
    scopes: list[str],
    current: AuthenticationObject | None = None,
) -> AuthenticationObject:
    """The Microsoft credential these xoauth2 settings name; ``current`` wins a tie."""
    matches = [
        obj
        for obj in selectors.authentication_object_list().filter(
            provider=MICROSOFT_CLIENT_CREDENTIALS.key
        )
        if _same_endpoint(token_url(obj), token_endpoint)
        and obj.param("client_id") == client_id
        and (not scopes or scopes == [scope_of(obj)])
    ]
    if not matches:
        raise ValidationError({FIELD: [NO_MATCH]})
    if current is not None and any(obj.pk == current.pk for obj in matches):
        return current
    return min(matches, key=lambda obj: obj.pk)
