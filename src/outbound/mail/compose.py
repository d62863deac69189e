"""Building the RFC 5322 message for an outbox row, with the ``email`` package's SMTP policy.

Every header value is checked for control characters before it is set, and the finished
message is parsed back and compared with what was meant: a header can never smuggle another
header (CR, LF, NUL, U+2028, or newlines hidden in an encoded word).

:func:`render` (the worker's path) writes the common shapes directly: the same bytes the
``email`` package would write (the tests compare them), at a small fraction of the CPU. What
it does not know how to write exactly, it leaves to the ``email`` package (see
:func:`_render_direct`).
"""

from __future__ import annotations

import binascii
import email
import email.contentmanager
import email.generator
import email.parser
import email.utils
import functools
import random
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.header import Header
from email.headerregistry import Address, UnstructuredHeader
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

# The plain forms that most mailboxes and header values take, which every parser reads the
# same way and the ``email`` package writes unchanged (the tests hold it to that): atoms
# without "?" (so never an encoded word), single spaces, printable ASCII.
_ATOM_CHARS = r"[A-Za-z0-9!#$%&'*+/=^_`{|}~-]"
_SIMPLE_ADDR = rf"{_ATOM_CHARS}+(?:\.{_ATOM_CHARS}+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_SIMPLE_NAME = r"[A-Za-z0-9!#$%&'*+/^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/^_`{|}~-]+)*"
_SIMPLE_MAILBOX = re.compile(
    rf"(?:{_SIMPLE_NAME} <(?P<addr>{_SIMPLE_ADDR})>|(?P<bare>{_SIMPLE_ADDR}))"
)
_SIMPLE_ADDR_RE = re.compile(_SIMPLE_ADDR)


def _simple_addr(match: re.Match[str]) -> str:
    return match["addr"] or match["bare"]


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


def _has_controls(value: str) -> bool:
    """:func:`has_control_characters`, answered at once for printable ASCII (the usual
    case): in ASCII only the Cc characters are control characters, and those are exactly
    what ``isprintable`` refuses."""
    return not (value.isascii() and value.isprintable()) and has_control_characters(value)


def clean_header_name(name: str) -> str:
    if not name or len(name) > 76 or any(not (33 <= ord(c) <= 126) or c == ":" for c in name):
        raise ValidationError(f'"{name[:40]}" is not a valid header name.')
    if name.lower() in RESERVED_HEADERS:
        raise ValidationError(f'"{name}" is set by Outbound and cannot be given.')
    return name


def clean_header_value(value: str) -> str:
    if _has_controls(value):
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
    simple = _SIMPLE_MAILBOX.fullmatch(value)
    if simple:
        # A bare address or ``Name <address>`` of atoms alone: parsing it and printing it
        # back give it unchanged (tests/mail/test_compose_fast.py compares the two ways),
        # so only the address's own validation is left to do.
        validate_address(_simple_addr(simple))
        return value
    return _clean_parsed_mailbox(value)


def _clean_parsed_mailbox(value: str) -> str:
    """:func:`clean_mailbox` the long way: parsed, validated, printed and parsed again."""
    if _has_controls(value) or ("=?" in value and "?=" in value):
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
    if _has_controls(value):
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
    """The message as it goes on the wire, checked: the same bytes and the same checks as
    ``build(...).as_bytes()``. The usual shapes are written directly (:func:`_render_direct`);
    the rest, and anything the direct path is unsure of, are built by the ``email`` package."""
    date = format_datetime(timezone.now())
    try:
        raw = _render_direct(date=date, **fields)
    except Exception:  # whatever it is, the email package's path meets it as it always did
        raw = None
    return raw if raw is not None else _build(date=date, **fields)[1]


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
    attachments: Sequence[Attachment] = (),
    date: str = "",
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
    msg["Date"] = date or format_datetime(timezone.now())
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


# --- render: the usual shapes, written directly ----------------------------------------------
#
# ``_build`` builds an ``EmailMessage``, serialises it and parses its header section back:
# some 1.5 ms for a one-line notice, most of it in the ``email`` package's header objects
# (each a new class, each value parsed and folded). The worker only needs the bytes, so
# ``_render_direct`` writes them, part by part, exactly as the ``email`` package would:
#
# - values the package writes unchanged (see ``_literal``) are written as they are; every
#   other header is folded by the package itself (``POLICY``), one header at a time, cached;
# - bodies are encoded by the package's own ``_encode_text`` (7bit / 8bit / quoted-printable
#   / base64, as ``set_content`` picks), attachments in base64 lines of 76;
# - boundaries are drawn as the package's generator draws them, in the same order;
# - the header section is read back as ``verify`` reads it (``_head_reads_back``).
#
# Whatever it cannot write with certainty it leaves to ``_build`` (returns None).

_MAX_LINE = POLICY.max_line_length or 0  # 78: the package folds header lines longer than this
_STRUCTURED = frozenset(
    name
    for name, kind in POLICY.header_factory.registry.items()  # type: ignore[attr-defined]
    if not issubclass(kind, UnstructuredHeader)  # Subject is unstructured, Date is not
)
_UNSTRUCTURED = re.compile(r"[!-~]+(?: [!-~]+)*")  # printable ASCII words, single spaces
_MESSAGE_ID = re.compile(rf"<{_ATOM}@{_ATOM}>")
_SIMPLE_FILENAME = re.compile(r"[A-Za-z0-9._+-]+(?: [A-Za-z0-9._+-]+)*")
_NEWLINES = re.compile(r"\r\n|\r|\n")  # email.generator.NLCRE: how the generator ends lines
# A header field as email.feedparser reads one: a name (headerRE), ":", the value with its
# leading blanks dropped, and continuation lines (starting with a blank); CRLF only.
_HEAD_FIELD = re.compile(rb"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)\r\n")
_HEAD = re.compile(rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*")
_PLAIN_BYTES = re.compile(rb"[ -~]*")
_ANY_SIMPLE_MAILBOX = rf"(?:{_SIMPLE_NAME} <{_SIMPLE_ADDR}>|{_SIMPLE_ADDR})"
_SIMPLE_MAILBOX_LIST = re.compile(rf"{_ANY_SIMPLE_MAILBOX}(?:, {_ANY_SIMPLE_MAILBOX})*")
# The generator's boundary: 15 "=", 19 digits, "==" (and ".N" if it occurs in the text).
_STANDARD_BOUNDARY = re.compile(r"={15}[0-9]{19}==")
_SAMPLE_BOUNDARY = "=" * 15 + "0" * 19 + "=="
_ENCODE_TEXT: Callable[[str, str, str | None, EmailPolicy], tuple[str, str]] = vars(
    email.contentmanager
)["_encode_text"]  # what EmailMessage.set_content uses to pick and apply the encoding
_BOUNDARY_DIGITS = f"%0{len(repr(sys.maxsize - 1))}d"  # email.generator._fmt
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")
_VERIFIED_HEADERS = frozenset(
    {"from", "to", "cc", "reply-to", "subject", "date", "message-id", "auto-submitted",
     "mime-version", "content-type", "content-transfer-encoding"}
)  # fmt: skip


# The same mailboxes come back (the sender, a reply address, regular recipients); a refused
# one raises each time (only results are cached).
_clean_mailbox = functools.lru_cache(maxsize=1024)(clean_mailbox)


def _fold(name: str, value: str | Address) -> bytes:
    """The header as the ``email`` package writes it in ``msg.as_bytes()``."""
    return POLICY.fold_binary(name, POLICY.header_store_parse(name, value)[1])


_fold_cached = functools.lru_cache(maxsize=512)(_fold)


def _literal(name: str, value: str) -> bytes | None:
    """``Name: value`` when the package would write exactly that: an unstructured header
    (or one of the structured ones whose value the caller has checked) of printable ASCII
    words, single-spaced, no encoded word, on one line."""
    if len(name) + 2 + len(value) > _MAX_LINE or "=?" in value:
        return None
    if not _UNSTRUCTURED.fullmatch(value):
        return None
    return f"{name}: {value}\r\n".encode("ascii")


def _unstructured(name: str, value: str) -> bytes:
    if name.lower() not in _STRUCTURED:
        literal = _literal(name, value)
        if literal is not None:
            return literal
    return _fold_cached(name, value)


def _mailboxes(name: str, mailboxes: list[str]) -> bytes:
    """An address header, as ``_SmtpPolicy`` folds it: one mailbox per line."""
    # The package folds each mailbox as if it stood alone after "Name: ", one column short
    # (for the comma): one that fits is written unchanged.
    if all(_SIMPLE_MAILBOX.fullmatch(m) and len(name) + 2 + len(m) < _MAX_LINE for m in mailboxes):
        return (name + ": " + ",\r\n ".join(mailboxes) + "\r\n").encode("ascii")
    return _fold_cached(name, ", ".join(mailboxes))


@functools.lru_cache(maxsize=64)
def _from_with_name(display_name: str, addr: str) -> bytes:
    if _SIMPLE_MAILBOX.fullmatch(f"{display_name} <{addr}>"):
        return _mailboxes("From", [f"{display_name} <{addr}>"])
    return _fold("From", Address(display_name=display_name, addr_spec=addr))


@functools.lru_cache(maxsize=4)  # one a second
def _date(date: str) -> bytes:
    """The Date header; written as given when the package would write it so: it rewrites the
    value as ``format_datetime`` of what it reads."""
    if date == format_datetime(email.utils.parsedate_to_datetime(date)):
        literal = _literal("Date", date)
        if literal is not None:
            return literal
    return _fold("Date", date)


def _multipart_type(subtype: str, boundary: str) -> bytes:
    """``Content-Type: multipart/…; boundary="…"``, folded as the package folds it (the fold of
    a standard boundary depends on its length only, so it is computed once per subtype)."""
    if _STANDARD_BOUNDARY.fullmatch(boundary):
        template = _fold_cached(
            "Content-Type", f'multipart/{subtype}; boundary="{_SAMPLE_BOUNDARY}"'
        )
        return template.replace(_SAMPLE_BOUNDARY.encode(), boundary.encode())
    return _fold("Content-Type", f'multipart/{subtype}; boundary="{boundary}"')


def _make_boundary(text: bytes) -> str:
    """``BytesGenerator._make_boundary``: the same draw from ``random``, the same boundary,
    without compiling a pattern for it unless the text holds ``--`` and the boundary."""
    boundary = "=" * 15 + _BOUNDARY_DIGITS % random.randrange(sys.maxsize) + "=="
    candidate, counter = boundary, 0
    while (b"--" + candidate.encode("ascii")) in text:
        pattern = b"^--" + re.escape(candidate.encode("ascii")) + b"(--)?$"
        if not re.search(pattern, text, re.MULTILINE):
            break
        candidate, counter = f"{boundary}.{counter}", counter + 1
    return candidate


def _multipart(headers: list[bytes], subtype: str, parts: list[bytes]) -> bytes:
    """A multipart entity as the generator writes it; ``headers`` go before Content-Type.
    The boundary is drawn as the generator draws it, after the parts are written."""
    boundary = _make_boundary(b"\r\n".join(parts))
    dash = b"--" + boundary.encode("ascii")
    body = dash + b"\r\n" + (b"\r\n" + dash + b"\r\n").join(parts) + b"\r\n" + dash + b"--\r\n"
    return b"".join(headers) + _multipart_type(subtype, boundary) + b"\r\n" + body


_MIME_VERSION = b"MIME-Version: 1.0\r\n"


def _text(subtype: str, text: str) -> tuple[list[bytes], bytes]:
    """A text part's Content-Type and Content-Transfer-Encoding, and its body on the wire."""
    cte, payload = _ENCODE_TEXT(text, "utf-8", None, POLICY)
    headers = [
        _fold_cached("Content-Type", f'text/{subtype}; charset="utf-8"'),
        _fold_cached("Content-Transfer-Encoding", cte),
    ]
    return headers, _NEWLINES.sub("\r\n", payload).encode("ascii", "surrogateescape")


def _base64_lines(data: bytes) -> bytes:
    """``email.contentmanager._encode_base64`` at 78 columns: 57 bytes (76 characters) a
    line, each ending in CRLF."""
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    lines.append(b"")
    return b"\r\n".join(lines)


@functools.lru_cache(maxsize=256)
def _disposition(disposition: str, filename: str) -> bytes:
    if _SIMPLE_FILENAME.fullmatch(filename):
        literal = f'Content-Disposition: {disposition}; filename="{filename}"'
        if len(literal) <= _MAX_LINE:
            return literal.encode("ascii") + b"\r\n"
    part = EmailMessage(policy=POLICY)  # as set_content's _finalize_set writes it
    part["Content-Disposition"] = disposition
    part.set_param("filename", filename, header="Content-Disposition", replace=True)
    return b"".join(POLICY.fold_binary(n, v) for n, v in part.raw_items())


def _attachment(part: Attachment, content_type: str, filename: str, cid: str) -> bytes:
    headers = [
        _fold_cached("Content-Type", content_type),
        b"Content-Transfer-Encoding: base64\r\n",
        _disposition("inline" if cid else "attachment", filename),
    ]
    if cid:
        headers.append(_unstructured("Content-ID", f"<{cid}>"))
    headers.append(_MIME_VERSION)
    return b"".join(headers) + b"\r\n" + _base64_lines(part.content)


def _render_direct(
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
    date: str,
    auto_submitted: bool = False,
    attachments: Sequence[Attachment] = (),
) -> bytes | None:
    """``_build(...)[1]`` for the same fields (the same bytes, given the same date and the
    same state of ``random``), or None: then ``_build`` decides (and refuses, if it does)."""
    try:
        sender = _clean_mailbox(sender)
        sender_name = clean_header_value(sender_name)
        to = [_clean_mailbox(m) for m in to]
        cc = [_clean_mailbox(m) for m in cc]
        reply_to = _clean_mailbox(reply_to) if reply_to else ""
        subject = clean_header_value(subject)
        message_id = clean_header_value(message_id)
        headers = {clean_header_name(n): clean_header_value(v) for n, v in headers.items()}
        files = [
            (
                part,
                clean_content_type(part.content_type),
                clean_filename(part.filename),
                clean_content_id(part.content_id) if part.content_id else "",
            )
            for part in attachments
        ]
    except ValidationError:
        return None
    if any(n.lower() in _STRUCTURED or n.lower().startswith("content-") for n in headers):
        # Resent-*, Orig-Date and the like are parsed (and counted) by the package; Content-*
        # headers go where set_content and make_mixed put them (dropped or into a part).
        return None
    if any(cid for *_, cid in files) and not html:
        return None  # refused by _build
    date_header = _date(date)
    if _MESSAGE_ID.fullmatch(message_id):
        message_id_header = _literal("Message-ID", message_id)
    else:
        message_id_header = None

    head = []
    if sender_name:
        if not _SIMPLE_ADDR_RE.fullmatch(sender):
            return None  # a named sender mailbox cannot take another name: _build refuses
        head.append(_from_with_name(sender_name, sender))
    else:
        head.append(_mailboxes("From", [sender]))
    if to:
        head.append(_mailboxes("To", to))
    if cc:
        head.append(_mailboxes("Cc", cc))
    if reply_to:
        head.append(_mailboxes("Reply-To", [reply_to]))
    head.append(_unstructured("Subject", subject))
    head.append(date_header)
    head.append(message_id_header or _fold_cached("Message-ID", message_id))
    if auto_submitted:
        head.append(b"Auto-Submitted: auto-generated\r\n")
    head.extend(_unstructured(n, v) for n, v in headers.items())
    if not _head_reads_back(
        b"".join(head), expected_headers={n.lower() for n in headers}, to=to, cc=cc,
        sender=sender, reply_to=reply_to,
    ):  # fmt: skip
        return None  # _build will tell what is wrong with it

    inline = [_attachment(*f) for f in files if f[3]]
    mixed = [_attachment(*f) for f in files if not f[3]]
    if not html:
        text_headers, text_body = _text("plain", text)
        if not mixed:
            return b"".join(head + text_headers) + _MIME_VERSION + b"\r\n" + text_body
        main = b"".join(text_headers) + b"\r\n" + text_body
    else:
        text_headers, text_body = _text("plain", text or " ")
        html_headers, html_body = _text("html", html)
        alternative = [b"".join(text_headers) + b"\r\n" + text_body]
        if inline:
            html_part = b"".join(html_headers) + b"\r\n" + html_body
            alternative.append(_multipart([_MIME_VERSION], "related", [html_part, *inline]))
        else:
            alternative.append(b"".join(html_headers) + _MIME_VERSION + b"\r\n" + html_body)
        if not mixed:
            return _multipart([*head, _MIME_VERSION], "alternative", alternative)
        main = _multipart([], "alternative", alternative)
    return _multipart([*head, _MIME_VERSION], "mixed", [main, *mixed])


def _head_reads_back(
    head: bytes,
    *,
    expected_headers: set[str],
    to: list[str],
    cc: list[str],
    sender: str,
    reply_to: str,
) -> bool:
    """:func:`verify` for a header section written by ``_render_direct``: the same checks on
    the same reading, with the ``email`` package's header objects only for the values that
    need them (encoded words, quoting, anything but plain printable ASCII)."""
    if not _HEAD.fullmatch(head) or max(map(len, head.split(b"\r\n"))) > 998:
        return False  # a line that is neither a field nor its continuation, a bare CR or LF
    values: dict[str, list[str]] = {}
    for name, raw in _HEAD_FIELD.findall(head):
        key = name.decode("ascii").lower()
        if key not in _VERIFIED_HEADERS and key not in expected_headers:
            return False  # Bcc among them
        value = _read_back(key, raw.replace(b"\r\n", b""))
        if value is None or "\r" in value or "\n" in value or "\0" in value:
            return False
        values.setdefault(key, []).append(value)
    wanted = {"from": [sender], "to": to, "cc": cc, "reply-to": [reply_to] if reply_to else []}
    return all(
        _addresses(values.get(key, [])) == [_envelope(m) for m in wanted[key]]
        for key in _ADDRESS_HEADERS
    )


def _read_back(key: str, raw: bytes) -> str | None:
    """A header value as the SMTP policy's parser reads it (``str`` of its header object),
    or None where that parser gives up. Taken as it is only in the plain forms that the
    parser reads unchanged: unstructured printable ASCII without encoded words, a list of
    plain mailboxes, a plain Message-ID."""
    if _PLAIN_BYTES.fullmatch(raw) and b"=?" not in raw:
        text = raw.decode("ascii")
        if key not in _STRUCTURED:
            return text
        if key in _ADDRESS_HEADERS and _SIMPLE_MAILBOX_LIST.fullmatch(text):
            return text
        if key == "message-id" and _MESSAGE_ID.fullmatch(text):
            return text
    return _decoded(key, raw)


@functools.lru_cache(maxsize=512)
def _decoded(key: str, raw: bytes) -> str | None:
    try:
        return str(POLICY.header_factory(key, raw.decode("ascii", "surrogateescape")))
    except Exception:  # the parser's own failures (IndexError, ValueError, …): verify's too
        return None


def _addresses(values: list[str]) -> list[str]:
    """``getaddresses`` of the values (as :func:`verify` reads them), read directly when they
    are plain mailbox lists."""
    if not values:
        return []
    if len(values) == 1 and _SIMPLE_MAILBOX_LIST.fullmatch(values[0]):
        return [_simple_addr(m) for m in _SIMPLE_MAILBOX.finditer(values[0])]
    return [a for _, a in getaddresses(values)]


def _envelope(mailbox: str) -> str:
    simple = _SIMPLE_MAILBOX.fullmatch(mailbox)
    return _simple_addr(simple) if simple else envelope_address(mailbox)
