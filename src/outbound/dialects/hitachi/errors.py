"""Hitachi's error body ``{errorSource, message, messageID, application}`` for every failure."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404
from django.utils.encoding import escape_uri_path
from rest_framework import exceptions, status
from rest_framework.response import Response

from outbound.core.errors import (
    ServiceError,
    answer_unavailable,
    is_database_unavailable,
    plain_message,
)

logger = logging.getLogger(__name__)

APPLICATION = "Analytics"
# Core field name -> Hitachi attribute name, for the core's validation errors.
CORE_TO_HITACHI = {
    "host": "hostname",
    "port": "portNumber",
    "security": "secureConnection",
    "username": "userId",
    "password": "password",
    "sender_address": "senderAddress",
}
MESSAGES = {
    400: "The format of the request body is invalid.",
    401: "No login privilege.",
    403: "No privilege for this operation.",
    404: "The specified resource was not found.",
    405: "The method is not allowed for this resource.",
    412: "The server is not available.",
    500: "Server processing error.",
}


def message_id(status_code: int) -> str:
    """Hitachi-shaped message IDs (``XXXXnnnnn-E``) under Outbound's own prefix ``OBHA``."""
    return f"OBHA{status_code:05d}-E"


def error_response(
    request: Any, status_code: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "errorSource": escape_uri_path(request.path) if request is not None else "",
        "message": message,
        "messageID": message_id(status_code),
        "application": APPLICATION,
    }
    return Response(body, status=status_code, headers=headers)


def _flatten(detail: Any, prefix: str = "") -> list[str]:
    """DRF error details as ``field: message`` lines."""
    if isinstance(detail, dict):
        lines = []
        for key, value in detail.items():
            name = str(key) if key != "non_field_errors" else ""
            lines += _flatten(value, f"{prefix}.{name}" if prefix and name else prefix or name)
        return lines
    if isinstance(detail, list):
        return [line for item in detail for line in _flatten(item, prefix)]
    return [f"{prefix}: {detail}" if prefix else str(detail)]


def core_errors_message(exc: DjangoValidationError, prefix: str = "") -> str:
    """Core validation errors under Hitachi attribute names, one ``name: message`` each."""
    if hasattr(exc, "error_dict"):
        detail: Any = {
            CORE_TO_HITACHI.get(field, field): messages
            for field, messages in exc.message_dict.items()
        }
    else:
        detail = exc.messages
    if prefix:
        detail = {prefix: detail}
    return " ".join(_flatten(detail))


def invalid_body(request: Any, lines: str) -> Response:
    return error_response(request, 400, f"{MESSAGES[400]} {lines}".strip())


def one_sentence(exc: exceptions.APIException) -> str:
    """What went wrong, in one sentence: the specific reason when there is one (the
    authentication layer's "The access token has expired.", "mailServerSetting#1 does not
    exist."), else Hitachi's own phrase for the status ("No login privilege.")."""
    phrase = MESSAGES.get(exc.status_code, "")
    text = plain_message(exc.detail, "")
    if not text or text == str(type(exc).default_detail):
        return phrase or text or str(exc.default_detail)
    return text


def hitachi_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return invalid_body(request, core_errors_message(exc))
    if isinstance(exc, ServiceError):
        return error_response(request, exc.status_code, exc.detail)
    if is_database_unavailable(exc):
        # The database is away (restarting, read-only): Hitachi's "server is not available",
        # which its clients know to retry; logged once per outage (core.errors).
        return answer_unavailable(exc, error_response(request, 412, MESSAGES[412]))
    if isinstance(exc, DatabaseError):
        # The backing store refused the write otherwise: the same answer, as before.
        logger.warning("hitachi dialect: database error: %s", type(exc).__name__)
        return error_response(request, 412, MESSAGES[412])
    if isinstance(exc, exceptions.APIException):
        code = exc.status_code
        headers: dict[str, str] = {}
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        wait = getattr(exc, "wait", None)
        if wait:
            headers["Retry-After"] = str(int(wait))
        if isinstance(exc, exceptions.ValidationError):
            message = invalid_body(request, " ".join(_flatten(exc.detail))).data["message"]
        elif code == status.HTTP_400_BAD_REQUEST:  # a body that does not parse
            message = f"{MESSAGES[400]} {plain_message(exc.detail, '')}".strip()
        else:
            message = one_sentence(exc)
        return error_response(request, code, message, headers)
    logger.exception("hitachi dialect: unexpected error")
    return error_response(request, status.HTTP_500_INTERNAL_SERVER_ERROR, MESSAGES[500])
