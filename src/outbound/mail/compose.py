"""Building the RFC 5322 message for an outbox row, with the ``email`` package's SMTP policy.

Every header value is checked for control characters before it is set, and the finished
message is parsed back and compared with what was meant: a header can never smuggle another
header (CR, LF, NUL, U+2028, or newlines hidden in an encoded word).
"""

from __future__ import annotations

import email
import email.parser
import re
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, EmailPolicy
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from typing import Any

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
NO_SENDER_DOMAIN = "outbound.invalid"  # RFC 2606: never a real domain


class UnsafeMessage(ValueError):
    """The message would not read back as it was meant: refused, never sent."""


class _SmtpPolicy(EmailPolicy):
    """The ``email`` package's SMTP policy, except that address headers (From, To, Cc,
    Reply-To) are folded one mailbox at a time, one mailbox per line.

    Python 3.11's folder mangles address lists at line breaks: the comma after a non-ASCII
    display name can become an encoded word (swallowing the next address), and a quoted
    display name that has to be folded loses its quotes (so ``"Smith, John" <j@…>`` turns
    into two addresses). ``verify`` would refuse such a message, so it could never be sent.
    Folded on its own, a mailbox has no comma for the folder to mangle; one that still does
    not read back (a long quoted name) gets its display name as encoded words instead.
    """

    ADDRESS_HEADERS = frozenset({"from", "to", "cc", "reply-to"})

    def fold(self, name: str, value: Any) -> str:
        folded = self._fold_mailboxes(name, value)
        return folded if folded is not None else super().fold(name, value)

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = self._fold_mailboxes(name, value)
        if folded is None:
            return super().fold_binary(name, value)
        return folded.encode("ascii", "surrogateescape")

    def _fold_mailboxes(self, name: str, value: Any) -> str | None:
        addresses = getattr(value, "addresses", None)
        groups = getattr(value, "groups", ())
        if name.lower() not in self.ADDRESS_HEADERS or not addresses or not self.max_line_length:
            return None
        if self.utf8 or any(g.display_name is not None for g in groups):
            return None  # group syntax, or no encoded words needed: the standard folder
        # One column less, for the comma that follows each mailbox but the last.
        narrow = self.clone(max_line_length=self.max_line_length - 1)
        parts = []
        for address in addresses:
            part = self._fold_mailbox(name, address, narrow)
            if part is None:
                return None  # leave it to the standard folder (and verify)
            parts.append(part)
        rest = "".join(f",{self.linesep} {part.lstrip()}" for part in parts[1:])
        return f"{name}:{parts[0]}{rest}{self.linesep}"

    def _fold_mailbox(self, name: str, address: Address, narrow: EmailPolicy) -> str | None:
        """The folded text of one mailbox (after ``Name:``), or None."""
        folded = self.header_factory(name, str(address)).fold(policy=narrow)
        if folded.startswith(f"{name}:") and folded.endswith(self.linesep):
            text = folded[len(name) + 1 : -len(self.linesep)]
            if self._reads_back(name, text, address):
                return text
        if address.display_name:
            words = Header(
                address.display_name, "utf-8", narrow.max_line_length, header_name=name
            ).encode(linesep=self.linesep)
            text = f" {words}{self.linesep} <{address.addr_spec}>"
            if self._reads_back(name, text, address):
                return text
        return None

    def _reads_back(self, name: str, text: str, address: Address) -> bool:
        parsed = self.header_factory(name, text.replace(self.linesep, ""))
        got: Any = getattr(parsed, "addresses", ())
        return len(got) == 1 and got[0].addr_spec == address.addr_spec


