"""A real ``outbound worker`` process ends its SMTP sessions with QUIT: a pooled connection
left idle for ``OUTBOUND_SMTP_IDLE`` seconds is closed without a next message coming, and a
worker that is stopped (SIGTERM) says goodbye to the one it holds and logs what it did."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from outbound.core.secrets import KeyRing, new_key, reset_keyring
from tests.conftest import client_for
from tests.mail.test_worker_process import (
    READY,
    SMTP_PASSWORD,
    SMTP_USER,
    WORKER,
    Workers,
    activate_config,
    all_sent,
    submit,
    wait_for,
)
from tests.support.smtp import Scripted, smtp_server

pytestmark = [
    pytest.mark.django_db(transaction=True),  # the child sees only committed rows
    pytest.mark.skipif(not WORKER.exists(), reason="the outbound script is not installed"),
]


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    text = new_key()  # the key the SMTP password is sealed under, shared with the child
    reset_keyring(KeyRing.from_texts([text]))
    pool = Workers(tmp_path, text)
    try:
        yield pool
    finally:
        pool.kill_all()


def test_an_idle_connection_is_closed_with_quit_without_a_next_message(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    workers.env["OUTBOUND_SMTP_IDLE"] = "0.5"
    recorder = Scripted()
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        proc = workers.start()
        workers.wait_ready(proc)
        ids = submit(client_for(make_user("messages.send")), 1)
        wait_for(lambda: all_sent(ids), 15, f"not sent:\n{workers.output()}")
        wait_for(lambda: recorder.quits == 1, 10, f"no QUIT:\n{workers.output()}")
        wait_for(lambda: recorder.disconnects == 1, 5, "the connection stayed open")
        assert proc.poll() is None  # the worker runs on; only its connection went
        assert recorder.connections == 1


def test_a_stopped_worker_says_quit_to_its_pooled_connection(
    workers: Workers, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    workers.env["OUTBOUND_SMTP_IDLE"] = "600"  # nothing idles out during the test
    recorder = Scripted()
    with smtp_server(
        users={SMTP_USER: SMTP_PASSWORD}, auth_require_tls=False, recorder=recorder
    ) as server:
        activate_config(server, admin_user)
        proc = workers.start()
        workers.wait_ready(proc)
        ids = submit(client_for(make_user("messages.send")), 2)
        wait_for(lambda: all_sent(ids), 15, f"not sent:\n{workers.output()}")
        assert (recorder.connections, recorder.quits) == (1, 0)  # kept for the next message

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0, workers.output()
        assert recorder.quits == 1, workers.output()
        wait_for(lambda: recorder.disconnects == 1, 5, "the connection stayed open")
        stop = workers.stopped(proc)
        assert stop["messages"] == "2", stop.group(0)
        assert READY.search(workers.log_of(proc)) is not None
