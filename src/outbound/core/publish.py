"""Domain events for the outside world (``message.sent``, ``smtp_config.activated``, …): the
sender and the services publish them here; subscribers (the webhooks app) decide what they
want. Publishers never import a subscriber.

``wanted`` is asked first, so a publisher builds an event's data only when somebody wants
it: with no subscription it costs nothing, not even a database query (the webhooks app
answers it from a cache).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Event = tuple[str, dict[str, Any]]  # (type, data)


class Subscriber(Protocol):
    def wants(self, event_type: str) -> bool: ...

    def receive(self, events: list[Event]) -> None: ...


_SUBSCRIBERS: list[Subscriber] = []


def subscribe(subscriber: Subscriber) -> None:
    if subscriber not in _SUBSCRIBERS:
        _SUBSCRIBERS.append(subscriber)


def wanted(event_type: str) -> bool:
    """Whether any subscriber wants events of this type now."""
    return any(s.wants(event_type) for s in _SUBSCRIBERS)


def publish(events: Iterable[Event]) -> None:
    """Hand ``events`` to the subscribers that want them, all of a subscriber's at once
    (a batch is one write). Call it once the change is committed."""
    batch = list(events)
    if not batch:
        return
    for subscriber in _SUBSCRIBERS:
        mine = [e for e in batch if subscriber.wants(e[0])]
        if mine:
            subscriber.receive(mine)


def publish_one(event_type: str, data: dict[str, Any]) -> None:
    if wanted(event_type):
        publish([(event_type, data)])
