"""Building the RFC 5322 message for an outbox row, with the ``email`` package's SMTP policy.

Every header value is checked for control characters before it is set, and the finished
message is parsed back and compared with what was meant: a header can never smuggle another
header (CR, LF, NUL, U+2028, or newlines hidden in an encoded word).
"""

from __future__ import annotations

import email
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, getaddresses, parseaddr

from django.core.exceptions import ValidationError
from django.utils import timezone

from outbound.core.validators import has_control_characters, validate_address

# Headers Outbound writes itself; callers may not set them through ``headers``.
RESERVED_HEADERS = frozenset(
    h.lower()
    for h in (
        "From", "To", "Cc", "Bcc", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
        "MIME-Version", "Content-Type", "Content-Transfer-Encoding", "Return-Path",
        "Received", "Auto-Submitted", "DKIM-Signature",
    )
)  # fmt: skip
MAX_HEADER_VALUE = 998


class UnsafeMessage(ValueError):
    """The message would not read back as it was meant: refused, never sent."""


def clean_header_name(name: str) -> str:
    if not name or len(name) > 76 or any(not (33 <= ord(c) <= 126) or c == ":" for c in name):
        raise ValidationError(f'"{name[:40]}" is not a valid header name.')
    if name.lower() in RESERVED_HEADERS:
        raise ValidationError(f'"{name}" is set by Outbound and cannot be given.')
    return name


def clean_header_value(value: str) -> str:
    if has_control_characters(value):
        raise ValidationError("Header values may not contain control characters.")
    if "=?" in value and "?=" in value:
        # Encoded words are Outbound's job (non-ASCII is encoded as needed); pre-encoded ones
        # could hide line breaks that appear only once decoded.
        raise ValidationError("Header values may not contain encoded words (=?…?=).")
    if len(value) > MAX_HEADER_VALUE:
        raise ValidationError(f"Header values may not exceed {MAX_HEADER_VALUE} characters.")
    return value


def clean_mailbox(value: str) -> str:
    """``addr@example.com`` or ``Name <addr@example.com>``; returns it normalised."""
    if has_control_characters(value) or ("=?" in value and "?=" in value):
        raise ValidationError("Enter a valid email address.")
    if len(getaddresses([value])) != 1:
        raise ValidationError("Enter a valid email address.")
    name, addr = parseaddr(value)
    if not addr:
        raise ValidationError("Enter a valid email address.")
    validate_address(addr)
    return formataddr((name, addr)) if name else addr


def envelope_address(mailbox: str) -> str:
    return parseaddr(mailbox)[1]


def build(
    *,
    sender: str,
    sender_name: str,
    to: list[str],
    cc: list[str],
    subject: str,
    text: str,
    html: str,
    reply_to: str,
    headers: dict[str, str],
    message_id: str,
    auto_submitted: bool = False,
) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(display_name=sender_name, addr_spec=sender) if sender_name else sender
    if to:
        msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    if reply_to:
        msg["Reply-To"] = reply_to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(timezone.now())
    msg["Message-ID"] = message_id
    if auto_submitted:
        msg["Auto-Submitted"] = "auto-generated"
    for name, value in headers.items():
        msg[name] = value
    if html:
        msg.set_content(text or " ")
        msg.add_alternative(html, subtype="html")
    else:
        msg.set_content(text)
    verify(msg, expected_headers={n.lower() for n in headers}, to=to, cc=cc)
    return msg


def verify(msg: EmailMessage, *, expected_headers: set[str], to: list[str], cc: list[str]) -> None:
    """Parse the serialised message back: the same headers, the same recipients, no Bcc."""
    parsed = email.message_from_bytes(msg.as_bytes(), policy=SMTP)
    names = {k.lower() for k in parsed}
    allowed = {
        "from", "to", "cc", "reply-to", "subject", "date", "message-id", "auto-submitted",
        "mime-version", "content-type", "content-transfer-encoding",
    } | expected_headers  # fmt: skip
    if not names <= allowed or "bcc" in names:
        raise UnsafeMessage("the message would carry headers that were not asked for")
    for header, wanted in (("to", to), ("cc", cc)):
        got = [a for _, a in getaddresses(parsed.get_all(header, []))]
        if got != [envelope_address(m) for m in wanted]:
            raise UnsafeMessage(f"the {header} header would not read back as given")
    for value in parsed.values():
        if "\r" in str(value) or "\n" in str(value) or "\0" in str(value):
            raise UnsafeMessage("a header would read back with a line break")
