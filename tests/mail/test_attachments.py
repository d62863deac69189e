"""Attachments on ``POST /api/messages/``: files and inline images arrive at a real SMTP
server as the parts they were given (RFC 2231 filenames, Content-IDs, the exact bytes);
bad filenames, media types, base64 and over-size messages are refused naming the field,
with nothing stored; contents live in Django's storage (not in a task's arguments) and go
with their message; the API and the console list attachments without their content."""

from __future__ import annotations

import base64
import email
import hashlib
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.mail import sender
from outbound.mail.models import Attachment, Message
from tests.mail.test_sender import MESSAGES, configure, run_worker, submit
from tests.support.smtp import Scripted, smtp_server

PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" * 50
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4
HTML = '<p>Our logo: <img src="cid:logo@example.com"></p>'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pdf(**changes: Any) -> dict[str, Any]:
    return {
        "filename": "Quarterly report.pdf",
        "content_type": "application/pdf",
        "content": b64(PDF),
        **changes,
    }


def logo(**changes: Any) -> dict[str, Any]:
    return {
        "filename": "logo.png",
        "content_type": "image/png",
        "content": b64(PNG),
        "content_id": "logo@example.com",
        **changes,
    }


def stored_files() -> list[Path]:
    storages: dict[str, Any] = settings.STORAGES
    options = storages["default"]["OPTIONS"]
    root = Path(options["location"])
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


@pytest.fixture(autouse=True)
def _fresh_pool() -> Any:
    sender.POOL.discard()
    yield
    sender.POOL.discard()


