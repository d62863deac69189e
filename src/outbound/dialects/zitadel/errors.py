"""ZITADEL's error body: gRPC status codes, ``ErrorDetail`` and the grpc-gateway HTTP mapping."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response

from outbound.core.errors import (
    ServiceError,
    answer_unavailable,
    is_database_unavailable,
    plain_message,
)
from outbound.mail.services import StateConflict

logger = logging.getLogger(__name__)

ERROR_DETAIL_TYPE = "type.googleapis.com/zitadel.v1.ErrorDetail"


class Code(IntEnum):
    """gRPC status codes, as ZITADEL puts them in ``code``."""

    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


# grpc-gateway's HTTP status for each code (runtime.HTTPStatusFromCode).
HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.UNAUTHENTICATED: 401,
}

# Core field names -> ZITADEL's (``port`` is part of ``host``; ``security`` is ``tls``).
CORE_TO_ZITADEL = {
    "host": "host",
    "port": "host",
    "security": "tls",
    "username": "user",
    "password": "password",
    "sender_address": "senderAddress",
    "sender_name": "senderName",
    "reply_to_address": "replyToAddress",
    "description": "description",
    # Microsoft client credentials are the email-provider API's ``xoauth2`` auth.
    "authorization_method": "xoauth2",
    "authentication_object": "xoauth2",
}


class ZitadelError(Exception):
    """An error answered as ``{"code", "message", "details": [ErrorDetail…]}``."""

    def __init__(
        self,
        code: Code,
        error_id: str,
        message: str,
        *,
        details: list[tuple[str, str]] | None = None,
        http_status: int | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.error_id = error_id
        self.message = message
        self.details = details if details is not None else [(error_id, message)]
        self.http_status = http_status or HTTP_STATUS[code]

    def body(self) -> dict[str, Any]:
        return {
            "code": int(self.code),
            "message": f"{self.message} ({self.error_id})",
            "details": [
                {"@type": ERROR_DETAIL_TYPE, "id": i, "message": m} for i, m in self.details
            ],
        }

    def response(self) -> Response:
        return Response(self.body(), status=self.http_status)


def not_found() -> ZitadelError:
    return ZitadelError(Code.NOT_FOUND, "SMTP-NotFound", "SMTP configuration not found")


def unavailable() -> ZitadelError:
    """The database is away (restarting, read-only): gRPC's Unavailable, retry later."""
    return ZitadelError(
        Code.UNAVAILABLE, "DATABASE-Unavailable", "The database is unavailable; retry shortly"
    )


def route_not_found() -> ZitadelError:
    """grpc-gateway's answer for a path or method it has no route for."""
    return ZitadelError(Code.NOT_FOUND, "HTTP-NotFound", "Not Found")


def invalid_fields(errors: Mapping[str, list[str]]) -> ZitadelError:
    """One ``InvalidArgument`` listing every field's problem, under ZITADEL's field names."""
    details = [
        (f"VALIDATION-{field}", f"{field}: {message}")
        for field, messages in errors.items()
        for message in messages
    ]
    return ZitadelError(
        Code.INVALID_ARGUMENT,
        "VALIDATION-SMTP",
        "invalid request: " + "; ".join(m for _, m in details),
        details=details,
    )


def _flatten(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error structure -> ``{"field.sub": [messages]}``."""
    if isinstance(data, Mapping):
        out: dict[str, list[str]] = {}
        for key, value in data.items():
            name = "request" if key == "non_field_errors" else str(key)
            for k, v in _flatten(value, f"{prefix}.{name}" if prefix else name).items():
                out.setdefault(k, []).extend(v)
        return out
    if isinstance(data, list):
        out = {}
        for item in data:
            for k, v in _flatten(item, prefix).items():
                out.setdefault(k, []).extend(v)
        return out
    return {prefix or "request": [str(data)]}


def core_validation_error(exc: DjangoValidationError) -> ZitadelError:
    if not hasattr(exc, "error_dict"):
        return invalid_fields({"request": list(exc.messages)})
    errors: dict[str, list[str]] = {}
    for field, messages in exc.message_dict.items():
        name = CORE_TO_ZITADEL.get(field, field)
        errors.setdefault(name, []).extend(m for m in messages if m not in errors.get(name, []))
    return invalid_fields(errors)


def to_zitadel(exc: Exception) -> ZitadelError | None:
    """The ZITADEL error for ``exc``; ``None`` for what is not an API error at all."""
    if isinstance(exc, ZitadelError):
        return exc
    if isinstance(exc, DjangoValidationError):
        return core_validation_error(exc)
    if isinstance(exc, StateConflict):
        return ZitadelError(Code.FAILED_PRECONDITION, f"SMTP-{exc.code or 'State'}", exc.detail)
    if isinstance(exc, ServiceError):
        code = {404: Code.NOT_FOUND, 409: Code.ALREADY_EXISTS, 403: Code.PERMISSION_DENIED}.get(
            exc.status_code, Code.FAILED_PRECONDITION
        )
        return ZitadelError(code, f"SMTP-{exc.code or 'Refused'}", exc.detail)
    if isinstance(exc, ProtectedError):
        return ZitadelError(
            Code.FAILED_PRECONDITION, "SMTP-InUse", "The SMTP configuration is in use"
        )
    if isinstance(exc, IntegrityError):
        logger.info("integrity conflict: %s", type(exc).__name__)
        return ZitadelError(
            Code.ABORTED, "SMTP-Conflict", "The request conflicts with a concurrent change"
        )
    if isinstance(exc, exceptions.NotFound | Http404):
        return not_found()
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        message = plain_message(exc.detail, "Authentication credentials were not provided.")
        return ZitadelError(Code.UNAUTHENTICATED, "AUTH-Unauthenticated", message)
    if isinstance(exc, exceptions.PermissionDenied):
        return ZitadelError(
            Code.PERMISSION_DENIED, "AUTHZ-PermissionDenied", "No matching permissions found"
        )
    if isinstance(exc, exceptions.MethodNotAllowed):
        return ZitadelError(
            Code.UNIMPLEMENTED, "HTTP-MethodNotAllowed", "Method Not Allowed", http_status=405
        )
    if isinstance(exc, exceptions.Throttled):
        return ZitadelError(
            Code.RESOURCE_EXHAUSTED, "HTTP-Throttled", plain_message(exc.detail, "Throttled.")
        )
    if isinstance(exc, exceptions.ValidationError):
        return invalid_fields(_flatten(exc.detail))
    if isinstance(exc, exceptions.ParseError | exceptions.UnsupportedMediaType):
        return ZitadelError(
            Code.INVALID_ARGUMENT, "HTTP-Body", plain_message(exc.detail, "Malformed request.")
        )
    if isinstance(exc, exceptions.APIException):
        return ZitadelError(
            Code.INTERNAL if exc.status_code >= 500 else Code.INVALID_ARGUMENT,
            "HTTP-Request",
            plain_message(exc.detail, "Invalid request."),
            http_status=exc.status_code,
        )
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if is_database_unavailable(exc):
        return answer_unavailable(exc, unavailable().response())
    error = to_zitadel(exc)
    if error is None:
        return None
    response = error.response()
    auth_header = getattr(exc, "auth_header", None)  # set by DRF for 401s
    if auth_header:
        response["WWW-Authenticate"] = auth_header
    wait = getattr(exc, "wait", None)  # throttled
    if wait is not None:
        response["Retry-After"] = str(int(wait))
    return response
