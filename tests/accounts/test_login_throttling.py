"""Failed logins per username are throttled; successful logins and other usernames are not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.contrib.auth.signals import user_login_failed
from django.db import connection
from rest_framework.test import APIClient

from outbound.accounts.models import User
from tests.accounts.conftest import TOKEN_URL, Login
from tests.conftest import PASSWORD

WRONG = "wrong-password-guess"
THROTTLED = "Too many failed login attempts."


def fail_times(login: Login, username: str, n: int) -> list[int]:
    return [login(username, WRONG).status_code for _ in range(n)]


@contextmanager
def clock_shifted(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Iterator[None]:
    """Requests inside run as if ``seconds`` later (negative: earlier) than the real time."""
    real = time.time
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: real() + seconds)
        yield


@pytest.mark.django_db
def test_after_the_allowed_failures_the_username_is_throttled(
    make_user: Callable[..., User], login: Login, settings: Any
) -> None:
    make_user(username="alice")
    allowed = settings.OUTBOUND_LOGIN_FAILURES
    assert allowed == 5
    assert fail_times(login, "alice", allowed) == [401] * allowed
    r = login("alice", WRONG)
    assert r.status_code == 429, r.data
    assert r.data["detail"].startswith(THROTTLED)
    assert 1 <= int(r.headers["Retry-After"]) <= settings.OUTBOUND_LOGIN_WINDOW + 1


@pytest.mark.django_db
def test_a_throttled_username_is_refused_even_with_the_right_password(
    make_user: Callable[..., User], login: Login
) -> None:
    """The lock applies before the password is checked, so a guesser learns nothing from it
    (a 200 for the right password would make the 429 an oracle for every wrong one)."""
    make_user(username="alice")
    fail_times(login, "alice", 5)
    r = login("alice", PASSWORD)
    assert r.status_code == 429
    assert "access" not in r.data


@pytest.mark.django_db
def test_many_successful_logins_in_a_row_are_never_throttled(
    make_user: Callable[..., User], login: Login, settings: Any
) -> None:
    make_user(username="alice")
    statuses = [
        login("alice", PASSWORD).status_code for _ in range(3 * settings.OUTBOUND_LOGIN_FAILURES)
    ]
    assert statuses == [200] * len(statuses)


@pytest.mark.django_db
def test_successes_do_not_count_and_do_not_forget_earlier_failures(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user(username="alice")
    assert fail_times(login, "alice", 4) == [401] * 4
    assert [login("alice", PASSWORD).status_code for _ in range(10)] == [200] * 10
    assert login("alice", WRONG).status_code == 401  # the fifth failure is still allowed
    assert login("alice", WRONG).status_code == 429


@pytest.mark.django_db
def test_failures_for_one_username_do_not_throttle_another(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user(username="alice")
    make_user(username="bob")
    fail_times(login, "alice", 6)
    assert login("alice", PASSWORD).status_code == 429
    assert login("bob", PASSWORD).status_code == 200
    assert fail_times(login, "bob", 5) == [401] * 5  # bob has his own, untouched allowance


@pytest.mark.django_db
def test_failures_for_an_unknown_username_are_throttled_too(login: Login, db: None) -> None:
    assert fail_times(login, "ghost", 6) == [401] * 5 + [429]


@pytest.mark.django_db
def test_the_limit_follows_the_setting(
    make_user: Callable[..., User], login: Login, settings: Any
) -> None:
    settings.OUTBOUND_LOGIN_FAILURES = 2
    make_user(username="alice")
    assert fail_times(login, "alice", 3) == [401, 401, 429]


@pytest.mark.django_db
def test_failures_older_than_the_window_no_longer_count(
    make_user: Callable[..., User], login: Login, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(username="alice")
    window = settings.OUTBOUND_LOGIN_WINDOW
    with clock_shifted(monkeypatch, -(window + 5)):
        assert fail_times(login, "alice", 5) == [401] * 5
    assert login("alice", PASSWORD).status_code == 200
    assert fail_times(login, "alice", 6) == [401] * 5 + [429]


@pytest.mark.django_db
def test_retry_after_tells_when_the_oldest_failure_leaves_the_window(
    make_user: Callable[..., User], login: Login, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(username="alice")
    window = settings.OUTBOUND_LOGIN_WINDOW
    with clock_shifted(monkeypatch, -(window - 60)):  # 60 s of the window left
        login("alice", WRONG)
    fail_times(login, "alice", 4)
    r = login("alice", PASSWORD)
    assert r.status_code == 429
    assert 55 <= int(r.headers["Retry-After"]) <= 62


@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_cannot_get_past_the_limit(
    make_user: Callable[..., User], settings: Any
) -> None:
    """Guesses sent in parallel must not all pass the check before any failure is recorded."""
    make_user(username="carol")
    allowed = settings.OUTBOUND_LOGIN_FAILURES
    attempts = allowed + 3
    cond = threading.Condition()
    checking = 0  # requests whose password is being checked right now
    statuses: list[int] = []
    release = threading.Event()

    def hold_while_checking(**kwargs: Any) -> None:
        nonlocal checking
        with cond:
            checking += 1
            cond.notify_all()
        release.wait(timeout=10)

    def attempt() -> None:
        try:
            r = APIClient().post(TOKEN_URL, {"username": "carol", "password": WRONG}, format="json")
            with cond:
                statuses.append(r.status_code)
                cond.notify_all()
        finally:
            connection.close()

    user_login_failed.connect(hold_while_checking, dispatch_uid="hold-while-checking")
    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    try:
        for t in threads:
            t.start()
        with cond:
            # Every request is either checking its password or already refused.
            all_in = cond.wait_for(lambda: checking + statuses.count(429) == attempts, timeout=10)
    finally:
        release.set()
        for t in threads:
            t.join(timeout=10)
        user_login_failed.disconnect(dispatch_uid="hold-while-checking")
    assert all_in
    assert sorted(statuses) == [401] * allowed + [429] * (attempts - allowed)
