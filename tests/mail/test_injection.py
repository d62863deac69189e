"""Header injection is impossible: property tests (hypothesis) over ``POST /api/messages/`` and
``compose.build``, and unit tests of the cleaners in :mod:`outbound.mail.compose`.

The inputs mix ordinary text with what breaks headers: CR, LF, CRLF, NUL, U+0085, U+2028,
U+2029, vertical tab and form feed, encoded words that decode to line breaks
(``=?utf-8?q?a=0D=0ABcc:_x@evil?=``), address specials and ready-made ``Bcc:`` lines. The API
either answers 400 naming the field, or the message the sender would build from what was
stored parses back with exactly the intended headers and recipients: no extra header, no Bcc
header, no line break in any value.
"""

from __future__ import annotations

import email
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses, parseaddr
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from outbound.mail import compose, services
from outbound.mail.choices import Security
from outbound.mail.models import Message, RecipientKind
from tests.conftest import client_for

# Characters that end or split a header line somewhere (SMTP, a parser, a mail client).
LINE_BREAKERS = ("\r", "\n", "\x00", "\x85", "\u2028", "\u2029")
ENCODED_NEWLINES = (
    "=?utf-8?q?a=0D=0ABcc:_x@evil.example?=",
    "=?UTF-8?Q?=0ABcc:=20x@evil.example?=",
    "=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=",  # "\r\nBcc: x@evil.example"
    "=?iso-8859-1?q?=0D=0A?=",
)
FRAGMENTS = (
    *LINE_BREAKERS,
    *ENCODED_NEWLINES,
    "\r\n",
    "\r\nBcc: x@evil.example",
    "\nBcc: x@evil.example\n",
    "\r\n\r\nbody",
    "Bcc: x@evil.example",
    "\x0b", "\x0c", "\t", "\x1b", " ", "  ", ":", ",", ";", "<", ">", '"', "\\", "@", "(", ")",
    "=?", "?=", "ü", "Ωμέγα", "\u00a0", "\u200b", "\ufeff", "\u202e", "x" * 80,
)  # fmt: skip
ADDRESSES = ("a@example.com", "b.c+tag@example.org", "x_y@sub.example.net", "evil@evil.example")
HEADER_NAMES = (
    "X-Campaign", "X-Tag", "List-Unsubscribe", "X-A", "x-a", "Bcc", "bcc", "To", "CC",
    "Subject", "Content-Type", "Message-Id", "X-A\r\nBcc", "X-B:", "X C", "Ü", "",
)  # fmt: skip

# Headers every message carries; plus To/Cc/Reply-To when given, and the caller's own.
BASE_HEADERS = (
    "from", "subject", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding",
)  # fmt: skip
SENDER, SENDER_NAME = "app@example.com", "Outbound Ä, Tests"

pytestmark = pytest.mark.django_db  # the shared autouse fixture clears the database cache

HYPOTHESIS = settings(
    max_examples=250,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text that breaks headers somewhere, and text that is tricky but printable (specials,
# non-ASCII, lone "=?"): a mix of both, so that many examples are accepted and many refused.
nasty = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=6)), max_size=6).map(
    "".join
)
printable = st.text(
    st.characters(exclude_categories=("Cc", "Cs", "Cf", "Zl", "Zp")) | st.sampled_from(":,;<>@=?"),
    max_size=24,
)
texts = st.one_of(printable, printable, nasty)


@dataclass(frozen=True)
class Mailbox:
    """What is sent as one mailbox, and the address it is meant to reach (when known)."""

    raw: str
    intended: str | None = None


addresses = st.sampled_from(ADDRESSES)
mailboxes = st.one_of(
    addresses.map(lambda a: Mailbox(a, a)),
    st.builds(lambda n, a: Mailbox(f"{n} <{a}>", a), texts, addresses),
    st.builds(lambda n, a: Mailbox(f'"{n}" <{a}>', a), texts, addresses),
    st.builds(lambda a, tail: Mailbox(a + tail), addresses, nasty),
    nasty.map(Mailbox),
)
header_names = st.one_of(
    st.sampled_from(HEADER_NAMES),
    st.from_regex(r"X-[A-Za-z0-9-]{1,12}", fullmatch=True),
    st.text(max_size=8),
)


