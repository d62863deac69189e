"""The Outbound mail and Messages tables at desktop width: no word is broken mid-word (a
status reading "Inactiv|e" or "Deferre|d"), and the row actions are buttons with room
between them that the keyboard reaches."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from outbound.mail import outbox, services
from outbound.mail.models import Attempt, Message
from tests.console.conftest import Console

pytestmark = pytest.mark.browser

# For each element matched: how many lines its text takes (one rect per line box) and the
# words the browser split across lines (a line ending inside a word).
LINES = """
(selector) => [...document.querySelectorAll(selector)].map((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
  return {text: el.textContent.trim(), lines: tops.size};
})
"""

# Every word of a table cell that the browser broke across two lines. A break after a hyphen
# or at a <wbr> (between a host name's labels) is a break between words.
BROKEN_WORDS = """
(selector) => {
  const broken = [];
  for (const cell of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const match of node.data.matchAll(/[^\\s-]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (tops.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}
"""

LONG = "a-descriptive-name-that-goes-on-for-a-while"


def one_line_each(console: Console, selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = console.page.evaluate(LINES, selector)
    assert found, f"nothing matches {selector}"
    return [f for f in found if f["lines"] != 1]


def make_configs() -> None:
    for n in range(3):
        services.smtp_config_create(
            data={
                "host": f"smtp-{n}.{LONG}.example.com",
                "port": 587,
                "security": "starttls",
                "username": f"notifications-{n}@{LONG}.example.com",
                "password": "stored-secret",
                "sender_address": f"no-reply-{n}@{LONG}.example.com",
                "description": "The relay the platform's notifications go out through " * 2,
            },
            actor=None,
            activate=n == 0,
        )


def test_mail_list_keeps_words_and_badges_whole(console: Console, admin_user: Any) -> None:
    make_configs()
    console.sign_in("admin")
    console.goto("/console/mail/")
    assert one_line_each(console, "tbody .badge") == []
    assert one_line_each(console, "thead th:not(:has(.sr-only))") == []
    # State, security, the changed time, the actions: whole words.
    assert console.page.evaluate(BROKEN_WORDS, "tbody td") == []
    assert console.scroll_width() <= 1280
    assert console.tables_fit()


def make_messages(admin_user: Any) -> None:
    config = services.smtp_config_create(
        data={"host": "smtp.example.com", "port": 587, "sender_address": "app@example.com"},
        actor=None,
        activate=True,
    )
    error = (
        "451 4.7.1 Greylisted: the receiving server asks senders it does not know yet to "
        "come back later; please retry in five minutes"
    )
    for n, status in enumerate(["deferred", "failed", "sent", "queued"]):
        message, _ = outbox.message_submit(
            data={
                "to": [f"person-{k}@example.com" for k in range(3)],
                "subject": f"Your weekly report on {LONG} number {n}",
                "text": "Hi.\n",
            },
            actor=admin_user,
        )
        Message.objects.filter(pk=message.pk).update(
            status=status,
            attempt_count=2,
            last_error=error if status != "sent" else "",
            next_attempt_at=timezone.now() + timedelta(minutes=5),
        )
        Attempt.objects.create(
            message=message,
            number=1,
            config=config,
            server=str(config),
            started_at=timezone.now(),
            outcome=status,
        )


def test_messages_list_keeps_words_and_badges_whole(console: Console, admin_user: Any) -> None:
    make_messages(admin_user)
    console.sign_in("admin")
    console.goto("/console/messages/")
    console.shot("messages-list")
    assert one_line_each(console, "tbody .badge") == []
    assert one_line_each(console, "thead th:not(:has(.sr-only))") == []
    assert console.page.evaluate(BROKEN_WORDS, "tbody td") == []
    assert console.scroll_width() <= 1280
    assert console.tables_fit()


# Each row action of the first row: its box, and whether it is drawn as a button (a border).
ACTIONS = """
() => [...document.querySelectorAll("tbody tr:first-child .row-actions :is(a, button)")]
  .map((el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return {name: el.textContent.trim(), left: box.left, right: box.right, top: box.top,
            height: box.height, border: parseFloat(style.borderTopWidth)};
  })
"""


def test_row_actions_are_spaced_buttons_the_keyboard_reaches(
    console: Console, admin_user: Any
) -> None:
    make_configs()
    console.sign_in("admin")
    console.goto("/console/mail/")
    actions = console.page.evaluate(ACTIONS)
    names = [a["name"].split(" ")[0] for a in actions]
    assert names == ["Edit", "Versions", "Duplicate", "Deactivate", "Delete"]
    for action in actions:
        assert action["border"] >= 1, action  # drawn as a button, not a bare link
        assert action["height"] >= 24, action  # a target a finger or a pointer can hit
    for before, after in itertools.pairwise(actions):
        if round(before["top"]) == round(after["top"]):  # side by side: room between
            assert after["left"] - before["right"] >= 8, (before, after)
        else:  # one under the other: not touching
            assert after["top"] - (before["top"] + before["height"]) >= 4, (before, after)
    # Each is its own tab stop, in reading order, and names its configuration.
    page = console.page
    row = page.locator("tbody tr").first
    row.get_by_role("link", name="Edit").focus()
    focused = []
    for _ in range(5):
        focused.append(page.evaluate("document.activeElement.textContent.trim()"))
        page.keyboard.press("Tab")
    host = "smtp-0.a-descriptive-name-that-goes-on-for-a-while.example.com:587"
    verbs = ("Edit", "Versions of", "Duplicate", "Deactivate", "Delete")
    assert focused == [f"{verb} {host}" for verb in verbs]
