"""Domain events for the outside world (``message.sent``, ``smtp_config.activated``, …): the
sender and the services publish them here; subscribers (the webhooks app) decide what they
want. Publishers never import a subscriber.

``wanted`` is asked first, so a publisher builds an event's data only when somebody wants
it: with no subscription it costs nothing, not even a database query (the webhooks app
answers it from a cache).

Each event gets its id (the Standard Webhooks ``webhook-id``) when it is made, once: a
publish tried again (the database away meanwhile) writes the same ids, so a receiver can
deduplicate what it sees twice.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

logger = logging.getLogger(__name__)


class Event(NamedTuple):
    type: str
    data: dict[str, Any]
    id: str


def new_event_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def event(event_type: str, data: dict[str, Any]) -> Event:
    """A new event, its id assigned now."""
    return Event(event_type, data, new_event_id())


def as_event(item: Event | tuple[str, dict[str, Any]]) -> Event:
    """``item`` as an :class:`Event` (a ``(type, data)`` pair gets its id now)."""
    if isinstance(item, Event):
        return item
    return event(*item)


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


def publish(events: Iterable[Event | tuple[str, dict[str, Any]]]) -> None:
    """Hand ``events`` to the subscribers that want them, all of a subscriber's at once
    (a batch is one write). Call it inside the change's transaction (the events are written
    with it: both or neither), or once it is committed."""
    batch = [as_event(e) for e in events]
    if not batch:
        return
    for subscriber in _SUBSCRIBERS:
        mine = [e for e in batch if subscriber.wants(e.type)]
        if mine:
            subscriber.receive(mine)


def publish_one(event_type: str, data: dict[str, Any]) -> None:
    if wanted(event_type):
        publish([event(event_type, data)])
