"""Submitting mail: the outbox row and its recipients are written in the caller's transaction.
The outbox is the queue: workers claim due rows from it (:mod:`outbound.mail.sender`), so a
committed row is all a message needs to be sent, and a rolled-back request sends nothing."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import NOT_PROVIDED, Field, Model
from django.utils import timezone
from rest_framework import status

from outbound.core.errors import Conflict, ServiceError, validation_error_body
from outbound.mail import attachments as stored_attachments
from outbound.mail import compose
from outbound.mail.models import Message, Recipient, RecipientKind, SmtpConfig
from outbound.mail.selectors import active_sender

MAX_RECIPIENTS = 100
MAX_BODY_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 100
NO_ACTIVE_CONFIG = "No SMTP configuration is active; nothing was queued."
IDEMPOTENCY_KEY_REUSED = (
    "This idempotency_key was already used with a different message. An idempotency_key "
    "can only be reused with the same request body it was first sent with; use a new key "
    "for a new message."
)
# What a submission says, with the value an omitted field means: the fingerprint's input.
MESSAGE_FIELDS: dict[str, Any] = {
    "to": [], "cc": [], "bcc": [], "subject": "", "text": "", "html": "", "reply_to": "",
    "headers": {},
}  # fmt: skip


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    clean: dict[str, Any] = {}
    for kind in ("to", "cc", "bcc"):
        mailboxes = []
        for i, value in enumerate(data.get(kind) or []):
            try:
                mailboxes.append(compose.clean_mailbox(str(value)))
            except ValidationError as exc:
                errors.setdefault(kind, []).append(f"Item {i + 1}: {exc.messages[0]}")
        clean[kind] = mailboxes
    total = sum(len(data.get(k) or []) for k in ("to", "cc", "bcc"))
    if total == 0:
        errors.setdefault("to", []).append("At least one recipient is required.")
    if total > MAX_RECIPIENTS:
        errors.setdefault("to", []).append(
            f"At most {MAX_RECIPIENTS} recipients (to, cc and bcc together) are allowed."
        )
    for field in ("subject",):
        try:
            clean[field] = compose.clean_header_value(data.get(field) or "")
        except ValidationError as exc:
            errors[field] = exc.messages
    if data.get("reply_to"):
        try:
            clean["reply_to"] = compose.clean_mailbox(data["reply_to"])
        except ValidationError as exc:
            errors["reply_to"] = exc.messages
    else:
        clean["reply_to"] = ""
    headers: dict[str, str] = {}
    for name, value in (data.get("headers") or {}).items():
        try:
            headers[compose.clean_header_name(str(name))] = compose.clean_header_value(str(value))
        except ValidationError as exc:
            errors.setdefault("headers", []).extend(exc.messages)
    clean["headers"] = headers
    clean["text"], clean["html"] = data.get("text") or "", data.get("html") or ""
    if not (clean["text"] or clean["html"]):
        errors.setdefault("text", []).append("Give a text or an html body.")
    sizes = {field: len(clean[field].encode()) for field in ("text", "html")}
    if sum(sizes.values()) > MAX_BODY_BYTES:
        # Name the part that carries most of the weight (an html-only message has no "text").
        field = max(sizes, key=lambda name: sizes[name])
        errors.setdefault(field, []).append("The body may not exceed 10 MiB (text and html).")
    clean["attachments"] = _clean_attachments(data.get("attachments") or [], clean, errors)
    if errors:
        raise ValidationError(errors)
    return clean


def _clean_attachments(
    given: list[dict[str, Any]], clean: dict[str, Any], errors: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """The attachments with their content decoded; problems are added to ``errors`` (under
    ``attachments``, ``Item n: field: …``), and so is a message over the size limit."""
    found: list[str] = []
    parts: list[dict[str, Any]] = []
    if len(given) > MAX_ATTACHMENTS:
        found.append(f"At most {MAX_ATTACHMENTS} attachments are allowed.")
        given = []
    content_ids: set[str] = set()
    for i, item in enumerate(given):
        part: dict[str, Any] = {}
        for field, cleaner in (
            ("filename", compose.clean_filename),
            ("content_type", compose.clean_content_type),
        ):
            try:
                part[field] = cleaner(str(item.get(field) or ""))
            except ValidationError as exc:
                found.append(f"Item {i + 1}: {field}: {exc.messages[0]}")
        part["content_id"] = ""
        if item.get("content_id"):
            try:
                part["content_id"] = compose.clean_content_id(str(item["content_id"]))
            except ValidationError as exc:
                found.append(f"Item {i + 1}: content_id: {exc.messages[0]}")
            else:
                if part["content_id"].lower() in content_ids:
                    found.append(f"Item {i + 1}: content_id: Another attachment has this ID.")
                content_ids.add(part["content_id"].lower())
                if not clean["html"]:
                    found.append(
                        f"Item {i + 1}: content_id: An inline attachment (content_id) is "
                        "shown by the html body: give an html body or leave content_id out."
                    )
        encoded = str(item.get("content") or "")
        try:
            # Strict: the base64 alphabet with its padding, no line breaks or other
            # characters, and in its one canonical spelling (so the fingerprint of the text
            # is the fingerprint of the bytes).
            part["content"] = base64.b64decode(encoded, validate=True)
            if base64.b64encode(part["content"]).decode() != encoded:
                raise ValueError
        except (binascii.Error, ValueError):
            found.append(
                f"Item {i + 1}: content: Enter the content as base64 (RFC 4648, with padding, "
                "without line breaks)."
            )
        parts.append(part)
    if found:
        errors.setdefault("attachments", []).extend(found)
    limit = settings.OUTBOUND_MAX_MESSAGE_BYTES
    sizes = {field: len(clean[field].encode()) for field in ("text", "html")}
    sizes["attachments"] = sum(len(p.get("content", b"")) for p in parts)
    if sum(sizes.values()) > limit:
        field = max(sizes, key=lambda name: sizes[name])
        errors.setdefault(field, []).append(
            f"The message may not exceed {_size(limit)} (text, html and attachments together)."
        )
    return parts


def _size(n: int) -> str:
    mib = n / (1024 * 1024)
    return f"{mib:g} MiB" if mib >= 1 else f"{n} bytes"


def message_submit(
    *, data: dict[str, Any], actor: Any, idempotency_key: str | None = None
) -> tuple[Message, bool]:
    """Queue a message; ``(message, created)``. The same key from the same caller with the
    same message returns the first message instead of queueing a second one; with a different
    message it is refused (422), as a key names one request."""
    owner = actor if getattr(actor, "pk", None) else None
    fingerprint = request_fingerprint(data) if idempotency_key else ""
    if idempotency_key:
        existing = Message.objects.filter(
            submitted_by=owner, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return _replay(existing, fingerprint), False
    pending = _prepare(
        _clean(data),
        owner=owner,
        idempotency_key=idempotency_key or None,
        request_fingerprint=fingerprint,
    )
    try:
        with transaction.atomic():
            message = _write(pending)
    except IntegrityError:
        # The same key raced in from a concurrent request: that one is the key's message.
        existing = Message.objects.filter(
            submitted_by=owner, idempotency_key=idempotency_key
        ).first()
        if existing is None:
            raise
        return _replay(existing, fingerprint), False
    return message, True


@dataclass(frozen=True)
class Refused:
    """A batch item the API already refused (its shape): its errors go back as they are."""

    errors: dict[str, Any]


@dataclass
class BatchOutcome:
    """One result per item, in input order: ``{"id", "status"}`` or ``{"errors"}``."""

    results: list[dict[str, Any]]
    queued: int  # messages newly queued (replays of an idempotency key are not)

    @property
    def accepted(self) -> int:
        return sum(1 for result in self.results if "errors" not in result)


def messages_submit_batch(*, items: Sequence[dict[str, Any] | Refused], actor: Any) -> BatchOutcome:
    """Queue many messages in one transaction, each validated exactly as a single submission
    (:func:`_clean`) and with its own ``idempotency_key``; invalid items are reported and
    skipped, the valid ones are written with a few bulk statements whatever their number.

    Keys behave as if the items were submitted one after the other: a key queued before (or
    earlier in this batch) with the same message gives that message; with a different
    message the item is refused (``errors.idempotency_key``). Nothing is queued when no
    configuration is active (:class:`Conflict`) and there is something new to queue."""
    owner = actor if getattr(actor, "pk", None) else None
    # A key of this batch raced in from a concurrent request: plan again, now seeing it.
    # Each lost race commits one more key, so as many tries as keys (plus one) suffice.
    tries = 1 + sum(1 for i in items if not isinstance(i, Refused) and i.get("idempotency_key"))
    for _ in range(tries - 1):
        try:
            return _submit_batch(items, owner=owner)
        except IntegrityError:
            continue
    return _submit_batch(items, owner=owner)


def _submit_batch(items: Sequence[dict[str, Any] | Refused], *, owner: Any) -> BatchOutcome:
    keys = {
        item["idempotency_key"]
        for item in items
        if not isinstance(item, Refused) and item.get("idempotency_key")
    }
    earlier: dict[str, Message] = {}
    if keys:
        earlier = {
            message.idempotency_key or "": message
            for message in Message.objects.filter(
                submitted_by=owner, idempotency_key__in=keys
            ).only("pk", "status", "idempotency_key", "request_fingerprint")
        }
    results: list[dict[str, Any]] = []
    # The items to write: their index in ``results`` and what to write.
    new: list[tuple[int, dict[str, Any], str | None, str]] = []
    # A key first used in this batch: its fingerprint and the index of the item queueing it.
    claimed: dict[str, tuple[str, int]] = {}
    duplicates: list[tuple[int, int]] = []  # (item, the earlier item with its key and body)
    for index, item in enumerate(items):
        if isinstance(item, Refused):
            results.append({"errors": item.errors})
            continue
        data = dict(item)
        key = data.pop("idempotency_key", None) or None
        fingerprint = request_fingerprint(data) if key else ""
        if key in earlier:
            try:
                message = _replay(earlier[key], fingerprint)
            except ServiceError as exc:
                results.append({"errors": {"idempotency_key": [exc.detail]}})
            else:
                results.append({"id": message.pk, "status": str(message.status)})
            continue
        if key in claimed:
            first_fingerprint, first = claimed[key]
            if first_fingerprint == fingerprint:
                results.append({})  # filled in below, once the first item has its id
                duplicates.append((index, first))
            else:
                results.append({"errors": {"idempotency_key": [IDEMPOTENCY_KEY_REUSED]}})
            continue
        try:
            clean = _clean(data)
        except ValidationError as exc:
            results.append({"errors": validation_error_body(exc)})
            continue
        if key:
            claimed[key] = (fingerprint, index)
        results.append({})
        new.append((index, clean, key, fingerprint))
    if new:
        active = active_sender()
        if active is None:
            raise Conflict(NO_ACTIVE_CONFIG, code="no_active_configuration")
        sender = compose.envelope_sender(*active)
        messages = [
            _new_message(
                clean, sender=sender, owner=owner, idempotency_key=key, request_fingerprint=fp
            )
            for _, clean, key, fp in new
        ]
        with transaction.atomic():
            # PostgreSQL and SQLite return the new ids from the INSERT.
            Message.objects.bulk_create(messages)
            Recipient.objects.bulk_create(
                recipient
                for message, (_, clean, _, _) in zip(messages, new, strict=True)
                for recipient in _recipients_of(message, clean)
            )
            # As the single path stores them: files in the storage, rows in one INSERT.
            stored_attachments.store(
                (message, clean["attachments"])
                for message, (_, clean, _, _) in zip(messages, new, strict=True)
                if clean.get("attachments")
            )
        for message, (index, _, _, _) in zip(messages, new, strict=True):
            results[index] = {"id": message.pk, "status": str(message.status)}
    for index, first in duplicates:
        results[index] = dict(results[first])
    return BatchOutcome(results=results, queued=len(new))


def request_fingerprint(data: dict[str, Any]) -> str:
    """SHA-256 of the submission in a canonical form (sorted keys, omitted fields as their
    empty value), so the same message written differently is the same request."""
    canonical = {name: data.get(name) or empty for name, empty in MESSAGE_FIELDS.items()}
    if data.get("attachments"):
        # Only when there are some, so the fingerprints of earlier messages still match;
        # each content by its hash, not the megabytes of its text.
        canonical["attachments"] = [
            {
                "filename": a.get("filename") or "",
                "content_type": a.get("content_type") or "",
                "content_id": a.get("content_id") or "",
                "sha256": hashlib.sha256(str(a.get("content") or "").encode()).hexdigest(),
            }
            for a in data["attachments"]
        ]
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(existing: Message, fingerprint: str) -> Message:
    # Messages queued before fingerprints were kept have none: they replay as before.
    if existing.request_fingerprint and existing.request_fingerprint != fingerprint:
        raise ServiceError(
            IDEMPOTENCY_KEY_REUSED,
            code="idempotency_key_reused",
            status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
        )
    return existing


def _queue(
    clean: dict[str, Any],
    *,
    owner: Any,
    idempotency_key: str | None,
    request_fingerprint: str = "",
    is_failure_notice: bool = False,
) -> Message:
    """Write the message and its recipients in the caller's transaction if a configuration is
    active, else :class:`Conflict` and nothing is written (see :func:`_write`)."""
    pending = _prepare(
        clean,
        owner=owner,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        is_failure_notice=is_failure_notice,
    )
    return _write(pending)


@dataclass
class _Pending:
    """A message ready to be written: its values and its recipients' rows as INSERT
    parameters, prepared before the transaction so that as little as possible happens while
    it holds the database (SQLite has one writer at a time)."""

    message: Message  # as it will be once saved, but for its id
    clean: dict[str, Any]
    sender: tuple[str, str] | None  # the configuration's sender its Message-ID was made for
    row: list[Any]
    recipient_rows: list[Any]
    message_slots: list[int]  # where the message's id goes in recipient_rows


def _prepare(
    clean: dict[str, Any],
    *,
    owner: Any,
    idempotency_key: str | None,
    request_fingerprint: str,
    is_failure_notice: bool = False,
) -> _Pending:
    """The rows of a message and its recipients, as :func:`_new_message` and
    :func:`_recipients_of` make them, without building model instances (a third of the
    time the ORM takes to write them)."""
    sender = _last_sender
    now = timezone.now()
    values = {
        "submitted_by_id": getattr(owner, "pk", None),
        "idempotency_key": idempotency_key,
        "request_fingerprint": request_fingerprint,
        "subject": clean["subject"],
        "text": clean["text"],
        "html": clean["html"],
        "reply_to": clean["reply_to"],
        "headers": clean["headers"],
        # In the domain of the address it will go out from (retries keep it).
        "message_id": compose.new_message_id(compose.envelope_sender(*sender) if sender else ""),
        "is_failure_notice": is_failure_notice,
        "next_attempt_at": now,
    }
    conn = transaction.get_connection()
    values = _with_defaults(conn, Message, values, now)
    # The message as Model.save() leaves it (the id is set once written), without Model.save().
    fields = Message._meta.concrete_fields
    message = Message.from_db(
        conn.alias, [f.attname for f in fields], [values[f.attname] for f in fields]
    )
    columns = _insert_columns(Recipient)
    slots = {field.name: i for i, field in enumerate(columns)}
    template = _prepared(
        conn,
        Recipient,
        _with_defaults(conn, Recipient, {"message_id": None, "kind": "", "address": ""}, now),
    )
    rows: list[Any] = []
    for kind in RecipientKind.values:
        for address in clean[kind]:
            row = list(template)
            row[slots["kind"]] = columns[slots["kind"]].get_db_prep_save(kind, conn)
            row[slots["address"]] = columns[slots["address"]].get_db_prep_save(address, conn)
            rows.extend(row)
    return _Pending(
        message=message,
        clean=clean,
        sender=sender,
        row=_prepared(conn, Message, values),
        recipient_rows=rows,
        message_slots=list(range(slots["message"], len(rows), len(columns))),
    )


def _write(pending: _Pending) -> Message:
    """Write a prepared message in the current transaction: one INSERT for the message, one
    for its recipients.

    The message's INSERT (``INSERT … SELECT … WHERE EXISTS``) checks in the same statement
    that the active configuration still has the sender its Message-ID was made for: the
    sender this process saw last is only a guess to try, never an answer. When the guess is
    wrong or absent (the process's first message, a configuration deactivated or changed
    since), the configuration is read fresh and held until the transaction ends (``FOR
    UPDATE``; on SQLite the transaction holds the database), and the message written for
    it; with none active, :class:`Conflict` (409) and nothing written. So a message is only
    ever queued while a configuration is active, with its Message-ID in that
    configuration's domain, and a deactivation is seen by the next submission in every
    process: there is no cache to expire."""
    global _last_sender
    pk = None if pending.sender is None else _insert_message(pending, pending.sender)
    if pk is None:
        active = active_sender(lock=True)
        if active is None:
            raise Conflict(NO_ACTIVE_CONFIG, code="no_active_configuration")
        _last_sender = active
        message = pending.message
        message.message_id = compose.new_message_id(compose.envelope_sender(*active))
        pending.row = _prepared(
            transaction.get_connection(),
            Message,
            {f.attname: getattr(message, f.attname) for f in Message._meta.concrete_fields},
        )
        pk = _insert_message(pending, active)
        if pk is None:  # the configuration is held: cannot happen
            raise RuntimeError("the active configuration changed while it was held")
    conn = transaction.get_connection()
    rows = pending.recipient_rows
    for i in pending.message_slots:
        rows[i] = pk
    if rows:
        with conn.cursor() as cursor:
            cursor.execute(_statement(conn, "recipients", len(pending.message_slots)), rows)
    message = pending.message
    message.pk = pk
    if pending.clean.get("attachments"):
        stored_attachments.store([(message, pending.clean["attachments"])])
    return message


# The active configuration's (sender_address, username) as this process last read it: the
# sender a submission tries first (checked by the INSERT itself, see _write).
_last_sender: tuple[str, str] | None = None


@cache
def _insert_columns(model: type[Model]) -> list[Field[Any, Any]]:
    """The columns an INSERT of ``model`` writes: what ``Model.save()`` writes."""
    meta = model._meta
    return [
        field
        for field in meta.local_concrete_fields
        if field is not meta.auto_field and not field.generated
    ]


def _with_defaults(
    conn: BaseDatabaseWrapper, model: type[Model], values: dict[str, Any], now: Any
) -> dict[str, Any]:
    """``values`` (by attname) and, for every other concrete field, what ``Model.save()``
    would write: ``now`` for ``auto_now``/``auto_now_add``, else the field's default."""
    constant, _ = _constants(conn, model)
    full = {**constant, **values}
    for field in model._meta.concrete_fields:
        if field.attname not in full:
            auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            full[field.attname] = now if auto else field.get_default()
    return full


