"""``compose.render`` writes the usual messages directly (``compose._render_direct``) instead of
building them with the ``email`` package (``compose._build``). The direct path must write the
very same bytes, given the same Date and the same draws from ``random`` (the boundaries), or
hand the message to the package (return None); these tests hold it to that:

- a table of inputs that stress the encoders and the folder (non-ASCII and long subjects and
  display names, quoted names, long lines, leading dots, CR/LF mixes, 8-bit text, html, cc,
  reply-to, custom headers, attachments and inline parts), each compared byte for byte, read
  back with ``email.policy.default`` against what was meant, and checked line by line (CRLF,
  at most 998 bytes);
- hypothesis over the same kinds of input: direct bytes == the package's bytes, or None;
  never bytes where the package refuses;
- the pieces it relies on: the quick ``clean_mailbox`` and control-character answers equal
  the long ones, its boundary draw equals the generator's, and its reading of the header
  section never passes what ``verify`` refuses.
"""

from __future__ import annotations

import datetime as dt
import email
import random
import re
from collections.abc import Iterator
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from outbound.core.validators import has_control_characters
from outbound.mail import compose
from outbound.mail.compose import Attachment

pytestmark = pytest.mark.django_db  # the shared autouse fixture clears the database cache

DATE = "Tue, 01 Dec 2026 18:00:39 +0000"
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(range(256)) * 40  # 10 KiB and a bit
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
CYRILLIC = "\u0421\u043b\u0430\u0432\u0430"  # escaped: ruff's RUF001 takes it for Latin
BENCH_TEXT = "Outbound bench message; the same text for every sender.\n" * 16
BASE: dict[str, Any] = {
    "sender": "bench@example.com",
    "sender_name": "",
    "to": ["rcpt1@example.net"],
    "cc": [],
    "subject": "Bench x 1",
    "text": BENCH_TEXT,
    "html": "",
    "reply_to": "",
    "headers": {},
    "message_id": "<20261201180039.1234.5678@example.com>",
}

