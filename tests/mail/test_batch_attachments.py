"""Attachments in ``POST /api/messages/batch/``: each message's attachments are validated as a
single POST validates them, stored like theirs, and arrive at a real SMTP server."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.mail import sender
from outbound.mail.models import Attachment, Message
from tests.mail.test_attachments import HTML, PDF, PNG, logo, pdf, stored_files
from tests.mail.test_sender import configure, parsed, settle
from tests.support.smtp import Scripted, smtp_server

BATCH = "/api/messages/batch/"


@pytest.fixture(autouse=True)
def _fresh_pool() -> Any:
    sender.POOL.discard()
    yield
    sender.POOL.discard()


@pytest.mark.django_db(transaction=True)
def test_batch_messages_carry_their_attachments_to_the_server(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        body = [
            {"to": ["ann@example.com"], "subject": "Report", "text": "See", "attachments": [pdf()]},
            {"to": ["bob@example.com"], "subject": "Logo", "html": HTML, "attachments": [logo()]},
            {"to": ["carl@example.com"], "subject": "Plain", "text": "No files."},
            # The single POST's rule: an inline attachment needs an html body.
            {"to": ["dan@example.com"], "subject": "Bad", "text": "x", "attachments": [logo()]},
        ]
        r = admin_client.post(BATCH, {"messages": body}, format="json")
        assert r.status_code == 202, r.data
        results = r.json()["results"]
        assert [set(result) for result in results[:3]] == [{"id", "status"}] * 3
        assert "give an html body" in results[3]["errors"]["attachments"][0]
        assert Attachment.objects.count() == 2 and len(stored_files()) == 2
        settle()
    assert set(Message.objects.values_list("status", flat=True)) == {"sent"}
    got = {parsed(e)["Subject"]: parsed(e) for e in srv.recorder.messages}
    assert sorted(got) == ["Logo", "Plain", "Report"]
    [report] = got["Report"].iter_attachments()
    assert report.get_filename() == "Quarterly report.pdf" and report.get_content() == PDF
    image = got["Logo"].get_body(("related",))
    assert image is not None
    parts = list(image.iter_parts())
    assert parts[-1]["Content-ID"] == "<logo@example.com>"
    assert parts[-1].get_content() == PNG
    assert list(got["Plain"].iter_attachments()) == []
