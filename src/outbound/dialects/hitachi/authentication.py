"""Hitachi's ``Authorization: Basic``: a user's own credentials, throttled per username.

A password hash is slow on purpose, and Basic sends the password with every request; so a
credential that has just been verified is remembered for ``VERIFIED_SECONDS``. The cache
holds no password: its key is an HMAC (keyed by the server's secret) of the user, the
user's current password *hash* and the presented password, so it proves nothing without the
server's key, and a password change (a new hash) leaves the old entry unreachable.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from django.contrib.auth import authenticate, get_user_model
from django.core.cache import cache
from django.utils.crypto import salted_hmac
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from outbound.accounts import throttling
from outbound.core.authentication import malformed_header

KEYWORD = b"basic"
TOO_MANY_FAILURES = "Too many failed login attempts. Try again later."
MALFORMED_BASIC = "The Basic credentials must be base64 of username:password."
INVALID_CREDENTIALS = "Invalid username or password."
# How long a verified credential is taken without hashing again. Kept short so few entries
# linger; a password change, a deactivation or a lockout takes effect at once regardless.
VERIFIED_SECONDS = 60
_HMAC_SALT = "outbound.dialects.hitachi.basic"


def _decode(token: bytes) -> tuple[str, str]:
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError):
        raise AuthenticationFailed(MALFORMED_BASIC) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")  # what DRF's Basic authentication falls back to
    userid, sep, password = text.partition(":")
    if not sep:
        raise AuthenticationFailed(MALFORMED_BASIC)
    return userid, password


def _verified_key(user: Any, password: str) -> str:
    material = f"{user.pk}\0{user.password}\0{password}"
    return "hitachi-basic:" + salted_hmac(_HMAC_SALT, material, algorithm="sha256").hexdigest()


def _remembered_user(userid: str, password: str) -> Any | None:
    """The user whose credential this is, if it was verified moments ago; else ``None``."""
    model = get_user_model()
    try:
        user = model._default_manager.get_by_natural_key(userid)
    except model.DoesNotExist:
        return None
    if not user.is_active or cache.get(_verified_key(user, password)) is None:
        return None
    return user


class HitachiBasicAuthentication(BaseAuthentication):
    """Basic with a user's username and password. Failed logins count toward the
    per-username throttle of ``POST /api/auth/token/``, so Basic is no side door for
    guessing passwords; a locked username is refused even with a remembered credential,
    so the lock is no password oracle either."""

    www_authenticate_realm = "Analytics"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != KEYWORD:
            return None
        if len(parts) != 2:
            raise malformed_header(parts)
        userid, password = _decode(parts[1])
        return self.authenticate_credentials(userid, password, request)

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        user = _remembered_user(userid, password)
        if user is not None:
            if throttling.locked(userid):
                raise Throttled(wait=throttling.retry_after(userid), detail=TOO_MANY_FAILURES)
            return user, None
        slot = throttling.claim(userid)
        if slot is None:
            raise Throttled(wait=throttling.retry_after(userid), detail=TOO_MANY_FAILURES)
        user = authenticate(request=request, username=userid, password=password)
        if user is None or not user.is_active:
            # The failure keeps its slot until the window has passed.
            raise AuthenticationFailed(INVALID_CREDENTIALS)
        throttling.release(slot)
        cache.set(_verified_key(user, password), 1, timeout=VERIFIED_SECONDS)
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return f'Basic realm="{self.www_authenticate_realm}"'


class HitachiBasicScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.dialects.hitachi.authentication.HitachiBasicAuthentication"
    name = "hitachiBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A user's username and password (failed attempts are throttled).",
        }