def has_line_breaker(value: str) -> bool:
    return any(c in value for c in LINE_BREAKERS)


def parse(msg: EmailMessage) -> tuple[EmailMessage, bytes]:
    raw = msg.as_bytes()
    parsed = email.message_from_bytes(raw, policy=SMTP)
    assert isinstance(parsed, EmailMessage)
    return parsed, raw.split(b"\r\n\r\n", 1)[0]


def assert_reads_back(
    msg: EmailMessage,
    *,
    to: list[str],
    cc: list[str],
    reply_to: str,
    subject: str,
    headers: dict[str, str],
) -> None:
    """The serialised message carries exactly the intended headers, values and addresses."""
    parsed, head = parse(msg)
    expected = Counter(BASE_HEADERS) + Counter(n.lower() for n in headers)
    expected += Counter(n for n, v in (("to", to), ("cc", cc), ("reply-to", reply_to)) if v)
    assert Counter(k.lower() for k in parsed) == expected
    assert "bcc" not in {k.lower() for k in parsed}
    # On the wire: every line starts a header we wrote or continues one (folding).
    for line in head.split(b"\r\n"):
        assert b"\r" not in line and b"\n" not in line
        if line[:1] not in (b" ", b"\t"):
            assert line.split(b":", 1)[0].decode().lower() in expected, line
    for name, value in parsed.items():
        assert not has_line_breaker(str(value)), (name, value)
    for name, wanted in (("to", to), ("cc", cc)):
        got = [a for _, a in getaddresses([str(v) for v in parsed.get_all(name, [])])]
        assert got == [parseaddr(m)[1] for m in wanted]
    if reply_to:
        assert parseaddr(str(parsed["Reply-To"]))[1] == parseaddr(reply_to)[1]
    # Folding may drop leading blanks; nothing else changes.
    assert str(parsed["Subject"]) == subject.lstrip(" ")
    for name, value in headers.items():
        assert str(parsed[name]) == value.lstrip(" ")


def build_as_sender(message: Message) -> EmailMessage:
    """The message the worker builds from a stored outbox row (see ``sender._send``)."""
    recipients = list(message.recipients.all())
    return compose.build(
        sender=SENDER,
        sender_name=SENDER_NAME,
        to=[r.address for r in recipients if r.kind == RecipientKind.TO],
        cc=[r.address for r in recipients if r.kind == RecipientKind.CC],
        subject=message.subject,
        text=message.text,
        html=message.html,
        reply_to=message.reply_to,
        headers=message.headers,
        message_id=message.message_id,
    )


# --- the API -------------------------------------------------------------------------------


@pytest.fixture
def sender_client(admin_user: Any, make_user: Callable[..., Any]) -> APIClient:
    services.smtp_config_create(
        data={
            "host": "127.0.0.1",
            "port": 2525,
            "security": Security.NONE,
            "sender_address": SENDER,
            "sender_name": SENDER_NAME,
        },
        actor=admin_user,
        activate=True,
    )
    return client_for(make_user("messages.send"))