def _prepared(conn: BaseDatabaseWrapper, model: type[Model], values: dict[str, Any]) -> list[Any]:
    """The INSERT parameters of a row of ``model``, prepared as ``Model.save()`` prepares
    them (``get_db_prep_save``; a constant default once per process)."""
    constant, prepared = _constants(conn, model)
    return [
        prepared[name]
        if name in prepared and values[name] is constant[name]
        else field.get_db_prep_save(values[name], conn)
        for field in _insert_columns(model)
        for name in (field.attname,)
    ]


# (database vendor, model) -> the defaults that are the same for every row, by attname: as
# Python values and as INSERT parameters.
_constant_defaults: dict[tuple[str, type[Model]], tuple[dict[str, Any], dict[str, Any]]] = {}


def _constants(
    conn: BaseDatabaseWrapper, model: type[Model]
) -> tuple[dict[str, Any], dict[str, Any]]:
    key = (conn.vendor, model)
    if key not in _constant_defaults:
        constant: dict[str, Any] = {}
        for field in model._meta.concrete_fields:
            if field.db_default is not NOT_PROVIDED:
                # Model.save() leaves those to the database (DEFAULT); these INSERTs don't.
                raise NotImplementedError(f"{field} has a db_default: write it with the ORM")
            auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            if not auto and not (field.has_default() and callable(field.default)):
                constant[field.attname] = field.get_default()
        prepared = {
            field.attname: field.get_db_prep_save(constant[field.attname], conn)
            for field in _insert_columns(model)
            if field.attname in constant
        }
        _constant_defaults[key] = (constant, prepared)
    return _constant_defaults[key]


