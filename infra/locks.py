"""Implementations of domain.ports.AggregateLocks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import psycopg
from psycopg_pool import ConnectionPool

STRIPES = 64


class LocalLocks:
    """Striped in-process locks: enough where one process writes (the embedded default)."""

    def __init__(self, stripes: int = STRIPES):
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, aggregate_id: UUID) -> Iterator[None]:
        with self._locks[aggregate_id.int % len(self._locks)]:
            yield


class PostgresLocks(LocalLocks):
    """Threads queue in-process first; then one session-level advisory lock per process, so
    several API processes take turns on a hot aggregate too. If the lock cannot be had in
    time the command goes ahead unlocked and the version check decides, as it always does."""

    def __init__(
        self, url: str, timeout_ms: int = 2000, stripes: int = STRIPES, connections: int = 8
    ):
        super().__init__(stripes)
        self.timeout_ms = timeout_ms
        # Only hot aggregates contend; a few connections hold their advisory locks.
        self._pool = ConnectionPool(
            url,
            min_size=0,
            max_size=connections,
            open=False,
            timeout=5,
            kwargs={"autocommit": True},
        )

    @contextmanager
    def hold(self, aggregate_id: UUID) -> Iterator[None]:
        key = (aggregate_id.int & (2**63 - 1)) or 1  # advisory keys are signed 64-bit
        with super().hold(aggregate_id):
            if self._pool.closed:
                self._pool.open(wait=False)
            with self._pool.connection() as conn:
                locked = False
                try:
                    conn.execute(f"SET lock_timeout = {int(self.timeout_ms)}")
                    conn.execute("SELECT pg_advisory_lock(%s)", (key,))
                    locked = True
                except psycopg.errors.LockNotAvailable:
                    pass
                try:
                    yield
                finally:
                    if locked:
                        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def close(self) -> None:
        self._pool.close()