@settings(HYPOTHESIS, max_examples=400)
@given(
    to=st.lists(mailboxes, min_size=1, max_size=3),
    cc=st.lists(mailboxes, max_size=2),
    bcc=st.lists(mailboxes, max_size=1),
    subject=texts,
    reply_to=st.none() | mailboxes,
    headers=st.dictionaries(header_names, texts, max_size=2),
)
def test_api_refuses_or_sends_exactly_the_intended_headers(
    sender_client: APIClient,
    to: list[Mailbox],
    cc: list[Mailbox],
    bcc: list[Mailbox],
    subject: str,
    reply_to: Mailbox | None,
    headers: dict[str, str],
) -> None:
    body: dict[str, Any] = {
        "to": [m.raw for m in to],
        "cc": [m.raw for m in cc],
        "bcc": [m.raw for m in bcc],
        "subject": subject,
        "headers": headers,
        "text": "Hello.\n",
    }
    if reply_to is not None:
        body["reply_to"] = reply_to.raw
    response = sender_client.post("/api/messages/", body, format="json")
    assert response.status_code in (202, 400), response.content
    event(f"HTTP {response.status_code}")  # --hypothesis-show-statistics: both outcomes occur

    breaking = {
        "to": any(has_line_breaker(m.raw) for m in to),
        "cc": any(has_line_breaker(m.raw) for m in cc),
        "bcc": any(has_line_breaker(m.raw) for m in bcc),
        "subject": has_line_breaker(subject),
        "reply_to": reply_to is not None and has_line_breaker(reply_to.raw),
        "headers": any(has_line_breaker(n) or has_line_breaker(v) for n, v in headers.items()),
    }
    if response.status_code == 400:
        errors = response.json()
        assert errors and set(errors) <= set(body), errors  # fields that were given
        return

    assert not any(breaking.values()), body
    message = Message.objects.get(pk=response.json()["id"])
    stored = {
        k: [r.address for r in message.recipients.all() if r.kind == k] for k in ("to", "cc", "bcc")
    }
    for kind, given_ in (("to", to), ("cc", cc), ("bcc", bcc)):
        envelope = [compose.envelope_address(a) for a in stored[kind]]
        assert len(envelope) == len(given_)
        assert all(m.intended in (None, e) for m, e in zip(given_, envelope, strict=True))
    msg = build_as_sender(message)  # an accepted message must be sendable
    assert_reads_back(
        msg,
        to=stored["to"],
        cc=stored["cc"],
        reply_to=message.reply_to,
        subject=subject,
        headers=headers,
    )
    if reply_to is not None and reply_to.intended:
        assert parseaddr(message.reply_to)[1] == reply_to.intended
    assert message.subject == subject and message.headers == headers
    serialised = msg.as_bytes().decode("ascii", "replace")
    shown = set(stored["to"] + stored["cc"]) | {message.reply_to}
    for hidden in stored["bcc"]:
        address = compose.envelope_address(hidden)
        if not any(address in s for s in shown):
            assert address not in serialised


INJECTABLE = ("to", "cc", "bcc", "subject", "reply_to", "header name", "header value")


