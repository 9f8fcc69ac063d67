"""The scratch PostgreSQL database and JetStream stream a run works in, and their removal.

Everything is named `scrm_bench_<hex>` / `SCRM_BENCH_<hex>` / `scrmbench<hex>`, so a run never
touches the data of another and a leftover is easy to recognise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import uuid4

import psycopg
from psycopg.conninfo import make_conninfo

from infra.settings import Settings

if TYPE_CHECKING:
    from infra.bootstrap import Container

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS = "nats://127.0.0.1:4222"


def admin_url(settings: Settings) -> str:
    if not settings.database_url:
        return DEFAULT_PG
    return make_conninfo(settings.database_url, dbname="postgres")


def _with_jetstream(nats_url: str, work: Callable[[Any], Awaitable[None]]) -> None:
    """Run `work(jetstream)` on a fresh connection that gives up rather than reconnects."""

    async def main() -> None:
        import nats

        nc = await nats.connect(nats_url, connect_timeout=3, allow_reconnect=False)
        try:
            await work(nc.jetstream())
        finally:
            await nc.close()

    asyncio.run(main())


def pg_problem(admin: str) -> str | None:
    """Why PostgreSQL cannot be used for a bench, or None when it answers."""
    try:
        with psycopg.connect(admin, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"PostgreSQL is not reachable ({type(exc).__name__}); scrm bench needs it"
    return None


def services_problem(admin: str, nats_url: str) -> str | None:
    """Why the bench cannot run here, or None when PostgreSQL and JetStream both answer."""
    problem = pg_problem(admin)
    if problem:
        return problem

    async def ping(js: Any) -> None:
        await js.account_info()

    try:
        _with_jetstream(nats_url, ping)
    except Exception as exc:
        why = type(exc).__name__
        return f"NATS JetStream at {nats_url} is not usable ({why}); scrm bench needs it"
    return None


class Scratch:
    """The names, settings and subprocess environment of one run's scratch resources."""

    def __init__(self, admin: str, nats_url: str):
        self.admin_url = admin
        self.nats_url = nats_url
        self.tag = uuid4().hex[:10]
        self.db_name = f"scrm_bench_{self.tag}"
        self.db_url = make_conninfo(admin, dbname=self.db_name)
        self.stream = f"SCRM_BENCH_{self.tag}"
        self.prefix = f"scrmbench{self.tag}"
        # The raw JetStream baselines publish to a stream of their own, same configuration:
        # their messages are not scrm events and must never reach the projector, which
        # consumes everything under `prefix`.
        self.raw_stream = f"SCRM_BENCH_{self.tag}_RAW"
        self.raw_prefix = f"scrmbenchraw{self.tag}"
        self.tmp = Path(tempfile.mkdtemp(prefix="scrm-bench-"))
        master_key = base64.b64encode(secrets.token_bytes(32)).decode()
        self.settings = Settings(
            data_dir=self.tmp / "var",
            database_url=self.db_url,
            nats_url=nats_url,
            nats_stream=self.stream,
            nats_subject_prefix=self.prefix,
            master_key=master_key,
        )
        # The subprocesses (API, relay, projector) read the same settings from here; none of
        # the caller's SCRM_* may leak in and point them at real data.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCRM_")}
        self.env.update(
            SCRM_DATA_DIR=str(self.tmp / "var"),
            SCRM_DATABASE_URL=self.db_url,
            SCRM_NATS_URL=nats_url,
            SCRM_NATS_STREAM=self.stream,
            SCRM_NATS_SUBJECT_PREFIX=self.prefix,
            SCRM_MASTER_KEY=master_key,
            PYTHONUNBUFFERED="1",
        )
        self.container: Container | None = None
        self.db_created = False
        self.stream_touched = False

    def create_database(self) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True

    def create_stream(self) -> None:
        from infra.nats.worker import ensure_stream

        async def make(js: Any) -> None:
            self.stream_touched = True  # from here on, teardown tries to delete it
            await ensure_stream(js, self.stream, self.prefix)
            await ensure_stream(js, self.raw_stream, self.raw_prefix)

        _with_jetstream(self.nats_url, make)

    def bootstrap(self) -> Container:
        from infra.bootstrap import bootstrap

        self.container = bootstrap(self.settings)
        return self.container

    def teardown(self) -> list[str]:
        """Close the container, delete the stream, drop the database and the temporary
        directory; returns what could not be removed."""
        problems: list[str] = []
        if self.container is not None:
            with contextlib.suppress(Exception):
                self.container.close()
        if self.stream_touched:

            async def delete(js: Any) -> None:
                for stream in (self.stream, self.raw_stream):
                    with contextlib.suppress(Exception):
                        await js.delete_stream(stream)

            try:
                _with_jetstream(self.nats_url, delete)
            except Exception as exc:
                problems.append(f"could not delete stream {self.stream}: {exc}")
        if self.db_created:
            try:
                with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            except psycopg.Error as exc:
                problems.append(f"could not drop {self.db_name}: {exc}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        return problems