@pytest.mark.django_db(transaction=True)
def test_attachments_and_an_inline_image_arrive_as_their_parts(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        message = submit(
            admin_client,
            text="See the report.\n",
            html=HTML,
            attachments=[pdf(), logo(), pdf(filename="Résumé \u2013 Zoë.pdf", content=b64(b"x"))],
        )
        run_worker()
    message.refresh_from_db()
    assert message.status == "sent"
    [envelope] = srv.recorder.messages
    raw = envelope.original_content
    assert isinstance(raw, bytes)
    # Non-ASCII filenames go out encoded per RFC 2231 (the wire is 7-bit).
    assert b"filename*=utf-8''R%C3%A9sum%C3%A9%20%E2%80%93%20Zo%C3%AB.pdf" in raw
    got = email.message_from_bytes(raw, policy=default_policy)
    assert isinstance(got, EmailMessage)
    assert got.get_content_type() == "multipart/mixed"
    text = got.get_body(("plain",))
    assert text is not None and text.get_content().rstrip() == "See the report."
    related = got.get_body(("related",))
    assert related is not None and related.get_content_type() == "multipart/related"
    html_part, image = related.iter_parts()
    assert html_part.get_content_type() == "text/html" and "cid:logo@example.com" in str(
        html_part.get_content()
    )
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<logo@example.com>"
    assert image.get_content_disposition() == "inline"
    assert image.get_filename() == "logo.png"
    assert image.get_content() == PNG
    files = list(got.iter_attachments())
    assert [(f.get_filename(), f.get_content_type()) for f in files] == [
        ("Quarterly report.pdf", "application/pdf"),
        ("Résumé \u2013 Zoë.pdf", "application/pdf"),
    ]
    assert [f.get_content() for f in files] == [PDF, b"x"]
    assert files[0].get_content_disposition() == "attachment"

    # The API lists them, never their content.
    r = admin_client.get(f"{MESSAGES}{message.pk}/")
    assert r.status_code == 200
    assert r.data["attachments"] == [
        {
            "filename": "Quarterly report.pdf",
            "content_type": "application/pdf",
            "size": len(PDF),
            "content_id": "",
        },
        {
            "filename": "logo.png",
            "content_type": "image/png",
            "size": len(PNG),
            "content_id": "logo@example.com",
        },
        {
            "filename": "Résumé \u2013 Zoë.pdf",
            "content_type": "application/pdf",
            "size": 1,
            "content_id": "",
        },
    ]
    assert b64(PDF)[:40] not in r.content.decode()


@pytest.mark.django_db(transaction=True)
def test_contents_are_in_storage_not_in_a_task_or_the_row_and_go_with_the_message(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, html=HTML, attachments=[pdf(), logo()])
        assert not DBTaskResult.objects.exists()  # the outbox is the queue
        rows = list(Attachment.objects.filter(message=message))
        assert [(a.size, a.sha256) for a in rows] == [
            (len(PDF), hashlib.sha256(PDF).hexdigest()),
            (len(PNG), hashlib.sha256(PNG).hexdigest()),
        ]
        files = stored_files()
        assert sorted(p.read_bytes() for p in files) == sorted([PDF, PNG])
        # The user's filename never becomes a path.
        assert not any("report" in str(p) or "logo" in str(p) for p in files)
        run_worker()
    assert Message.objects.get(pk=message.pk).status == "sent"
    Message.objects.filter(pk=message.pk).delete()
    assert not Attachment.objects.exists()
    assert stored_files() == []


@pytest.mark.django_db(transaction=True)
def test_a_missing_stored_file_fails_the_message_instead_of_sending_it_without(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, attachments=[pdf()])
        for path in stored_files():
            path.unlink()
        run_worker()
    message.refresh_from_db()
    # Only the failure notice went out (to the configuration's failure address).
    assert [e.rcpt_tos for e in srv.recorder.messages] == [["ops@example.com"]]
    assert message.status == "failed"
    assert "attachment 1 is missing" in message.last_error
    assert "Quarterly report" not in message.last_error  # no content in results or logs


@pytest.mark.django_db(transaction=True)
def test_storage_that_cannot_be_read_just_now_defers_the_message(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.core.files.storage import FileSystemStorage

    def unreadable(self: Any, name: str, mode: str = "rb") -> Any:
        raise OSError(24, "Too many open files")

    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, attachments=[pdf()])
        monkeypatch.setattr(FileSystemStorage, "open", unreadable)
        run_worker()
    message.refresh_from_db()
    assert message.status == "deferred"  # retried later, not failed
    assert srv.recorder.messages == []  # no failure notice either


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("attachment", "expected"),
    [
        (pdf(filename="../x"), "Item 1: filename: The filename may not contain path separators"),
        (pdf(filename="a/b"), "Item 1: filename: The filename may not contain path separators"),
        (pdf(filename="a\\b"), "Item 1: filename: The filename may not contain path separators"),
        (pdf(filename="a\rb.pdf"), "Item 1: filename: The filename may not contain control"),
        (pdf(filename="a\u2028b.pdf"), "Item 1: filename: The filename may not contain control"),
        (pdf(filename=".."), "Item 1: filename: The filename may not contain path separators"),
        (pdf(content_type="pdf"), 'Item 1: content_type: Enter a media type as "type/subtype"'),
        (pdf(content_type="text/plain; charset=x"), "Item 1: content_type: Enter a media type"),
        (pdf(content_type="multipart/mixed"), "Item 1: content_type: multipart/* and message/*"),
        (pdf(content_type="message/rfc822"), "Item 1: content_type: multipart/* and message/*"),
        (pdf(content="not base64!"), "Item 1: content: Enter the content as base64"),
        (pdf(content="QUJD\nREVG"), "Item 1: content: Enter the content as base64"),
        (pdf(content="QUI"), "Item 1: content: Enter the content as base64"),  # no padding
        (pdf(content="QR=="), "Item 1: content: Enter the content as base64"),  # not canonical
        (logo(content_id="no spaces@x"), "Item 1: content_id: Enter a content ID"),
    ],
)
def test_a_bad_attachment_is_a_400_naming_it_and_nothing_is_stored(
    admin_client: APIClient, attachment: dict[str, Any], expected: str
) -> None:
    configure_anything(admin_client)
    r = admin_client.post(
        MESSAGES,
        {"to": ["ann@example.com"], "html": HTML, "attachments": [attachment]},
        format="json",
    )
    assert r.status_code == 400, r.data
    assert list(r.data) == ["attachments"]
    assert r.data["attachments"][0].startswith(expected), r.data
    assert not Message.objects.exists() and stored_files() == []


@pytest.mark.django_db
def test_an_inline_attachment_needs_an_html_body(admin_client: APIClient) -> None:
    configure_anything(admin_client)
    r = admin_client.post(
        MESSAGES,
        {"to": ["ann@example.com"], "text": "Hi", "attachments": [logo()]},
        format="json",
    )
    assert r.status_code == 400
    assert "give an html body" in r.data["attachments"][0]
    assert stored_files() == []