@HYPOTHESIS
@given(
    field=st.sampled_from(INJECTABLE),
    before=nasty,
    breaker=st.sampled_from((*LINE_BREAKERS, "\r\nBcc: x@evil.example", "\r\n\r\nbody")),
    after=nasty,
)
def test_api_names_the_one_field_that_carries_a_line_break(
    sender_client: APIClient, field: str, before: str, breaker: str, after: str
) -> None:
    body: dict[str, Any] = {
        "to": ["a@example.com"],
        "cc": ["Carol <c@example.com>"],
        "bcc": ["b@example.com"],
        "subject": "Hello",
        "reply_to": "r@example.com",
        "headers": {"X-Campaign": "spring"},
        "text": "Hello.\n",
    }
    bad = before + breaker + after
    if field in ("to", "cc", "bcc"):
        body[field] = [*body[field], f"{bad} <x@example.com>" if before else bad]
    elif field == "header name":
        body["headers"] = {**body["headers"], "X-" + bad: "v"}
    elif field == "header value":
        body["headers"] = {**body["headers"], "X-Tag": bad}
    elif field == "reply_to":
        body[field] = f"{bad} <r@example.com>"
    else:
        body[field] = bad
    queued = Message.objects.count()
    response = sender_client.post("/api/messages/", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {field.split()[0].replace("header", "headers")}
    assert Message.objects.count() == queued  # nothing was queued


@pytest.mark.parametrize(
    "mailbox", ["Ann <a@ex\u00e4mple.com>", "a@ex\u00e4mple.com", "a@example.com \u00fc"]
)
def test_api_refuses_a_non_ascii_address(sender_client: APIClient, mailbox: str) -> None:
    body = {"to": [mailbox], "text": "Hello.\n"}
    response = sender_client.post("/api/messages/", body, format="json")
    assert response.status_code == 400, response.content
    assert set(response.json()) == {"to"}


# --- compose.build on its own: whatever it is given --------------------------------------

SMUGGLED_REPLY_TO = {"X-A": "x", "X-A: y\r\nReply-To": "evil@evil.example"}


@HYPOTHESIS
@given(
    to=st.lists(mailboxes.map(lambda m: m.raw), min_size=1, max_size=3),
    cc=st.lists(mailboxes.map(lambda m: m.raw), max_size=2),
    subject=nasty,
    reply_to=st.just("") | mailboxes.map(lambda m: m.raw),
    sender_name=st.just("") | nasty,
    headers=st.dictionaries(header_names, nasty, max_size=2),
)
# Holes that build once had (it trusted its caller), kept as explicit examples:
@example(to=["a@example.com"], cc=[], subject="s\r", reply_to="", sender_name="", headers={})
@example(
    to=["a@example.com"], cc=[], subject="", reply_to="", sender_name="", headers=SMUGGLED_REPLY_TO
)
def test_build_refuses_or_reads_back_exactly_whatever_it_is_given(
    to: list[str],
    cc: list[str],
    subject: str,
    reply_to: str,
    sender_name: str,
    headers: dict[str, str],
) -> None:
    """Defence in depth: ``build`` should not rely on the API's cleaning to stay safe."""
    try:
        msg = compose.build(
            sender=SENDER,
            sender_name=sender_name,
            to=to,
            cc=cc,
            subject=subject,
            text="Hello.\n",
            html="",
            reply_to=reply_to,
            headers=headers,
            message_id="<id@example.com>",
        )
    except (ValueError, HeaderParseError):  # UnsafeMessage is a ValueError
        return
    assert_reads_back(msg, to=to, cc=cc, reply_to=reply_to, subject=subject, headers=headers)


def build_with(**fields: Any) -> EmailMessage:
    values: dict[str, Any] = {
        "sender": SENDER, "sender_name": "", "to": ["a@example.com"], "cc": [], "subject": "s",
        "text": "t", "html": "", "reply_to": "", "headers": {}, "message_id": "<id@example.com>",
    }  # fmt: skip
    return compose.build(**{**values, **fields})


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "s\r\n"},
        {"subject": "s\n"},
        {"to": ["a@example.com\r"]},
        {"reply_to": "r@example.com\r\n"},
        {"headers": {"X-Tag": "v\r"}},
    ],
    ids=["subject-crlf", "subject-lf", "to-cr", "reply_to-crlf", "header-cr"],
)
def test_build_refuses_a_value_that_ends_in_a_line_break(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_with(**fields)


def test_build_refuses_a_header_name_that_smuggles_a_reply_to() -> None:
    with pytest.raises(ValueError):
        build_with(headers=SMUGGLED_REPLY_TO)


@pytest.mark.parametrize("name", ["Content-Type", "Sender", "Return-Path"])
def test_build_refuses_reserved_header_names(name: str) -> None:
    with pytest.raises(ValueError):
        build_with(headers={name: "x"})


def test_build_refuses_an_encoded_word_that_decodes_to_a_new_header() -> None:
    for value in ENCODED_NEWLINES[:3]:
        with pytest.raises(compose.UnsafeMessage):
            compose.build(
                sender=SENDER, sender_name="", to=["a@example.com"], cc=[], subject="s",
                text="t", html="", reply_to="", headers={"X-Tag": value},
                message_id="<id@example.com>",
            )  # fmt: skip


def test_bcc_never_reaches_the_headers_and_auto_submitted_only_on_notices() -> None:
    msg = compose.build(
        sender=SENDER, sender_name=SENDER_NAME, to=["a@example.com"], cc=["Ç <c@example.com>"],
        subject="Ünïcödé " * 20, text="t", html="<p>t</p>", reply_to="r@example.com",
        headers={"X-Campaign": "spring"}, message_id="<id@example.com>", auto_submitted=True,
    )  # fmt: skip
    parsed, _ = parse(msg)
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    assert "bcc" not in {k.lower() for k in parsed}
    assert str(parsed["Subject"]) == ("Ünïcödé " * 20)
    assert parseaddr(str(parsed["From"])) == (SENDER_NAME, SENDER)


# --- the cleaners --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["hello", "Ünïcödé und Ωμέγα", "a: b; c, d <e>", "", "=? alone", "?= alone", "x" * 998],
)
def test_clean_header_value_accepts(value: str) -> None:
    assert compose.clean_header_value(value) == value