# SQL text by (database vendor, statement, rows): built from the models once per process.
_statements: dict[tuple[str, str, int], str] = {}


def _statement(conn: BaseDatabaseWrapper, name: str, rows: int = 1) -> str:
    key = (conn.vendor, name, rows)
    if key not in _statements:
        model = Message if name == "message" else Recipient
        fields = _insert_columns(model)
        columns = ", ".join(_quoted(conn, field) for field in fields)
        slots = ", ".join(["%s"] * len(fields))
        table = conn.ops.quote_name(model._meta.db_table)
        if name == "message":
            config = SmtpConfig._meta
            active, sender_address, username = (
                _quoted(conn, config.get_field(f))
                for f in ("is_active", "sender_address", "username")
            )
            # SQLite gives the new id as lastrowid; RETURNING would cost another step.
            pk = _quoted(conn, Message._meta.get_field("id"))
            returning = "" if conn.vendor == "sqlite" else f" RETURNING {table}.{pk}"
            _statements[key] = (
                f"INSERT INTO {table} ({columns}) SELECT {slots} WHERE EXISTS (SELECT 1 FROM "  # noqa: S608
                f"{conn.ops.quote_name(config.db_table)} WHERE {active} = %s AND "
                f"{sender_address} = %s AND {username} = %s){returning}"
            )
        else:
            values = ", ".join([f"({slots})"] * rows)
            _statements[key] = f"INSERT INTO {table} ({columns}) VALUES {values}"  # noqa: S608
    return _statements[key]


