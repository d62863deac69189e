"""PrivX error bodies ``{error_code, error_message, property, details}`` for every refusal."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from outbound.core.errors import (
    DATABASE_UNAVAILABLE,
    ServiceError,
    answer_unavailable,
    is_database_unavailable,
    plain_message,
)

logger = logging.getLogger(__name__)

GENERAL_ERROR = "GENERAL_ERROR"
BAD_REQUEST = "BAD_REQUEST"
PERMISSION_DENIED = "PERMISSION_DENIED"
INVALID_REQUEST_DATA = "INVALID_REQUEST_DATA"
REQUIRED_VALUE_MISSING = "REQUIRED_VALUE_MISSING"
VALUE_OUT_OF_BOUNDS = "VALUE_OUT_OF_BOUNDS"
VALUE_INCORRECT_TYPE = "VALUE_INCORRECT_TYPE"
VALUE_INCORRECT_FORMAT = "VALUE_INCORRECT_FORMAT"
CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
DATABASE_ERROR = "DATABASE_ERROR"
MAX_LOAD = "MAX_LOAD"

# Core field name -> PrivX settings key (fields PrivX has no key for keep their core name).
CORE_TO_PRIVX = {
    "host": "smtp_server",
    "port": "smtp_server_port",
    "security": "smtp_server_protocol",
    "username": "smtp_server_username",
    "password": "smtp_server_password",
    "sender_address": "smtp_sender_address",
}

# Validation codes (DRF's and Django's) -> PrivX error codes.
CODE_MAP = {
    "required": REQUIRED_VALUE_MISSING,
    "blank": REQUIRED_VALUE_MISSING,
    "null": VALUE_INCORRECT_TYPE,
    "invalid": VALUE_INCORRECT_TYPE,
    "not_a_dict": BAD_REQUEST,
    "max_length": VALUE_OUT_OF_BOUNDS,
    "min_length": VALUE_OUT_OF_BOUNDS,
    "max_value": VALUE_OUT_OF_BOUNDS,
    "min_value": VALUE_OUT_OF_BOUNDS,
    "invalid_choice": VALUE_OUT_OF_BOUNDS,
    "out_of_bounds": VALUE_OUT_OF_BOUNDS,
    "invalid_host": VALUE_INCORRECT_FORMAT,
    "invalid_email": VALUE_INCORRECT_FORMAT,
    "control_characters": VALUE_INCORRECT_FORMAT,
}
REQUIRED_MESSAGE = "This field is required."


def error(code: str, message: str, prop: str = "", details: list[Any] | None = None) -> dict:
    return {
        "error_code": code,
        "error_message": message,
        "property": prop,
        "details": details or [],
    }


def invalid(items: list[dict[str, Any]]) -> Response:
    """A 400 whose top level is the first error and whose ``details`` are all of them."""
    first = items[0]
    return Response(
        error(first["error_code"], first["error_message"], first["property"], items),
        status=status.HTTP_400_BAD_REQUEST,
    )


def drf_validation_items(detail: Any, prefix: str = "") -> list[dict[str, Any]]:
    """Flatten a DRF ``ValidationError.detail`` (ErrorDetails carry their codes)."""
    items: list[dict[str, Any]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else key
            items += drf_validation_items(value, f"{prefix}.{name}" if prefix else name)
    elif isinstance(detail, list):
        for value in detail:
            items += drf_validation_items(value, prefix)
    else:
        code = CODE_MAP.get(str(getattr(detail, "code", "")), INVALID_REQUEST_DATA)
        if not prefix and code == VALUE_INCORRECT_TYPE:
            code = BAD_REQUEST  # the body itself is not a settings object
        items.append(error(code, str(detail), prefix))
    return items


def core_validation_items(exc: DjangoValidationError) -> list[dict[str, Any]]:
    """Core (model/service) validation errors under PrivX keys and error codes."""
    items: list[dict[str, Any]] = []
    errors = exc.error_dict if hasattr(exc, "error_dict") else {"": exc.error_list}
    for field, errs in errors.items():
        prop = CORE_TO_PRIVX.get(field, "" if field == "__all__" else field)
        for err in errs:
            for message in err.messages:
                if err.code in ("required", "blank", "null"):
                    code = REQUIRED_VALUE_MISSING  # the model's way of saying "missing"
                elif err.code in CODE_MAP:
                    code = CODE_MAP[err.code]
                elif message == REQUIRED_MESSAGE or field == "password":
                    code = REQUIRED_VALUE_MISSING  # e.g. "enter the password again"
                elif field == "authentication_object":
                    code = CONFIGURATION_ERROR  # saved-only Microsoft credentials
                else:
                    code = INVALID_REQUEST_DATA
                items.append(error(code, message, prop))
    return items


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """Every exception a PrivX view raises, as a PrivX error body (never a secret, never HTML)."""
    headers: dict[str, str] = {}
    if is_database_unavailable(exc):
        body = error(DATABASE_ERROR, DATABASE_UNAVAILABLE)
        return answer_unavailable(exc, Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE))
    if isinstance(exc, exceptions.ValidationError):
        return invalid(drf_validation_items(exc.detail) or [error(BAD_REQUEST, "Invalid data.")])
    if isinstance(exc, DjangoValidationError):
        return invalid(core_validation_items(exc))
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        auth_header = getattr(exc, "auth_header", None)
        if auth_header:
            headers["WWW-Authenticate"] = auth_header
        code = status.HTTP_401_UNAUTHORIZED if auth_header else status.HTTP_403_FORBIDDEN
        missing = "OAuth2 authorization missing or invalid."
        # The authentication layer's one sentence (expired, malformed, …), never a structure.
        message = (
            missing
            if isinstance(exc, exceptions.NotAuthenticated)
            else plain_message(exc.detail, missing)
        )
        return Response(error(GENERAL_ERROR, message), status=code, headers=headers)
    if isinstance(exc, exceptions.PermissionDenied):
        message = plain_message(exc.detail, "Insufficient scope.")
        return Response(error(PERMISSION_DENIED, message), status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, exceptions.NotFound | Http404):
        return Response(error(GENERAL_ERROR, "Not found."), status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, exceptions.Throttled):
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait))
        message = plain_message(exc.detail, "Too many requests.")
        return Response(error(MAX_LOAD, message), status=exc.status_code, headers=headers)
    if isinstance(exc, exceptions.APIException):  # ParseError, UnsupportedMediaType, 405, …
        message = plain_message(exc.detail, "Bad request.")
        error_code = GENERAL_ERROR if exc.status_code >= 500 else BAD_REQUEST
        return Response(error(error_code, message), status=exc.status_code)
    if isinstance(exc, ServiceError):
        return Response(error(CONFIGURATION_ERROR, exc.detail), status=exc.status_code)
    if isinstance(exc, IntegrityError):
        logger.info("integrity conflict: %s", type(exc).__name__)
        return Response(
            error(DATABASE_ERROR, "The request conflicts with a concurrent change; please retry."),
            status=status.HTTP_409_CONFLICT,
        )
    logger.exception("unexpected error in the PrivX dialect")
    return Response(
        error(GENERAL_ERROR, "Internal server error."),
        status=status.HTTP_500_INTERNAL_SERVER_ERROR,
    )
