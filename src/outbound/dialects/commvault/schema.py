"""Commvault's error body in the OpenAPI document: ``{errorMessage, errorCode}`` for every
status the dialect's views answer (see :mod:`outbound.core.api.schema`)."""

from outbound.core.api.schema import ErrorShape
from outbound.dialects.commvault.serializers import CommvaultResultSerializer

ERRORS = ErrorShape(
    body=CommvaultResultSerializer,
    descriptions={
        400: "Bad Request",
        401: "Unauthorized",
        403: "Forbidden: the key lacks the permission",
        415: "Unsupported Media Type: Commvault's API takes JSON",
        429: "Too many tests: `Retry-After` says when to try again",
        503: "Service Unavailable: the database is restarting or read-only; "
        "`Retry-After` says when to try again",
    },
)
