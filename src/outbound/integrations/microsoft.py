"""Microsoft identity platform: the client-credentials token for XOAUTH2.

The token endpoint is ``{authority_url}/{tenant_id}/oauth2/v2.0/token``, called through
:func:`outbound.core.http.post_form` (egress policy, pinned address, verified certificate).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from outbound.core.http import HttpCallFailed, post_form
from outbound.core.secrets import SecretDecryptionError
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import (
    MICROSOFT_CLIENT_CREDENTIALS,
    SECRETS_UNREADABLE,
    defaults,
)


class TokenError(Exception):
    """The token endpoint could not be reached or refused the client credentials."""


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float


DEFAULTS = defaults(MICROSOFT_CLIENT_CREDENTIALS)


def token_url(obj: AuthenticationObject) -> str:
    authority = str(obj.param("authority_url") or DEFAULTS["authority_url"]).rstrip("/")
    return f"{authority}/{obj.param('tenant_id')}/oauth2/v2.0/token"


def fetch_token(obj: AuthenticationObject, *, timeout: float) -> AccessToken:
    try:
        secret = obj.get_secret("client_secret") or ""
    except SecretDecryptionError:
        # Sealed for another endpoint or key: it is never sent, whichever path asked.
        raise TokenError(SECRETS_UNREADABLE) from None
    form = {
        "client_id": obj.param("client_id") or "",
        "client_secret": secret,
        "scope": obj.param("scope") or DEFAULTS["scope"],
        "grant_type": "client_credentials",
    }
    try:
        response = post_form(token_url(obj), form, timeout=timeout)
    except HttpCallFailed as exc:
        raise TokenError(str(exc).replace("The endpoint", "The token endpoint")) from exc
    token = response.body.get("access_token")
    if response.status != 200 or not token:
        error = response.body.get("error")
        raise TokenError(
            f"The token endpoint refused the client credentials (HTTP {response.status}"
            + (f", {error}" if isinstance(error, str) else "")
            + ")."
        )
    expires_in = int(response.body.get("expires_in") or 3600)
    return AccessToken(value=str(token), expires_at=time.time() + expires_in)
