"""PrivX's error body in the OpenAPI document: ``{error_code, error_message, property,
details}`` for every status the dialect's views answer (see :mod:`outbound.core.api.schema`)."""

from outbound.core.api.schema import ErrorShape
from outbound.dialects.privx.serializers import PrivxErrorSerializer

ERRORS = ErrorShape(
    body=PrivxErrorSerializer,
    descriptions={
        400: "Bad request",
        401: "Unauthorized request, OAuth2 authorization missing or invalid",
        403: "Unauthorized request, OAuth2 authorization OK but scope insufficient",
        415: "Unsupported media type: PrivX's API takes JSON",
        429: "Too many tests (MAX_LOAD)",
        503: "Service unavailable: the database is restarting or read-only (DATABASE_ERROR); "
        "`Retry-After` says when to try again",
    },
)