@pytest.mark.parametrize(
    "value",
    [
        *LINE_BREAKERS,
        "a\r\nBcc: x@evil.example",
        "a\nb",
        "\t",
        "\x0b",
        "\x0c",
        "\x1b[31m",
        "\u200b",  # format characters too: zero-width space, BOM, RTL override
        "\ufeff",
        "\u202e",
        *ENCODED_NEWLINES,
        "=?utf-8?q?harmless?=",
        "x" * 999,
    ],
)
def test_clean_header_value_refuses(value: str) -> None:
    with pytest.raises(ValidationError):
        compose.clean_header_value(value)


@pytest.mark.parametrize("name", ["X-Campaign", "List-Unsubscribe", "X-" + "a" * 74, "X!#$%&'*+"])
def test_clean_header_name_accepts(name: str) -> None:
    assert compose.clean_header_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "", "X A", "X:A", "X-A:", "X-A\r\nBcc", "X-A\n", "X\x00", "Ü", "X-\u2028", "X-" + "a" * 75,
        *sorted(compose.RESERVED_HEADERS), "BCC", "bcc", "Message-Id", "CONTENT-TYPE",
    ],
)  # fmt: skip
def test_clean_header_name_refuses(name: str) -> None:
    with pytest.raises(ValidationError):
        compose.clean_header_name(name)


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("a@example.com", "a@example.com"),
        ("Ann Example <a@example.com>", "Ann Example <a@example.com>"),
        ('"Doe, John" <j@example.com>', '"Doe, John" <j@example.com>'),
        ("<a@example.com>", "a@example.com"),
    ],
)
def test_clean_mailbox_accepts(value: str, cleaned: str) -> None:
    assert compose.clean_mailbox(value) == cleaned


@pytest.mark.parametrize(
    "value",
    [
        "", "not an address", "<>", "a@", "@example.com",
        "a@example.com, b@example.com", "a@example.com; b@example.com",
        "a@example.com\r\nBcc: x@evil.example", "a@example.com\n", "a@example.com\x00",
        "Ann\u2028 <a@example.com>", "Ann\x85 <a@example.com>",
        "=?utf-8?q?a=0D=0ABcc:_x@evil.example?= <a@example.com>",
        "a@example.com (=?utf-8?q?=0D=0A?=)", "undisclosed-recipients:;",
        "Group: a@example.com, b@example.com;",
    ],
)  # fmt: skip
def test_clean_mailbox_refuses(value: str) -> None:
    with pytest.raises(ValidationError):
        compose.clean_mailbox(value)


@settings(max_examples=300, deadline=None, database=None, print_blob=True)
@given(mailbox=mailboxes)
def test_clean_mailbox_yields_one_safe_mailbox_for_the_same_address(mailbox: Mailbox) -> None:
    if has_line_breaker(mailbox.raw):
        with pytest.raises(ValidationError):
            compose.clean_mailbox(mailbox.raw)
        return
    try:
        cleaned = compose.clean_mailbox(mailbox.raw)
    except ValidationError:
        return
    assert not has_line_breaker(cleaned)
    assert len(getaddresses([cleaned])) == 1
    address = compose.envelope_address(cleaned)
    assert address == parseaddr(mailbox.raw)[1]
    if mailbox.intended:
        assert address == mailbox.intended


def test_clean_mailbox_keeps_a_non_ascii_display_name_readable_and_is_idempotent() -> None:
    cleaned = compose.clean_mailbox("Jöhn Dœ <j@example.com>")
    assert parseaddr(cleaned) == ("Jöhn Dœ", "j@example.com")
    assert compose.clean_mailbox(cleaned) == cleaned
