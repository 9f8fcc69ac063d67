"""Plain SQL for read models, key store and relay state, on PostgreSQL or a SQLite file.

SQL is written once with `?` placeholders and portable syntax (INSERT .. ON CONFLICT,
TEXT/BIGINT columns); on PostgreSQL the placeholders become `%s`.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from typing import Any, Protocol

import psycopg
from psycopg_pool import ConnectionPool

_PLACEHOLDER = re.compile(r"\?")
_RETURNS_ROWS = re.compile(r"^\s*(SELECT|WITH|VALUES)\b|\bRETURNING\b", re.IGNORECASE)


@lru_cache(maxsize=4096)
def _pg(sql: str) -> tuple[str, bool]:
    """A statement in psycopg's placeholders, and whether it returns rows. Projections run
    the same few statements millions of times: translating each once saves ~10 % of a batch."""
    return _PLACEHOLDER.sub("%s", sql), bool(_RETURNS_ROWS.search(sql))


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class StoreUnavailable(Exception):
    """The database cannot be reached (HTTP 503)."""


class _PgCursor:
    """Portable `?` placeholders on a psycopg cursor. In pipeline mode, statements that
    return rows run on a cursor of their own, so their fetch gets their own answer rather
    than the oldest pending one."""

    def __init__(self, cur: psycopg.Cursor[Any], pipelined: bool = False):
        self._cur = cur
        self._pipelined = pipelined
        self._last = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _PgCursor:
        cur = self._cur
        statement, returns_rows = _pg(sql)
        if self._pipelined and returns_rows:
            cur = self._cur.connection.cursor()
        cur.execute(statement, params or None)  # type: ignore[arg-type]
        self._last = cur
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._cur.executemany(_pg(sql)[0], rows)  # type: ignore[arg-type]
        self._last = self._cur

    def sync(self) -> None:
        """Wait for the answers to every statement sent so far (pipeline mode). Needed after
        DDL: psycopg forgets its prepared statements when it reads a DROP's answer, so a
        statement prepared before that answer arrived would be missing when next used."""
        if self._pipelined:
            with self._cur.connection.pipeline() as pipeline:
                pipeline.sync()

    def fetchone(self) -> Any:
        return self._last.fetchone()

    def fetchall(self) -> list[Any]:
        return self._last.fetchall()

    @property
    def rowcount(self) -> int:
        return self._last.rowcount


class Database:
    """A connection source with one-transaction-at-a-time helpers."""

    def __init__(self, url: str):
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite:///") else "postgres"
        self._pool: ConnectionPool | None = None
        self._local = threading.local()
        if self.dialect == "sqlite":
            self.path = url.removeprefix("sqlite:///")
        else:
            self._pool = ConnectionPool(
                url,
                min_size=1,
                max_size=10,
                open=False,
                timeout=5,
                kwargs={"autocommit": False, "connect_timeout": 5},
            )

    def _sqlite(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, *, pipeline: bool = False) -> Iterator[Any]:
        """One transaction: committed when the block ends, rolled back if it raises.
        `pipeline` (PostgreSQL) sends statements without waiting for each answer: for bulk
        writes such as projection batches, which read nothing back but positions."""
        if self.dialect == "sqlite":
            with self._sqlite_transaction() as cur:
                yield cur
        else:
            with self._pg_transaction(pipeline) as cur:
                yield cur

    @contextmanager
    def _sqlite_transaction(self) -> Iterator[sqlite3.Cursor]:
        conn = self._sqlite()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn.cursor()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _pg_transaction(self, pipeline: bool = False) -> Iterator[_PgCursor]:
        pool = self._pool
        assert pool is not None
        if pool.closed:
            pool.open(wait=False)
        try:
            with (
                pool.connection() as conn,
                conn.pipeline() if pipeline else nullcontext(),
                conn.cursor() as cur,
            ):
                yield _PgCursor(cur, pipelined=pipeline)
        except psycopg.OperationalError as exc:
            # Unreachable, or a lock/statement timeout: either way, try again later (503).
            raise StoreUnavailable(f"database unavailable: {type(exc).__name__}") from exc

    @contextmanager
    def read(self) -> Iterator[Any]:
        """A read-only unit of work (no write lock on SQLite)."""
        if self.dialect == "sqlite":
            yield self._sqlite().cursor()
            return
        with self.transaction() as cur:
            yield cur

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.read() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def stream(
        self, sql: str, params: Sequence[Any] = (), size: int = 10_000, *, binary: bool = False
    ) -> Iterator[Any]:
        """Rows a batch at a time, for results too large to hold at once (a settlement run
        hashing millions of lines): a server-side cursor on PostgreSQL, SQLite's own
        cursor otherwise. `binary`: PostgreSQL sends values in its binary format (bytea
        as is, not hex to decode; half again as fast for an export's millions of rows)."""
        if self.dialect == "sqlite":
            cur = self._sqlite().cursor()
            cur.execute(sql, params)
            while rows := cur.fetchmany(size):
                yield from rows
            return
        pool = self._pool
        assert pool is not None
        if pool.closed:
            pool.open(wait=False)
        with (
            pool.connection() as conn,
            conn.transaction(),
            conn.cursor(name="scrm_stream", binary=binary) as server,
        ):
            server.execute(_PLACEHOLDER.sub("%s", sql), params or None)  # type: ignore[arg-type]
            while batch := server.fetchmany(size):
                yield from batch

    def copy_text(self, sql: str, params: Sequence[Any] = ()) -> Iterator[bytes]:
        """A SELECT's rows as PostgreSQL's COPY text format (fields joined by tabs, one row
        per line), in chunks as they stream — the database formats them, not Python, which is
        most of the cost of reading millions of rows. On SQLite the same bytes, built here.
        For values without tabs, newlines or backslashes (COPY escapes those)."""
        if self.dialect == "sqlite":
            chunk: list[str] = []
            for row in self.stream(sql, params):
                chunk.append("\t".join("\\N" if v is None else str(v) for v in row))
                if len(chunk) >= 10_000:
                    yield ("\n".join(chunk) + "\n").encode()
                    chunk = []
            if chunk:
                yield ("\n".join(chunk) + "\n").encode()
            return
        pool = self._pool
        assert pool is not None
        if pool.closed:
            pool.open(wait=False)
        statement = f"COPY ({_PLACEHOLDER.sub('%s', sql)}) TO STDOUT"
        with (
            pool.connection() as conn,
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(statement, params or None) as copy,  # type: ignore[arg-type]
        ):
            for data in copy:
                yield bytes(data)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


SCHEMA_LOCK_KEY = 0x5C53_0001  # one advisory lock key for "creating scrm's tables"


@contextmanager
def schema_lock(url: str | None) -> Iterator[None]:
    """Processes starting together (api, relay, projector) create tables one at a time:
    PostgreSQL refuses concurrent CREATE OR REPLACE FUNCTION ('tuple concurrently updated')."""
    if not url:
        yield
        return
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))
