"""Fixtures shared by every layer.

Integration tests get a fresh PostgreSQL database and a unique JetStream stream and subject
prefix each, so runs never collide. Without the services they skip and say why, except under
CI=true, where a missing service is a failure.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
from collections.abc import Iterator
from uuid import uuid4

import psycopg
import pytest

from infra.bootstrap import Container, bootstrap
from infra.settings import Settings

CI = os.environ.get("CI", "").lower() == "true"
PG_ADMIN_URL = os.environ.get("SCRM_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("SCRM_TEST_NATS_URL", "nats://127.0.0.1:4222")


# The modules whose tests take half a minute to minutes (benchmarks at their quick scale, the
# server-mode tests with their child processes) start first: with two workers, one of them
# started last would leave its worker running it alone at the end of the run.
SLOW_FIRST = ("_bench_smoke.py", "_server_mode.py", "test_seed_smoke.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: not item.nodeid.split("::")[0].endswith(SLOW_FIRST))


def _unavailable(what: str, why: str) -> None:
    message = f"{what} is not reachable ({why}); integration tests need it"
    if CI:
        pytest.fail(message + " and CI=true forbids skipping")
    pytest.skip(message)


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _unavailable("PostgreSQL at " + PG_ADMIN_URL, type(exc).__name__)
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    name = f"scrm_test_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # Test databases need not wait for the disk on every commit (only a crash of the server
        # itself could lose one); the suite runs markedly faster on slow disks.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    base = pg_admin_url.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def nats_url() -> str:
    host, port = NATS_URL.removeprefix("nats://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        _unavailable("NATS at " + NATS_URL, type(exc).__name__)
    return NATS_URL


@pytest.fixture
def stream() -> Iterator[tuple[str, str]]:
    """A unique (stream name, subject prefix) for one test; deleted afterwards."""
    tag = uuid4().hex[:10]
    name, prefix = f"SCRM_TEST_{tag}", f"scrmtest{tag}"
    yield name, prefix
    import asyncio

    import nats

    async def delete() -> None:
        try:
            nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
        except Exception:
            return
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(name)
        await nc.close()

    asyncio.run(delete())


def master_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture
def embedded_settings(tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path / "var", database_url=None, nats_url=None, poll_interval=0.005
    )


@pytest.fixture
def pg_settings(pg_url: str, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path / "var",
        database_url=pg_url,
        nats_url=None,
        master_key=master_key(),
        poll_interval=0.005,
    )


@pytest.fixture
def server_settings(pg_url: str, nats_url: str, stream: tuple[str, str], tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path / "var",
        database_url=pg_url,
        nats_url=nats_url,
        nats_stream=stream[0],
        nats_subject_prefix=stream[1],
        master_key=master_key(),
        poll_interval=0.005,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def settings(request: pytest.FixtureRequest, tmp_path) -> Settings:  # type: ignore[no-untyped-def]
    """The same test on the embedded default and on PostgreSQL."""
    if request.param == "sqlite":
        return Settings(
            data_dir=tmp_path / "var", database_url=None, nats_url=None, poll_interval=0.005
        )
    return request.getfixturevalue("pg_settings")  # type: ignore[no-any-return]


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    c = bootstrap(settings)
    yield c
    c.close()
