"""Hitachi's error body in the OpenAPI document: ``{errorSource, message, messageID,
application}`` for every status the dialect's views answer (see
:mod:`outbound.core.api.schema`)."""

from outbound.core.api.schema import ErrorShape
from outbound.dialects.hitachi.serializers import HitachiErrorSerializer

# A database outage is Hitachi's 412, "The server is not available." (its seed's status table).
ERRORS = ErrorShape(
    body=HitachiErrorSerializer,
    unavailable=412,
    descriptions={
        412: "The server is not available (its database is restarting, or read-only): "
        "`Retry-After` says when to try again."
    },
)
