"""Commvault's error body ``{"errorMessage", "errorCode"}`` for every refusal of the dialect."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from outbound.core.errors import exception_handler as core_exception_handler
from outbound.dialects.commvault.serializers import core_error_message, error_message, result


def commvault_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Every refusal as ``{"errorMessage", "errorCode"}`` with ``errorCode`` = the HTTP status."""
    if isinstance(exc, exceptions.ValidationError):
        code = status.HTTP_400_BAD_REQUEST
        return Response(result(error_message(exc.detail), code), status=code)
    if isinstance(exc, DjangoValidationError):
        code = status.HTTP_400_BAD_REQUEST
        return Response(result(core_error_message(exc), code), status=code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = core_exception_handler(exc, context)
    if response is None:
        return None  # not a refusal but a bug: let it surface (and be logged) as such
    data = response.data
    detail = data.get("detail", data) if isinstance(data, dict) else data
    response.data = result(error_message(detail), response.status_code)
    return response
