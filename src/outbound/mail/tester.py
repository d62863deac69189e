"""The connection test: open a connection like the sender would, optionally send one
message, say QUIT (also when a step failed, if the server is still in step), and report
every step."""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from typing import Any

from outbound.core import metrics
from outbound.mail.compose import envelope_sender, new_message_id
from outbound.mail.transport import (
    Session,
    SmtpTarget,
    Step,
    StepFailed,
    close_quietly,
    in_step,
    open_connection,
    say_goodbye,
)

SUCCESS_MESSAGE = "Connection successfully tested."


@dataclass
class TestReport:
    ok: bool
    message: str
    steps: list[Step] = field(default_factory=list)
    failed_step: str | None = None
    uses_microsoft: bool = False

    __test__ = False  # not a pytest test class

    def steps_as_dicts(self) -> list[dict[str, Any]]:
        return [s.as_dict() for s in self.steps]


def build_test_message(*, sender: str, sender_name: str, receiver: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = formataddr((sender_name, sender)) if sender_name else sender
    msg["To"] = receiver
    msg["Subject"] = "Outbound test message"
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = new_message_id(sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(
        "This message was sent by Outbound to test the SMTP configuration.\n"
        "If you received it, the configuration works.\n"
    )
    return msg


def run_test(
    target: SmtpTarget,
    *,
    receiver: str | None = None,
    sender: str = "",
    sender_name: str = "",
    on_step: Callable[[Step], None] | None = None,
) -> TestReport:
    elapsed, ok = metrics.timed(), False
    try:
        report = _run_test(target, receiver, sender, sender_name, on_step)
        ok = report.ok
        return report
    finally:
        metrics.smtp_test_done(ok, elapsed())


def _run_test(
    target: SmtpTarget,
    receiver: str | None,
    sender: str,
    sender_name: str,
    on_step: Callable[[Step], None] | None,
) -> TestReport:
    session = Session(target, on_step)
    smtp: smtplib.SMTP | None = None
    try:
        smtp = open_connection(target, session)
        if receiver:
            with session.step("send") as step:
                message = build_test_message(
                    sender=envelope_sender(sender, target.username) or target.username,
                    sender_name=sender_name,
                    receiver=receiver,
                )
                refused = smtp.send_message(message)
                if refused:
                    raise smtplib.SMTPRecipientsRefused(refused)
                # The address as the caller typed it, never scrubbed (see Session.step).
                step.detail = f"Test message accepted for {receiver}."
                step.data["message_id"] = message["Message-ID"]
        with session.step("quit") as step:
            code, text = smtp.quit()
            step.data["reply"] = f"{code} {text.decode('utf-8', 'replace')}"
            step.detail = "Said goodbye."
            smtp = None
        return TestReport(
            ok=True,
            message=SUCCESS_MESSAGE,
            steps=session.steps,
            uses_microsoft=target.uses_microsoft,
        )
    except StepFailed as failure:
        if smtp is not None and in_step(failure, session):
            say_goodbye(smtp, timeout=session.remaining())
            smtp = None
        return TestReport(
            ok=False,
            message=failure.message,
            steps=session.steps,
            failed_step=failure.step,
            uses_microsoft=target.uses_microsoft,
        )
    finally:
        session.close()
        close_quietly(smtp)
