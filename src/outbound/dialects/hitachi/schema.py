"""Hitachi's error body in the OpenAPI document: ``{errorSource, message, messageID,
application}`` for every status the dialect's views answer (see
:mod:`outbound.core.api.schema`)."""

from outbound.core.api.schema import ErrorShape
from outbound.dialects.hitachi.serializers import HitachiErrorSerializer

ERRORS = ErrorShape(body=HitachiErrorSerializer)