POLICY = _SmtpPolicy(linesep="\r\n")  # email.policy.SMTP, with the folding above


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
    """``addr@example.com`` or ``Name <addr@example.com>``; returns it normalised, with the
    display name kept readable (it is encoded when the message is built, not before)."""
    if has_control_characters(value) or ("=?" in value and "?=" in value):
        raise ValidationError("Enter a valid email address.")
    if len(getaddresses([value])) != 1:
        raise ValidationError("Enter a valid email address.")
    name, addr = parseaddr(value)
    if not addr:
        raise ValidationError("Enter a valid email address.")
    if not addr.isascii():
        # No SMTPUTF8 / IDNA here: such an address could be accepted but never sent.
        raise ValidationError(
            "Enter a valid email address (internationalised addresses are not supported)."
        )
    validate_address(addr)
    if not name:
        return addr
    try:
        normalised = str(Address(display_name=name, addr_spec=addr))
    except (ValueError, IndexError) as exc:
        raise ValidationError("Enter a valid email address.") from exc
    if parseaddr(normalised) != (name, addr):
        raise ValidationError("Enter a valid email address.")
    return normalised


# RFC 6838 restricted-name, for both halves of ``type/subtype`` (no parameters).
_MEDIA_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_CONTENT_TYPE = re.compile(rf"{_MEDIA_NAME}/{_MEDIA_NAME}")
# An RFC 5322 msg-id without its angle brackets: dot-atom text, ``@``, dot-atom text.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_CONTENT_ID = re.compile(rf"{_ATOM}@{_ATOM}")
MAX_FILENAME = 255


@dataclass(frozen=True)
class Attachment:
    """One attachment as it goes into the message; ``content_id`` makes it inline."""

    filename: str
    content_type: str
    content: bytes
    content_id: str = ""


def clean_filename(value: str) -> str:
    """A file's name as a mail client will save it: no directories, no control characters
    (non-ASCII is fine: it is encoded per RFC 2231 when the message is built)."""
    if not value or not value.strip():
        raise ValidationError("The filename may not be blank.")
    if len(value) > MAX_FILENAME:
        raise ValidationError(f"The filename may not exceed {MAX_FILENAME} characters.")
    if has_control_characters(value):
        raise ValidationError("The filename may not contain control characters.")
    if "/" in value or "\\" in value or value in (".", ".."):
        raise ValidationError("The filename may not contain path separators (/ or \\).")
    if "=?" in value and "?=" in value:
        raise ValidationError("The filename may not contain encoded words (=?…?=).")
    return value


def clean_content_type(value: str) -> str:
    """``type/subtype``, lower-cased; multipart and message types are Outbound's to build."""
    if not _CONTENT_TYPE.fullmatch(value):
        raise ValidationError(
            'Enter a media type as "type/subtype", such as "application/pdf" (no parameters).'
        )
    value = value.lower()
    if value.split("/")[0] in ("multipart", "message"):
        raise ValidationError("multipart/* and message/* types cannot be attached.")
    return value


def clean_content_id(value: str) -> str:
    """``part@domain`` (angle brackets optional), as ``cid:part@domain`` refers to it."""
    if value.startswith("<") and value.endswith(">"):
        value = value[1:-1]
    if len(value) > 200 or not _CONTENT_ID.fullmatch(value):
        raise ValidationError('Enter a content ID such as "logo@example.com".')
    return value


def _checked(cleaner: Any, value: str, what: str) -> str:
    """A cleaner's verdict for :func:`build`: refuse (UnsafeMessage), never repair."""
    try:
        return str(cleaner(value))
    except ValidationError as exc:
        raise UnsafeMessage(f"{what}: {exc.messages[0]}") from None


def envelope_address(mailbox: str) -> str:
    return parseaddr(mailbox)[1]


def envelope_sender(sender_address: str, username: str) -> str:
    """The address mail goes out from: the sender address, else a user name that is one."""
    return sender_address or (username if "@" in username else "")


def new_message_id(sender: str) -> str:
    """``<unique@domain>`` in the sender address's domain (a machine's short host name is
    refused by strict servers); ``outbound.invalid`` while there is no sender address."""
    domain = envelope_address(sender).rpartition("@")[2].strip("[]") if sender else ""
    return make_msgid(domain=domain or NO_SENDER_DOMAIN)


