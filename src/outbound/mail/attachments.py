"""Attachment contents in Django's default storage: written when a message is queued, read
back (and checked against their SHA-256) when it is sent, deleted with their message (see
``outbound.mail.models``). Never in the message row or a task's arguments."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from outbound.mail import compose
from outbound.mail.models import Attachment, Message


def store(pairs: Iterable[tuple[Message, list[dict[str, Any]]]]) -> list[Attachment]:
    """Save the cleaned attachments (``outbox._clean``'s ``attachments``) of saved messages
    and write their rows. A failure removes the files written so far, so a refused or
    rolled-back write leaves none behind (the caller's transaction drops the rows)."""
    rows: list[Attachment] = []
    try:
        for message, attachments in pairs:
            for part in attachments:
                content: bytes = part["content"]
                # A random name: the user's filename never becomes a path.
                name = default_storage.save(f"{uuid.uuid4().hex}.bin", ContentFile(content))
                rows.append(
                    Attachment(
                        message=message,
                        filename=part["filename"],
                        content_type=part["content_type"],
                        size=len(content),
                        content_id=part["content_id"],
                        storage_name=name,
                        sha256=hashlib.sha256(content).hexdigest(),
                    )
                )
        Attachment.objects.bulk_create(rows)
    except BaseException:
        for row in rows:
            default_storage.delete(row.storage_name)
        raise
    return rows


class MissingAttachment(ValueError):
    """A stored attachment is gone or altered: the message cannot be sent as submitted."""


class StorageUnavailable(OSError):
    """The storage could not be read just now (a full disk, too many open files, a network
    share's hiccup): the message waits for a retry, it is not failed."""


def load(message: Message) -> list[compose.Attachment]:
    """The message's attachments for :func:`compose.render`, each checked against the
    SHA-256 recorded when it was stored."""
    parts = []
    # Attachments are named by position: the reason reaches recipients' results and the
    # delivery log line, which carry no content the sender wrote (a filename is such).
    for number, row in enumerate(message.attachments.all(), start=1):
        try:
            with default_storage.open(row.storage_name, "rb") as f:
                content = f.read()
        except FileNotFoundError:
            raise MissingAttachment(f"attachment {number} is missing") from None
        except OSError as exc:
            raise StorageUnavailable(f"attachment {number} could not be read") from exc
        if hashlib.sha256(content).hexdigest() != row.sha256:
            raise MissingAttachment(f"attachment {number} was altered")
        parts.append(
            compose.Attachment(
                filename=row.filename,
                content_type=row.content_type,
                content=content,
                content_id=row.content_id,
            )
        )
    return parts