def _quoted(conn: BaseDatabaseWrapper, field: Any) -> str:
    """A model field's column, quoted for ``conn``."""
    return str(conn.ops.quote_name(field.column))


def _insert_message(pending: _Pending, sender: tuple[str, str]) -> int | None:
    """INSERT the message in one statement if the active configuration has ``sender``
    (``(sender_address, username)``); its id, or ``None`` if it was not written. The
    statement is built from the model once (the ORM compiles its INSERT anew for each
    message: a third of a single POST's own time)."""
    conn = transaction.get_connection()
    with conn.cursor() as cursor:
        cursor.execute(_statement(conn, "message"), [*pending.row, True, *sender])
        if conn.vendor == "sqlite":
            return cursor.lastrowid if cursor.rowcount == 1 else None
        row = cursor.fetchone()
    return None if row is None else row[0]


def _new_message(
    clean: dict[str, Any],
    *,
    sender: str,
    owner: Any,
    idempotency_key: str | None,
    request_fingerprint: str,
    is_failure_notice: bool = False,
) -> Message:
    """The outbox row of a cleaned submission, not yet saved (the batch path saves many in
    one statement); ``sender`` is the active configuration's (:func:`active_sender`)."""
    return Message(
        submitted_by=owner,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        subject=clean["subject"],
        text=clean["text"],
        html=clean["html"],
        reply_to=clean["reply_to"],
        headers=clean["headers"],
        # In the domain of the address it will go out from (retries keep it).
        message_id=compose.new_message_id(sender),
        is_failure_notice=is_failure_notice,
        next_attempt_at=timezone.now(),
    )