HYPOTHESIS = settings(
    max_examples=300,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def both_ways(fields: dict[str, Any]) -> tuple[bytes | None, bytes]:
    """The direct path's bytes (or None) and the package's, from the same ``random`` state."""
    state = random.getstate()
    try:
        direct = compose._render_direct(date=DATE, **fields)
        random.setstate(state)
        built = compose._build(date=DATE, **fields)[1]
    finally:
        random.setstate(state)
    return direct, built


def lines_ok(raw: bytes) -> None:
    """CRLF after every line, nothing else that ends one, no line over 998 bytes."""
    assert raw.endswith(b"\r\n")
    lines = raw.split(b"\r\n")[:-1]
    for line in lines:
        assert b"\r" not in line and b"\n" not in line, line[:80]
        assert len(line) <= 998


def newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def reads_as_meant(raw: bytes, fields: dict[str, Any]) -> None:
    """Read with ``email.policy.default``: the headers, bodies and parts that were given."""
    msg = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(msg, EmailMessage)
    assert not msg.defects
    # Folding may add or drop leading blanks (a word too long for the first line moves to
    # the next: "Subject:\r\n sss…" reads back as " sss…"); nothing else changes.
    assert str(msg["Subject"]).lstrip(" ") == fields["subject"].lstrip(" ")
    if " " not in fields["message_id"]:  # "<a b@x>" reads back as "<a" (the package's way)
        assert str(msg["Message-ID"]) == fields["message_id"]
    assert str(msg["Date"]) == DATE
    sender = msg["From"].addresses[0]
    assert sender.addr_spec == fields["sender"]
    assert sender.display_name == fields["sender_name"]
    for name in ("to", "cc"):
        got = [(a.display_name, a.addr_spec) for a in msg[name].addresses] if msg[name] else []
        assert got == [email.utils.parseaddr(m) for m in fields[name]]
    if fields["reply_to"]:
        assert (
            msg["Reply-To"].addresses[0].addr_spec == email.utils.parseaddr(fields["reply_to"])[1]
        )
    for name, value in fields["headers"].items():
        if name.lower().startswith("content-"):
            continue  # the package moves these into the first part, or drops them
        assert [str(v).lstrip(" ") for v in msg.get_all(name, [])].count(value.lstrip(" "))
    plain = msg.get_body(("plain",))
    assert plain is not None
    text = fields["text"] or (" " if fields["html"] else "")
    assert newlines(plain.get_content()) == newlines(text) + ("\n" if text[-1:] != "\n" else "")
    if fields["html"]:
        html = msg.get_body(("html",))
        assert html is not None
        assert newlines(html.get_content()).rstrip("\n") == newlines(fields["html"]).rstrip("\n")
    parts = [p for p in msg.walk() if p.get_filename() is not None]
    given = fields.get("attachments", [])
    assert sorted((p.get_filename(), p.get_content_type()) for p in parts) == sorted(
        (a.filename, a.content_type) for a in given
    )
    for a in given:
        (part,) = [p for p in parts if p.get_filename() == a.filename]
        assert part.get_payload(decode=True) == a.content
        if a.content_id:
            assert part["Content-ID"] == f"<{a.content_id}>"
            assert part.get_content_disposition() == "inline"
        else:
            assert part.get_content_disposition() == "attachment"


def mailbox_of_length(header: str, length: int) -> str:
    """A ``Name <addr>`` mailbox whose ``Header: mailbox`` line is ``length`` long."""
    addr = "someone@example.com"
    name = "N" * (length - len(header) - 2 - len(addr) - 3)
    return f"{name} <{addr}>"


# id: (changes to BASE, whether the direct path writes it itself)
CASES: dict[str, tuple[dict[str, Any], bool]] = {
    "bench": ({}, True),
    "text-html-name-cc": (
        {
            "sender_name": "Bench Sender",
            "to": ["Ann Example <ann@example.net>"],
            "cc": ["carol@example.org"],
            "html": "<p>" + BENCH_TEXT.replace("\n", "<br>\n") + "</p>",
        },
        True,
    ),
    "attachment-10k": ({"attachments": [Attachment("report.pdf", "application/pdf", PDF)]}, True),
    "non-ascii-subject": ({"subject": "Grüße aus Köln, Ihre Bestellung"}, True),
    "long-subject": ({"subject": " ".join(["folding"] * 30)}, True),
    "long-non-ascii-subject": ({"subject": "Ünïcödé " * 20}, True),
    "long-unbreakable-subject": ({"subject": "x" * 200}, True),
    "subject-edge-78": ({"subject": "s" * (78 - len("Subject: "))}, True),
    "subject-edge-79": ({"subject": "s" * (79 - len("Subject: "))}, True),
    "subject-spaces": ({"subject": "  two  spaces  "}, True),
    "subject-empty": ({"subject": ""}, True),
    "subject-lone-encoded-word-start": ({"subject": "1+1=? two"}, True),
    "subject-lone-encoded-word-end": ({"subject": "a?=b"}, True),
    "subject-specials": ({"subject": 'a "quoted" (comment) <x@y> \\ back; semi: colon'}, True),
    "non-ascii-display-names": (
        {
            "sender_name": "Outbound Ä, Tests",
            "to": ["Zoë Ångström <zoe@example.com>", "plain@example.com"],
            "cc": ["Ç <c@example.com>"],
        },
        True,
    ),
    "quoted-names": (
        {
            "sender_name": "Example Inc.",
            "to": ['"Doe, John" <j@example.com>', '"a \\"b\\"" <b@example.com>'],
        },
        True,
    ),
    "many-recipients": ({"to": [f"r{i}@example.net" for i in range(40)]}, True),
    "mailbox-edge-76": ({"to": [mailbox_of_length("To", 76)]}, True),
    "mailbox-edge-77": ({"to": [mailbox_of_length("To", 77)]}, True),
    "mailbox-edge-78": ({"to": [mailbox_of_length("To", 78)]}, True),
    "mailbox-edge-79": ({"to": [mailbox_of_length("To", 79)], "cc": ["x@example.com"]}, True),
    "reply-to-named": ({"reply_to": "Support Team <support@example.com>"}, True),
    "reply-to-non-ascii": ({"reply_to": "Kundenbüro <kb@example.com>"}, True),
    "custom-headers": (
        {
            "headers": {
                "X-Campaign": "spring",
                "List-Unsubscribe": "<mailto:unsubscribe@example.com>, <https://example.com/u>",
                "X-Long": " ".join(["value"] * 30),
                "X-Non-Ascii": "Grüße",
                "X-A": "1",
                "x-a": "2",
            },
            "auto_submitted": True,
        },
        True,
    ),
    "message-id-unusual": ({"message_id": "<a b@example.com>"}, True),
    "message-id-long": ({"message_id": f"<{'x' * 80}@example.com>"}, True),
    "long-lines-text": ({"text": "x" * 200 + "\n" + "short\n"}, True),
    "long-lines-many": ({"text": ("y" * 120 + "\n") * 30}, True),
    "dots": ({"text": ".\n..\n.leading dot\nFrom here\n>From there\n."}, True),
    "newline-mixes": ({"text": "a\r\nb\nc\rd\r\n\r\ne\n\rf\r\r\ng"}, True),
    "crlf-only": ({"text": "one\r\ntwo\r\n"}, True),
    "eight-bit": ({"text": f"Grüße\n{CYRILLIC}\n😀 and \u2028 and \x0c\n"}, True),
    "eight-bit-long-lines": ({"text": ("é" * 60 + "\n") * 12}, True),
    "eight-bit-few-long-lines": ({"text": "é" * 100 + "\nplain\n"}, True),
    "no-newline-at-end": ({"text": "no newline"}, True),
    "empty-text": ({"text": ""}, True),
    "html-only": ({"text": "", "html": "<p>Only html</p>"}, True),
    "html-non-ascii-long": ({"html": "<p>" + "ü" * 300 + "</p>\n"}, True),
    "html-with-boundary-like-line": ({"html": "<p>x</p>\n--===============\n--\n"}, True),
    "attachments-several": (
        {
            "html": "<p>Hi</p>",
            "attachments": [
                Attachment("report.pdf", "application/pdf", PDF),
                Attachment("notes.txt", "text/plain", b"hello\n"),
                Attachment("empty.bin", "application/octet-stream", b""),
            ],
        },
        True,
    ),
    "attachment-names": (
        {
            "attachments": [
                Attachment("Übersicht März.pdf", "application/pdf", b"1"),
                Attachment("a" * 100 + ".pdf", "application/pdf", b"2"),
                Attachment('say "hi".txt', "text/plain", b"3"),
                Attachment("Quarterly report.pdf", "application/pdf", b"4"),
                Attachment("semi;colon, comma=(x).txt", "text/plain", b"5"),
                Attachment("b" * 36 + ".x", "application/x-tar+gz", b"6"),
            ]
        },
        True,
    ),
    "inline": (
        {
            "html": '<p><img src="cid:logo@example.com"></p>',
            "attachments": [Attachment("logo.png", "image/png", PNG, "logo@example.com")],
        },
        True,
    ),
    "inline-and-attachments": (
        {
            "text": "",
            "html": '<p><img src="cid:logo@example.com"><img src="cid:m@example.com"></p>',
            "attachments": [
                Attachment("report.pdf", "application/pdf", PDF),
                Attachment("logo.png", "image/png", PNG, "logo@example.com"),
                Attachment("Ünïcödé.png", "image/png", PNG[:10], "m@example.com"),
            ],
        },
        True,
    ),
    "inline-long-cid": (
        {
            "html": "<p>x</p>",
            "attachments": [Attachment("l.png", "image/png", PNG, "c" * 70 + "@example.com")],
        },
        True,
    ),
    # The package's business: the direct path hands these over.
    "resent-header": ({"headers": {"Resent-To": "x@example.com"}}, False),
    "content-header": ({"headers": {"Content-Language": "de"}, "html": "<p>x</p>"}, False),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_direct_bytes_equal_the_email_packages(case: str) -> None:
    changes, direct_expected = CASES[case]
    fields = {**BASE, **changes}
    direct, built = both_ways(fields)
    assert (direct is not None) == direct_expected
    if direct is not None:
        assert direct == built
    for raw in (built, direct) if direct is not None else (built,):
        lines_ok(raw)
        reads_as_meant(raw, fields)
    compose.verify(
        built,
        expected_headers={n.lower() for n in fields["headers"]},
        to=fields["to"],
        cc=fields["cc"],
        sender=fields["sender"],
        reply_to=fields["reply_to"],
    )


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    moment = dt.datetime(2026, 12, 1, 18, 0, 39, 123456, tzinfo=dt.UTC)
    monkeypatch.setattr(compose.timezone, "now", lambda: moment)
    state = random.getstate()
    yield
    random.setstate(state)


@pytest.mark.parametrize("case", ["bench", "text-html-name-cc", "inline-and-attachments"])
def test_render_equals_build_as_bytes(frozen_now: None, case: str) -> None:
    fields = {**BASE, **CASES[case][0]}
    state = random.getstate()
    rendered = compose.render(**fields)
    random.setstate(state)
    assert rendered == compose.build(**fields).as_bytes()


def test_render_leaves_whatever_goes_wrong_to_the_email_package(
    frozen_now: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = compose.render(**BASE)

    def broken(**fields: Any) -> bytes:
        raise RuntimeError("a bug in the direct path")

    monkeypatch.setattr(compose, "_render_direct", broken)
    assert compose.render(**BASE) == expected


def test_render_refuses_as_build_does() -> None:
    inline_without_html = [Attachment("l.png", "image/png", PNG, "logo@example.com")]
    bad: list[dict[str, Any]] = [
        {"subject": "s\r\nBcc: x@evil.example"},
        {"to": ["a@example.com\r\n"]},
        {"headers": {"X-Tag": "=?utf-8?q?a=0D=0ABcc:_x@evil.example?="}},
        {"headers": {"Bcc": "x@evil.example"}},
        {"attachments": inline_without_html},
        {"attachments": [Attachment("../x", "application/pdf", b"")]},
        {"sender": "Named <bench@example.com>", "sender_name": "Other"},
    ]
    for changes in bad:
        fields = {**BASE, **changes}
        assert compose._render_direct(date=DATE, **fields) is None, changes
        with pytest.raises(ValueError):
            compose.render(**fields)


# --- hypothesis: whatever it is given --------------------------------------------------------

words = st.text(
    st.characters(exclude_categories=["Cs"]) | st.sampled_from(' "\\(),;:<>@.=?'), max_size=12
)
ascii_words = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20)
header_text = st.one_of(
    ascii_words,
    words,
    st.lists(st.sampled_from(["word", "Grüße", "x" * 40, " ", "=?", "?=", '"', "é" * 30])).map(
        "".join
    ),
)
addresses = st.sampled_from(
    ["a@example.com", "b.c+tag@example.org", "x_y@sub.example.net", "o'neil@example.com"]
)
mailboxes = st.one_of(
    addresses,
    st.builds(lambda n, a: f"{n} <{a}>", header_text, addresses),
    st.builds(lambda n, a: f'"{n}" <{a}>', header_text, addresses),
)
body_text = st.one_of(
    st.text(max_size=200),
    st.lists(
        st.sampled_from(["line", "\n", "\r\n", "\r", ".", "From ", "é", "x" * 90, " ", "😀"]),
        max_size=40,
    ).map("".join),
)
attachments = st.lists(
    st.builds(
        Attachment,
        filename=st.one_of(st.sampled_from(["a.pdf", "Report 1.pdf", "Ü.png"]), header_text),
        content_type=st.sampled_from(["application/pdf", "image/png", "text/plain"]),
        content=st.binary(max_size=300),
        content_id=st.sampled_from(["", "", "logo@example.com", "x.y@example.org"]),
    ),
    max_size=3,
)


@settings(HYPOTHESIS, max_examples=500)
@given(
    sender_name=st.just("") | header_text,
    to=st.lists(mailboxes, min_size=1, max_size=4),
    cc=st.lists(mailboxes, max_size=2),
    reply_to=st.just("") | mailboxes,
    subject=header_text,
    text=body_text,
    html=st.just("") | body_text,
    headers=st.dictionaries(st.from_regex(r"X-[A-Za-z0-9-]{1,10}", fullmatch=True), header_text),
    auto_submitted=st.booleans(),
    attachments=attachments,
)
@example(
    sender_name="",
    to=["a@example.com"],
    cc=[],
    reply_to="",
    subject="s",
    text="t",
    html="",
    headers={},
    auto_submitted=False,
    attachments=[],
)
def test_direct_bytes_are_the_packages_or_none(**changes: Any) -> None:
    fields = {**BASE, **changes}
    state = random.getstate()
    try:
        built: bytes | None = compose._build(date=DATE, **fields)[1]
    except Exception:  # refused (UnsafeMessage, ValueError) or the package gave up
        built = None
    random.setstate(state)
    try:
        direct = compose._render_direct(date=DATE, **fields)
    finally:
        random.setstate(state)
    if direct is not None:
        event("written directly")
    else:
        event("refused by the package" if built is None else "left to the package")
    if direct is not None:
        assert direct == built
        lines_ok(direct)


# --- the pieces ------------------------------------------------------------------------------


def assert_cleaned_alike(value: str) -> None:
    try:
        long_way: str | None = compose._clean_parsed_mailbox(value)
    except ValidationError as exc:
        long_way, long_error = None, exc.messages
    quick_error = None
    try:
        quick: str | None = compose.clean_mailbox(value)
    except ValidationError as exc:
        quick, quick_error = None, exc.messages
    assert quick == long_way
    if quick is None:
        assert quick_error == long_error


@HYPOTHESIS
@given(st.from_regex(compose._SIMPLE_MAILBOX, fullmatch=True))
def test_quick_clean_mailbox_answers_as_the_long_way(value: str) -> None:
    assert_cleaned_alike(value)


@pytest.mark.parametrize(
    "value",
    [
        "a@example.com",
        "Ann Example <ann@example.com>",
        "o'neil@example.com",
        "{x}|~ <a.b-c@sub-1.example.com>",
        "a@localhost",
        "a@example",
        "a@-example.com",
        "a@example..com",
        "a" * 65 + "@example.com",
        "x@" + "d" * 64 + ".com",
    ],
)
def test_quick_clean_mailbox_examples(value: str) -> None:
    assert_cleaned_alike(value)


@HYPOTHESIS
@given(st.text())
def test_quick_control_character_answer_is_the_same(value: str) -> None:
    assert compose._has_controls(value) == has_control_characters(value)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"plain\r\n",
        b"--BOUNDARY\n",
        b"x\r\n--BOUNDARY--\n",
        b"--BOUNDARY",
        b"--BOUNDARY\r\n",
        b"a\n--BOUNDARY\n--BOUNDARY.0\n--BOUNDARY.1--",
    ],
)
def test_boundary_is_drawn_as_the_generator_draws_it(text: bytes) -> None:
    state = random.getstate()
    try:
        make: Any = BytesGenerator._make_boundary  # type: ignore[attr-defined]
        upcoming = make()  # the boundary the next draw gives
        random.setstate(state)
        text = text.replace(b"BOUNDARY", upcoming.encode())
        expected = make(text)
        random.setstate(state)
        assert compose._make_boundary(text) == expected
    finally:
        random.setstate(state)


