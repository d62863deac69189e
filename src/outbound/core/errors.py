"""Error bodies: one exception handler so services can raise and every API answers cleanly."""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

CONFLICT_MESSAGE = "The request conflicts with a concurrent change; please retry."


class ServiceError(Exception):
    """A refusal from a service that maps to an HTTP status with a ``detail`` message."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        if status_code is not None:
            self.status_code = status_code


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT


def plain_message(detail: Any, default: str) -> str:
    """The first human sentence in a DRF error ``detail`` (a string, or a list or dictionary
    of them, as libraries raise), never a repr of the structure; ``default`` when none."""
    if isinstance(detail, dict):
        # A library's dictionary names its message "detail"; its other keys are internals.
        detail = detail.get("detail", next(iter(detail.values()), None))
    if isinstance(detail, list | tuple):
        detail = detail[0] if detail else None
    if isinstance(detail, dict | list | tuple):
        return plain_message(detail, default)
    return str(detail) if isinstance(detail, str) and detail.strip() else default


def plain_auth_error(exc: Exception) -> Exception:
    """``exc`` with a one-sentence ``detail`` when it is a 401 whose detail is a structure."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and not (
        isinstance(exc.detail, str)
    ):
        exc.detail = exceptions.ErrorDetail(
            plain_message(exc.detail, str(exceptions.AuthenticationFailed.default_detail)),
            code="authentication_failed",
        )
    return exc


def validation_error_body(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {
            field: [m for e in errs for m in e.messages] for field, errs in exc.error_dict.items()
        }
    return {"non_field_errors": exc.messages}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = plain_auth_error(exc)
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.code:
            body["error_code"] = exc.code
        return Response(body, status=exc.status_code)
    if isinstance(exc, ProtectedError):
        return Response(
            {"detail": "This object is in use and cannot be deleted."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        # A race lost against a database constraint: the client can retry; nothing was written.
        logger.info("integrity conflict: %s", type(exc).__name__)
        return Response(
            {"detail": CONFLICT_MESSAGE},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.NotFound | Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)
