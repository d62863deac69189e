"""Tasks (Django's Tasks API): their only argument is a message id — never content, never a
secret."""

from __future__ import annotations

from django_tasks import task


@task()
def deliver_message(message_id: int) -> str:
    from outbound.mail.sender import deliver

    return deliver(message_id)