HEAD = (
    b"From: Bench <bench@example.com>\r\n"
    b"To: rcpt1@example.net,\r\n Ann <ann@example.net>\r\n"
    b"Subject: Hello\r\n"
    b"Date: Tue, 01 Dec 2026 18:00:39 +0000\r\n"
    b"Message-ID: <1.2@example.com>\r\n"
    b"X-Tag: v\r\n"
)
HEAD_ARGS: dict[str, Any] = {
    "expected_headers": {"x-tag"},
    "to": ["rcpt1@example.net", "Ann <ann@example.net>"],
    "cc": [],
    "sender": "bench@example.com",
    "reply_to": "",
}
INSERTS = (
    b"\r\n", b"\n", b"\r", b"\x00", b"Bcc: x@evil.example\r\n", b"\r\nBcc: x@evil.example",
    b"X-Other: y\r\n", b"Cc: c@example.com\r\n", b" continued", b"\r\n ", b"\t",
    b"=?utf-8?q?a=0D=0ABcc:_x@evil.example?=", b"=?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=",
    b", evil@evil.example", b"(comment)", b'"', b"\\", b"\xc3\xa9", b":", b"<", b">",
)  # fmt: skip


def test_head_reads_back_passes_a_good_head() -> None:
    assert compose._head_reads_back(HEAD, **HEAD_ARGS)


