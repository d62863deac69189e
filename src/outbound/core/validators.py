"""Validators shared by every API shape: control characters, host names, address lists."""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

CONTROL_MESSAGE = "This field may not contain control characters."
HOST_MESSAGE = "Enter a valid host name or IP address."
EMAIL_MESSAGE = "Enter a valid email address."

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


MULTILINE_ALLOWED = frozenset("\n\r\t")


def has_control_characters(value: str, *, multiline: bool = False) -> bool:
    """Cc (C0/C1 incl. CR, LF, NUL), format characters and the Unicode line/paragraph
    separators; ``multiline`` text (descriptions) may hold line breaks and tabs."""
    return any(
        unicodedata.category(ch) in {"Cc", "Zl", "Zp", "Cf"}
        and not (multiline and ch in MULTILINE_ALLOWED)
        for ch in value
    )


def reject_control_characters(value: str, *, multiline: bool = False) -> None:
    if has_control_characters(value, multiline=multiline):
        raise ValidationError(CONTROL_MESSAGE, code="control_characters")


def validate_multiline_text(value: str) -> None:
    """Free text such as a description: line breaks are fine, other controls are not."""
    reject_control_characters(value, multiline=True)


def validate_host(value: str) -> None:
    reject_control_characters(value)
    literal = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    try:
        ipaddress.ip_address(literal)
        return
    except ValueError:
        pass
    name = value.rstrip(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.match(p) for p in name.split(".")):
        raise ValidationError(HOST_MESSAGE, code="invalid_host")


def validate_address(value: str) -> None:
    reject_control_characters(value)
    try:
        validate_email(value)
    except ValidationError as exc:
        raise ValidationError(EMAIL_MESSAGE, code="invalid_email") from exc


def split_addresses(value: str) -> list[str]:
    """``"a@x, b@y"`` -> ``["a@x", "b@y"]`` (empty items dropped)."""
    return [part.strip() for part in value.split(",") if part.strip()]