def _recipients_of(message: Message, clean: dict[str, Any]) -> list[Recipient]:
    return [
        Recipient(message=message, kind=kind, address=address)
        for kind in RecipientKind.values
        for address in clean[kind]
    ]


def queue_failure_notice(*, failed: Message, addresses: list[str], summary: str) -> Message | None:
    """One notice to the configuration's failure addresses; never about a notice."""
    if failed.is_failure_notice or not addresses:
        return None
    clean = {
        "to": addresses, "cc": [], "bcc": [], "reply_to": "", "headers": {}, "html": "",
        "subject": f"Undelivered mail: {failed.subject[:150]}".strip(),
        "text": summary,
    }  # fmt: skip
    try:
        return _queue(clean, owner=None, idempotency_key=None, is_failure_notice=True)
    except Conflict:
        return None


def queue_notice(*, addresses: list[str], subject: str, text: str) -> Message | None:
    """One plain notice to ``addresses`` (an SMTP configuration's failure addresses) from
    the system, in the caller's transaction; ``None`` when there is nobody to tell or no
    configuration is active."""
    if not addresses:
        return None
    clean = {
        "to": addresses, "cc": [], "bcc": [], "reply_to": "", "headers": {}, "html": "",
        "subject": subject[:200], "text": text,
    }  # fmt: skip
    try:
        return _queue(clean, owner=None, idempotency_key=None, is_failure_notice=True)
    except Conflict:
        return None