@pytest.mark.parametrize(
    "head",
    [
        HEAD + b"Bcc: x@evil.example\r\n",
        HEAD + b"X-Other: y\r\n",
        HEAD.replace(b"X-Tag: v", b"X-Tag: =?utf-8?q?a=0D=0ABcc:_x@evil.example?="),
        HEAD.replace(b"Subject: Hello", b"Subject: Hel\nlo"),
        HEAD.replace(b"Subject: Hello", b"Subject: Hel\rlo"),
        HEAD.replace(b"rcpt1@example.net,", b"rcpt1@example.net, evil@evil.example,"),
        HEAD.replace(b"To: rcpt1@example.net,", b"To: =?utf-8?q?rcpt1=40example=2Enet=2C?="),
        HEAD.replace(b"rcpt1@example.net", b"rcpt1@exam\r\n ple.net"),
        HEAD.replace(b"Ann <ann@", b"Ann =?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=<ann@"),
        HEAD.replace(b"<1.2@", b"<<1.2@"),
        HEAD + b"\r\n",
        b" " + HEAD,
        HEAD.replace(b"X-Tag", b"X Tag"),
    ],
)
def test_head_reads_back_refuses_what_verify_refuses(head: bytes) -> None:
    assert not compose._head_reads_back(head, **HEAD_ARGS)


