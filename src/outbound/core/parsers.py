"""The JSON parsers every API shape uses: malformed or absurdly nested JSON is a 400, never a 500.

Python's ``json`` module recurses once per nesting level, so a body of 100,000 ``[`` raises
``RecursionError`` deep inside DRF; these parsers turn that (and any other decoding failure)
into DRF's ``ParseError``, which each shape's exception handler answers in its own format.
"""

from __future__ import annotations

import codecs
import json
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers

# Deeper than any document an API of ours accepts, far shallower than the interpreter's limit.
MAX_DEPTH = 64
TOO_DEEP = f"JSON parse error - the document is nested deeper than {MAX_DEPTH} levels."


def _refuse_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """True when containers nest deeper than ``limit`` (walked without recursion, so it costs
    one step per list or object, not per character of a large body)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def loads(text: str) -> Any:
    """Decode one JSON document as the APIs accept it (no NaN/Infinity, bounded depth)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise exceptions.ParseError(TOO_DEEP) from None
    except ValueError as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    if isinstance(value, dict | list) and _depth_exceeds(value):
        raise exceptions.ParseError(TOO_DEEP)
    return value


def decode(raw: bytes, parser_context: Any = None) -> Any:
    encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
    try:
        text = codecs.decode(raw, encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise exceptions.ParseError(f"JSON parse error - {exc}") from None
    return loads(text)


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser with :func:`loads`: bounded depth, no NaN, a ParseError otherwise."""

    def parse(
        self, stream: IO[Any], media_type: str | None = None, parser_context: Any = None
    ) -> Any:
        return decode(stream.read() if stream is not None else b"", parser_context)
