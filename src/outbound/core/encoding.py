"""Translations more than one dialect needs."""

from __future__ import annotations

import base64
import binascii

INVALID_BASE64 = "The password is not valid base64."


class InvalidBase64(ValueError):
    pass


def decode_base64_text(value: str) -> str:
    """A base64-encoded UTF-8 password (Hitachi, Commvault) in clear; strict."""
    try:
        return base64.b64decode(value.encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError) as exc:
        raise InvalidBase64(INVALID_BASE64) from exc


def split_host_port(value: str) -> tuple[str, int]:
    """``host:port`` (IPv6 as ``[::1]:25``) -> (host, port); ValueError when malformed."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError("host must be host:port")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("host must be host:port")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("an IPv6 host must be written [address]:port")
    number = int(port)
    if not 0 < number <= 65535:
        raise ValueError("port out of range")
    return host, number


def join_host_port(host: str, port: int | None) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port is not None else shown