@HYPOTHESIS
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(HEAD)), st.sampled_from(INSERTS)),
        min_size=1,
        max_size=3,
    )
)
def test_head_reads_back_only_what_verify_passes(inserts: list[tuple[int, bytes]]) -> None:
    head = HEAD
    for at, insert in sorted(inserts, reverse=True):
        head = head[:at] + insert + head[at:]
    if compose._head_reads_back(head, **HEAD_ARGS):
        event("passed")
        assert re.fullmatch(rb"(?:[^\r\n]*\r\n)+", head)
        compose.verify(head + b"\r\n", **HEAD_ARGS)  # raises UnsafeMessage if it disagrees


# --- each header the direct path writes itself, against the package's fold -------------------

printable = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=90)


@HYPOTHESIS
@given(
    name=st.sampled_from(["Subject", "X-Tag", "Content-ID", "Auto-Submitted", "X-" + "n" * 60]),
    value=st.one_of(printable, header_text),
)
def test_unstructured_headers_as_the_package_folds_them(name: str, value: str) -> None:
    try:
        value = compose.clean_header_value(value)  # what the direct path is given
    except ValidationError:
        return
    assert compose._unstructured(name, value) == compose._fold(name, value)


simple_mailboxes = st.from_regex(compose._SIMPLE_MAILBOX, fullmatch=True)


