"""What an operator may do to a message in the outbox: cancel it before it goes out, or try a
deferred one now. The one place the rule is kept; the API and the console call these.

The outbox is the queue: a worker claims a due message (queued or deferred, its
``next_attempt_at`` passed) by setting it ``sending`` in one ``UPDATE … RETURNING``. So both
actions are one conditional ``UPDATE`` as well, and whichever statement comes first wins:

* cancel: ``queued``/``deferred`` → ``cancelled`` (finished now, any lease cleared). A worker
  never claims a cancelled message, so it is never sent. A message being sent (``sending``)
  cannot be cancelled — the server may already have it; a finished one has nothing to cancel.
  The recipients keep the status they had (``pending``, or ``deferred`` with the last reply):
  it says how far delivery got; the message's status says it stops there.
* retry now: ``deferred`` → ``next_attempt_at`` = now (still ``deferred``): the next worker
  run takes it. Only a deferred message waits for a retry.

Each records its event (``message``, ``cancelled`` / ``retried``) in the same transaction.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import Http404
from django.utils import timezone

from outbound.core.errors import Conflict
from outbound.core.events import record_event
from outbound.mail.models import Message, MessageStatus

RESOURCE = "message"
CANCELLABLE = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
RETRYABLE = (MessageStatus.DEFERRED,)

SENDING = "The message is being delivered now: it can no longer be cancelled."
NOT_CANCELLABLE: dict[str, str] = {
    MessageStatus.SENDING: SENDING,
    MessageStatus.SENT: "The message was sent: there is nothing to cancel.",
    MessageStatus.FAILED: "The message failed: there is nothing to cancel.",
    MessageStatus.CANCELLED: "The message is already cancelled.",
}
NOT_RETRYABLE: dict[str, str] = {
    MessageStatus.QUEUED: (
        "The message is queued: it goes out as soon as a worker is free. Only a deferred "
        "message can be retried now."
    ),
    MessageStatus.SENDING: "The message is being delivered now: it cannot be retried.",
    MessageStatus.SENT: "The message was sent: only a deferred message can be retried.",
    MessageStatus.FAILED: "The message failed: only a deferred message can be retried.",
    MessageStatus.CANCELLED: "The message is cancelled: only a deferred message can be retried.",
}


def can_cancel(message: Message) -> bool:
    return message.status in CANCELLABLE


def can_retry(message: Message) -> bool:
    return message.status in RETRYABLE


def _refuse(pk: int, refusals: dict[str, str], code: str) -> Conflict:
    current = Message.objects.filter(pk=pk).values_list("status", flat=True).first()
    if current is None:
        raise Http404("No message matches the given query.")
    return Conflict(refusals.get(current, "The message cannot be changed now."), code=code)


@transaction.atomic
def message_cancel(*, message: Message, actor: Any) -> Message:
    """Cancel ``message`` unless a worker has it or it is finished (:class:`Conflict`)."""
    now = timezone.now()
    changed = Message.objects.filter(pk=message.pk, status__in=CANCELLABLE).update(
        status=MessageStatus.CANCELLED, finished_at=now, lease_owner="", lease_until=None
    )
    if not changed:
        raise _refuse(message.pk, NOT_CANCELLABLE, "not_cancellable")
    record_event(
        resource_type=RESOURCE,
        resource_id=message.pk,
        action="cancelled",
        actor=actor,
        changed_fields=["status", "finished_at"],
    )
    message.status, message.finished_at = MessageStatus.CANCELLED, now
    message.lease_owner, message.lease_until = "", None
    return message


@transaction.atomic
def message_retry(*, message: Message, actor: Any) -> Message:
    """Make a deferred ``message`` due now; anything else is refused (:class:`Conflict`)."""
    now = timezone.now()
    changed = Message.objects.filter(pk=message.pk, status__in=RETRYABLE).update(
        next_attempt_at=now
    )
    if not changed:
        raise _refuse(message.pk, NOT_RETRYABLE, "not_retryable")
    record_event(
        resource_type=RESOURCE,
        resource_id=message.pk,
        action="retried",
        actor=actor,
        changed_fields=["next_attempt_at"],
    )
    message.next_attempt_at = now
    return message
