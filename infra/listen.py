"""Wake-ups when events are appended: PostgreSQL LISTEN on the store's NOTIFY channel.

eventsourcing's postgres recorder sends NOTIFY on the events table's channel with every
insert; the relay sleeps on it instead of polling hard.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg


def pg_waiter(url: str, channel: str) -> Callable[[float], None]:
    conn: psycopg.Connection | None = None

    def wait(timeout: float) -> None:
        nonlocal conn
        try:
            if conn is None or conn.closed:
                conn = psycopg.connect(url, autocommit=True)
                conn.execute(f'LISTEN "{channel}"')
            for _ in conn.notifies(timeout=timeout, stop_after=1):
                pass
        except psycopg.Error:
            conn = None  # reconnect on the next call; the relay polls meanwhile

    return wait