@pytest.mark.django_db
def test_a_message_over_the_size_limit_is_a_400_naming_the_attachments(
    admin_client: APIClient, settings: Any
) -> None:
    configure_anything(admin_client)
    settings.OUTBOUND_MAX_MESSAGE_BYTES = 4096
    body = {"to": ["ann@example.com"], "text": "Hi"}
    r = admin_client.post(
        MESSAGES, {**body, "attachments": [pdf(content=b64(bytes(4095)))]}, format="json"
    )
    assert r.status_code == 400
    assert r.data == {
        "attachments": [
            "The message may not exceed 4096 bytes (text, html and attachments together)."
        ]
    }
    assert not Message.objects.exists() and stored_files() == []
    r = admin_client.post(
        MESSAGES, {**body, "attachments": [pdf(content=b64(bytes(4094)))]}, format="json"
    )
    assert r.status_code == 202, r.data
    assert len(stored_files()) == 1


@pytest.mark.django_db
def test_the_default_limit_is_25_mib_and_a_larger_request_body_is_a_413(
    admin_client: APIClient,
) -> None:
    configure_anything(admin_client)
    mib = 1024 * 1024
    big = pdf(content=b64(bytes(25 * mib - 2)))
    r = admin_client.post(
        MESSAGES, {"to": ["ann@example.com"], "text": "Hi", "attachments": [big]}, format="json"
    )
    assert r.status_code == 202, str(r.data)[:300]
    assert Attachment.objects.get().size == 25 * mib - 2
    r = admin_client.post(
        MESSAGES, {"to": ["ann@example.com"], "text": "Hi!", "attachments": [big]}, format="json"
    )
    assert r.status_code == 400
    assert "25 MiB" in r.data["attachments"][0]
    # A body beyond anything a 25 MiB message can be is refused before it is read.
    r = admin_client.post(
        MESSAGES,
        '{"text": "' + "x" * (76 * mib + 1) + '"}',
        content_type="application/json",
    )
    assert r.status_code == 413
    assert "25 MiB" in r.data["detail"]
    assert len(stored_files()) == 1


@pytest.mark.django_db
def test_the_idempotency_fingerprint_covers_the_attachments(admin_client: APIClient) -> None:
    configure_anything(admin_client)
    body = {"to": ["ann@example.com"], "text": "Hi", "idempotency_key": "k1"}
    r = admin_client.post(MESSAGES, {**body, "attachments": [pdf()]}, format="json")
    assert r.status_code == 202
    again = admin_client.post(MESSAGES, {**body, "attachments": [pdf()]}, format="json")
    assert (again.status_code, again.data["id"]) == (200, r.data["id"])
    other = admin_client.post(
        MESSAGES, {**body, "attachments": [pdf(content=b64(b"other"))]}, format="json"
    )
    assert other.status_code == 422
    assert Message.objects.count() == 1 and len(stored_files()) == 1


@pytest.mark.django_db
def test_the_console_lists_attachments_without_their_content(
    admin_client: APIClient, admin_user: User
) -> None:
    configure_anything(admin_client)
    r = admin_client.post(
        MESSAGES,
        {
            "to": ["ann@example.com"],
            "html": HTML,
            "attachments": [pdf(content=b64(b"SECRET-PDF-BYTES")), logo()],
        },
        format="json",
    )
    assert r.status_code == 202
    console = Client()
    console.force_login(admin_user)
    page = console.get(f"/console/messages/{r.data['id']}/").content.decode()
    assert "Attachments" in page
    assert "Quarterly report.pdf" in page and "application/pdf" in page
    assert "16\xa0bytes" in page  # len(b"SECRET-PDF-BYTES")
    assert "logo.png" in page and "image/png" in page
    assert "SECRET-PDF-BYTES" not in page and b64(b"SECRET-PDF-BYTES") not in page


def configure_anything(client: APIClient) -> None:
    """An active configuration (nothing is delivered in these tests)."""
    r = client.patch(
        "/api/administration/smtp-settings/",
        {"host": "smtp.example.com", "port": 25, "tls": False, "from_email": "app@example.com"},
        format="json",
    )
    assert r.status_code == 200, r.data
