"""Running several requests or service calls at the same moment, each on its own connection."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def run_concurrently(fns: list[Callable[[], Any]]) -> list[Any]:
    """Run ``fns`` in threads released together; an exception is returned, not raised."""
    barrier = threading.Barrier(len(fns))
    results: list[Any] = [None] * len(fns)

    def worker(i: int) -> None:
        from django.db import connection as thread_connection

        try:
            barrier.wait()
            results[i] = fns[i]()
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(fns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads), "a call never finished"
    return results
