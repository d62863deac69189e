"""How ZITADEL's grpc-gateway reads a request body: as JSON, whatever the Content-Type says.

ZITADEL registers its JSON marshaler for ``*/*``, so ``curl -d '{…}'`` (which sends
``application/x-www-form-urlencoded``) works against it; so it does here. protojson refuses a
field that appears twice; the same key twice in one object is refused here the same way (the
proto and JSON names of one field are caught by :class:`.serializers.ProtoMessage`).
"""

from __future__ import annotations

import codecs
import io
import json
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions

from outbound.core.parsers import JSONParser


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise _DuplicateKey(key)
        seen.add(key)
    return dict(pairs)


def duplicate_field_error(name: str) -> exceptions.ParseError:
    """protojson's words for a field sent twice."""
    return exceptions.ParseError(f'duplicate field "{name}"')


class GatewayJSONParser(JSONParser):
    """Any media type, read as JSON with the core parser's limits (depth, no NaN, ParseError)."""

    media_type = "*/*"

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        raw = stream.read() if stream is not None else b""
        if not raw.strip():
            return {}  # grpc-gateway reads an empty body as the empty message
        value = super().parse(io.BytesIO(raw), media_type, parser_context)
        # The document is valid and shallow by now; a second pass finds repeated keys, which
        # the json module would otherwise resolve silently to the last one.
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            json.loads(codecs.decode(raw, encoding), object_pairs_hook=_refuse_duplicates)
        except _DuplicateKey as exc:
            raise duplicate_field_error(exc.key) from None
        return value
