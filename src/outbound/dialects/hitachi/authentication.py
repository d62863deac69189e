"""Hitachi's ``Authorization: Basic``: a user's own credentials, throttled per username."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BasicAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from outbound.accounts import throttling

TOO_MANY_FAILURES = "Too many failed login attempts. Try again later."


class HitachiBasicAuthentication(BasicAuthentication):
    """DRF's Basic authentication; failed logins count toward the per-username throttle of
    ``POST /api/auth/token/``, so Basic is no side door for guessing passwords."""

    www_authenticate_realm = "Analytics"

    def authenticate_credentials(
        self, userid: str, password: str, request: Request | None = None
    ) -> tuple[Any, None]:
        slot = throttling.claim(userid)
        if slot is None:
            raise Throttled(wait=throttling.retry_after(userid), detail=TOO_MANY_FAILURES)
        failed = False
        try:
            return super().authenticate_credentials(userid, password, request)
        except AuthenticationFailed:
            failed = True  # the failure keeps its slot until the window has passed
            raise
        finally:
            if not failed:
                throttling.release(slot)


class HitachiBasicScheme(OpenApiAuthenticationExtension):
    target_class = "outbound.dialects.hitachi.authentication.HitachiBasicAuthentication"
    name = "hitachiBasicAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "basic",
            "description": "A user's username and password (failed attempts are throttled).",
        }