@HYPOTHESIS
@given(
    name=st.sampled_from(["From", "To", "Cc", "Reply-To"]),
    mailboxes=st.lists(
        st.one_of(
            simple_mailboxes, st.builds(mailbox_of_length, st.just("To"), st.integers(70, 82))
        ),
        min_size=1,
        max_size=4,
    ),
)
def test_address_headers_as_the_package_folds_them(name: str, mailboxes: list[str]) -> None:
    assert compose._mailboxes(name, mailboxes) == compose._fold(name, ", ".join(mailboxes))


@HYPOTHESIS
@given(
    name=st.one_of(st.from_regex(compose._SIMPLE_NAME, fullmatch=True), header_text),
    addr=st.sampled_from(["bench@example.com", "o'neil+x@sub.example.org"]),
)
def test_from_with_a_name_as_the_package_folds_it(name: str, addr: str) -> None:
    try:
        name = compose.clean_header_value(name)  # what the direct path is given
    except ValidationError:
        return
    if not name:
        return
    expected = compose._fold("From", compose.Address(display_name=name, addr_spec=addr))
    assert compose._from_with_name(name, addr) == expected


@HYPOTHESIS
@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=5, minutes=30))]),
    )
)
def test_date_as_the_package_folds_it(moment: dt.datetime) -> None:
    date = email.utils.format_datetime(moment)
    assert compose._date(date) == compose._fold("Date", date)


@HYPOTHESIS
@given(st.from_regex(compose._MESSAGE_ID, fullmatch=True))
def test_message_id_as_the_package_folds_it(message_id: str) -> None:
    literal = compose._literal("Message-ID", message_id)
    assert literal in (None, compose._fold("Message-ID", message_id))


@pytest.mark.parametrize("subtype", ["mixed", "alternative", "related"])
def test_multipart_type_as_the_package_folds_it(subtype: str) -> None:
    for boundary in ("=" * 15 + "1234567890123456789==", "=" * 15 + "0" * 19 + "==.0"):
        value = f'multipart/{subtype}; boundary="{boundary}"'
        assert compose._multipart_type(subtype, boundary) == compose._fold("Content-Type", value)


def disposition_by_the_package(disposition: str, filename: str) -> bytes:
    part = EmailMessage(policy=compose.POLICY)
    part.set_content(b"x", "application", "pdf", filename=filename, disposition=disposition)
    return b"".join(
        compose.POLICY.fold_binary(n, v)
        for n, v in part.raw_items()
        if n.lower() == "content-disposition"
    )


@HYPOTHESIS
@given(
    disposition=st.sampled_from(["attachment", "inline"]),
    filename=st.one_of(
        st.from_regex(compose._SIMPLE_FILENAME, fullmatch=True), printable, header_text
    ),
)
def test_content_disposition_as_the_package_writes_it(disposition: str, filename: str) -> None:
    try:
        filename = compose.clean_filename(filename)
    except ValidationError:
        return
    expected = disposition_by_the_package(disposition, filename)
    assert compose._disposition(disposition, filename) == expected