def build(**fields: Any) -> EmailMessage:
    """The message, checked (see :func:`render`)."""
    return _build(**fields)[0]


def render(**fields: Any) -> bytes:
    """The message as it goes on the wire, checked: serialised once, parsed back once."""
    return _build(**fields)[1]


def _build(
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
    attachments: list[Attachment] | tuple[Attachment, ...] = (),
) -> tuple[EmailMessage, bytes]:
    # Whatever the caller checked, build checks again: it is the last step before the wire.
    sender = _checked(clean_mailbox, sender, "sender")
    sender_name = _checked(clean_header_value, sender_name, "sender name")
    to = [_checked(clean_mailbox, m, "to") for m in to]
    cc = [_checked(clean_mailbox, m, "cc") for m in cc]
    reply_to = _checked(clean_mailbox, reply_to, "reply-to") if reply_to else ""
    subject = _checked(clean_header_value, subject, "subject")
    message_id = _checked(clean_header_value, message_id, "message-id")
    headers = {
        _checked(clean_header_name, n, "header name"): _checked(clean_header_value, v, "header")
        for n, v in headers.items()
    }
    msg = EmailMessage(policy=POLICY)
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
    _attach(msg, attachments, has_html=bool(html))
    raw = msg.as_bytes()
    verify(
        raw,
        expected_headers={n.lower() for n in headers},
        to=to,
        cc=cc,
        sender=sender,
        reply_to=reply_to,
    )
    return msg, raw


def _attach(msg: EmailMessage, attachments: Any, *, has_html: bool) -> None:
    """Inline parts join the html in a multipart/related; the rest make the message
    multipart/mixed. Filenames go out per RFC 2231 when they are not ASCII (the policy's
    parameter folding), contents in base64."""
    for part in attachments:
        filename = _checked(clean_filename, part.filename, "attachment filename")
        maintype, subtype = _checked(clean_content_type, part.content_type, "attachment").split("/")
        if part.content_id:
            if not has_html:
                raise UnsafeMessage("an inline attachment needs an html body")
            cid = _checked(clean_content_id, part.content_id, "attachment content ID")
            html = msg.get_body(("related", "html"))
            assert html is not None  # set above: the message has an html body
            html.add_related(
                part.content, maintype, subtype, cid=f"<{cid}>", filename=filename,
                disposition="inline",
            )  # fmt: skip
        else:
            msg.add_attachment(part.content, maintype, subtype, filename=filename)


def verify(
    raw: bytes,
    *,
    expected_headers: set[str],
    to: list[str],
    cc: list[str],
    sender: str | None = None,
    reply_to: str | None = None,
) -> None:
    """Parse the serialised message back: the same headers, the same recipients (and
    sender and reply address, when given), no Bcc."""
    # Only the header section matters here; the body is not re-parsed.
    parsed = email.parser.BytesParser(policy=SMTP).parsebytes(raw, headersonly=True)
    names = {k.lower() for k in parsed}
    allowed = {
        "from", "to", "cc", "reply-to", "subject", "date", "message-id", "auto-submitted",
        "mime-version", "content-type", "content-transfer-encoding",
    } | expected_headers  # fmt: skip
    if not names <= allowed or "bcc" in names:
        raise UnsafeMessage("the message would carry headers that were not asked for")
    addresses = {"to": to, "cc": cc}
    if sender is not None:
        addresses["from"] = [sender]
    if reply_to is not None:  # "" means: no Reply-To at all
        addresses["reply-to"] = [reply_to] if reply_to else []
    for header, wanted in addresses.items():
        got = [a for _, a in getaddresses(parsed.get_all(header, []))]
        if got != [envelope_address(m) for m in wanted]:
            raise UnsafeMessage(f"the {header} header would not read back as given")
    for value in parsed.values():
        if "\r" in str(value) or "\n" in str(value) or "\0" in str(value):
            raise UnsafeMessage("a header would read back with a line break")
