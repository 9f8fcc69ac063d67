"""`scrm replay` as a child process, on the embedded default and on PostgreSQL: the ledger and
the portraits snapshotted right after position P was projected, more activity changing both,
then replays as of a time between and at P into separate targets (a SQLite file, a PostgreSQL
database) equal to the snapshot row for row, while the live read models keep the newer state
and are not touched; refusals (unknown read model, a time without a timezone, a populated
target without --replace, the live database as target); and every read model replayed alone
equal to the live one."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import psycopg
import pytest

from api.demo import load_everything
from domain.shared import Conflict
from infra import replay as replays
from infra.bootstrap import bootstrap
from infra.db import Database
from infra.settings import Settings
from projections import all_projections
from projections.customers.portrait import Portrait
from projections.settlement.ledger import Ledger
from tests.e2e.test_settlement_api import RULES
from tests.integration.support import head, scrm

TABLES = (*Ledger.tables, *Portrait.tables)

Rows = dict[str, list[tuple[Any, ...]]]


def _sorted(rows: list[Any]) -> list[tuple[Any, ...]]:
    # Python's order, not the database's: SQLite and PostgreSQL sort NULLs differently.
    return sorted((tuple(r) for r in rows), key=lambda r: [(v is not None, v) for v in r])


def table_names(db: Database) -> list[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    return sorted(str(r[0]) for r in db.query(sql))


def snapshot(url: str, tables: tuple[str, ...] | list[str] | None = None) -> Rows:
    """Every row of the tables (all of the database's without a list), in one order."""
    db = Database(url)
    try:
        chosen = table_names(db) if tables is None else list(tables)
        return {t: _sorted(db.query(f"SELECT * FROM {t}")) for t in chosen}
    finally:
        db.close()


def live(settings: Settings, tables: tuple[str, ...] | None = TABLES) -> Rows:
    return snapshot(settings.read_db_url(), tables)


def positions(settings: Settings) -> dict[str, int]:
    db = Database(settings.read_db_url())
    try:
        return {
            str(n): int(p) for n, p in db.query("SELECT name, position FROM projection_positions")
        }
    finally:
        db.close()


def info_of(target: Path) -> list[dict[str, Any]]:
    db = Database(f"sqlite:///{target}")
    try:
        return replays.replay_info(db)
    finally:
        db.close()


def ok(settings: Settings, *args: str) -> str:
    done = scrm(settings, *args, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def field(out: str, name: str) -> str:
    found = re.search(rf"^{name}: (.*)$", out, re.M)
    assert found, out
    return found[1]


@pytest.fixture
def pg_target(pg_admin_url: str) -> Iterator[str]:
    """A separate, empty PostgreSQL database to replay into; dropped afterwards."""
    name = f"scrm_replay_{uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{pg_admin_url.rsplit('/', 1)[0]}/{name}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_replay_equals_the_live_read_model_at_that_position(
    settings: Settings, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    # Position P: the demo (customers, conversations, orders, a closed and paid settlement
    # week), projected and accrued by a command that brings the read models current.
    ok(settings, "demo", "--no-serve")
    ok(settings, "ledger", "check")
    at_p = live(settings)
    p = head(settings)
    assert positions(settings)["ledger"] == positions(settings)["portrait"] == p
    assert at_p["ledger_postings"] and at_p["portrait_customers"]
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)

    # Later: two customers merged (portrait rows move), a job of this week earned (postings).
    survivor, absorbed = (r[0] for r in at_p["portrait_customers"][:2])
    ok(settings, "customers", "merge", survivor, absorbed, "--reason", "同一人", "--by", "ops")
    ok(
        settings,
        "settlement",
        "record-item",
        "late-job",
        "--kind",
        "service",
        "--payee",
        "zhao.shifu",
        "--occurred-at",
        datetime.now(UTC).isoformat(),
        "--service-type",
        "smart_lock",
        "--distance-km",
        "3",
    )
    ok(settings, "ledger", "check")
    newer = live(settings)
    assert head(settings) > p
    for table in ("ledger_postings", "ledger_balances", "portrait_customers"):
        assert newer[table] != at_p[table], table
    everything = live(settings, None)
    log_head = head(settings)

    # As of a time between, given in China time: what the system knew then.
    q = tmp_path / "replays" / "q.sqlite"
    shanghai = between.astimezone(timezone(timedelta(hours=8))).isoformat()
    out = ok(
        settings, "replay", "--as-of", shanghai, "-p", "ledger", "-p", "portrait", "--into", str(q)
    )
    assert field(out, "projections") == "ledger, portrait"
    assert field(out, "cut position") == f"{p} (head {log_head})"
    as_of = between.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert field(out, "as of") == f"{as_of} (recorded time)"
    assert field(out, "events applied") == str(p)
    assert field(out, "target") == str(q)
    replayed = snapshot(f"sqlite:///{q}", TABLES)
    assert replayed == at_p
    info = info_of(q)
    assert [(i["projection"], i["cut_position"], i["head"], i["events"]) for i in info] == [
        ("ledger", p, log_head, p),
        ("portrait", p, log_head, p),
    ]
    assert all(i["replayed_at"] and i["as_of"] == as_of for i in info)

    # At position P, into PostgreSQL (server mode) or another SQLite file (embedded).
    target = (
        request.getfixturevalue("pg_target")
        if settings.database_url
        else str(tmp_path / "at-p.sqlite")
    )
    out = ok(
        settings, "replay", "--position", str(p), "-p", "portrait", "-p", "ledger", "--into", target
    )
    assert field(out, "cut position") == f"{p} (head {log_head})"
    assert field(out, "as of") == "by position"
    assert snapshot(replays.target_url(target), TABLES) == at_p

    # A target that holds them already is refused; --replace replays them there (here at
    # the head, which equals the live read models now).
    again = scrm(settings, "replay", "--position", str(log_head), "-p", "ledger", "--into", str(q))
    assert again.returncode == 1
    assert "refused: target_exists:" in again.stderr and f"cut at position {p}" in again.stderr
    assert snapshot(f"sqlite:///{q}", TABLES) == at_p
    replaced = ok(
        settings,
        "replay",
        "--position",
        str(log_head),
        "-p",
        "ledger",
        "--into",
        str(q),
        "--replace",
    )
    assert field(replaced, "cut position") == f"{log_head} (head {log_head})"
    now_in_q = snapshot(f"sqlite:///{q}", TABLES)
    assert {t: now_in_q[t] for t in Ledger.tables} == {t: newer[t] for t in Ledger.tables}
    assert {t: now_in_q[t] for t in Portrait.tables} == {t: at_p[t] for t in Portrait.tables}
    info = {i["projection"]: i for i in info_of(q)}
    assert info["ledger"]["cut_position"] == log_head and info["ledger"]["as_of"] is None
    assert info["portrait"]["cut_position"] == p

    # The live read database (with the store, on PostgreSQL) is as it was, row for row.
    assert live(settings, None) == everything
    assert head(settings) == log_head


def test_refusals_leave_everything_as_it_was(settings: Settings, tmp_path: Path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(orjson.dumps(RULES))
    ok(settings, "settlement", "publish-rules", "installers", str(rules))
    everything = live(settings, None)
    target = tmp_path / "t.sqlite"

    unknown = scrm(settings, "replay", "--position", "1", "-p", "ledgers", "--into", str(target))
    assert unknown.returncode == 2
    assert "unknown read model 'ledgers'; known:" in unknown.stderr
    for name in ("audit", "portrait", "ledger", "settlement", "reconciliation"):
        assert name in unknown.stderr
    naive = scrm(
        settings, "replay", "--as-of", "2026-09-30T23:59:59", "-p", "ledger", "--into", str(target)
    )
    assert naive.returncode == 1
    assert "refused: invalid_input: --as-of needs a timezone" in naive.stderr
    garbled = scrm(
        settings, "replay", "--as-of", "quarter end", "-p", "ledger", "--into", str(target)
    )
    assert garbled.returncode == 1 and "not an ISO-8601 time" in garbled.stderr
    both = scrm(
        settings,
        "replay",
        "--as-of",
        "2026-01-01T00:00:00Z",
        "--position",
        "1",
        "-p",
        "ledger",
        "--into",
        str(target),
    )
    assert both.returncode == 2 and "exactly one of --as-of T and --position N" in both.stderr
    neither = scrm(settings, "replay", "-p", "ledger", "--into", str(target))
    assert neither.returncode == 2
    future = scrm(
        settings, "replay", "--as-of", "2999-01-01T00:00:00Z", "-p", "ledger", "--into", str(target)
    )
    assert future.returncode == 1 and "in the future" in future.stderr
    past = scrm(settings, "replay", "--position", "999", "-p", "ledger", "--into", str(target))
    assert past.returncode == 1 and "past the head of the log" in past.stderr
    assert not target.exists()

    # The live read database is never a target, not even with --replace.
    for into in (settings.read_db_url().removeprefix("sqlite:///"), settings.key_db_url()):
        refused = scrm(
            settings, "replay", "--position", "1", "-p", "settlement", "--into", into, "--replace"
        )
        assert refused.returncode == 1
        assert "refused: target_is_live:" in refused.stderr, refused.stderr
    # Nor a database holding anything but replayed read models (here the key store's table).
    other = tmp_path / "other.sqlite"
    db = Database(f"sqlite:///{other}")
    with db.transaction() as cur:
        cur.execute("CREATE TABLE scrm_data_keys (key_id TEXT)")
    db.close()
    foreign = scrm(
        settings, "replay", "--position", "1", "-p", "ledger", "--into", str(other), "--replace"
    )
    assert foreign.returncode == 1 and "not_a_replay_target" in foreign.stderr
    assert "scrm_data_keys" in foreign.stderr

    # Before the first event: empty read models, and it says so.
    empty = ok(
        settings,
        "replay",
        "--as-of",
        "2000-01-01T00:00:00+08:00",
        "-p",
        "settlement",
        "--into",
        str(target),
    )
    assert field(empty, "cut position") == f"0 (head {head(settings)})"
    assert field(empty, "as of") == "1999-12-31T16:00:00.000000Z (recorded time)"
    assert "the cut is before the first event: the read models are empty" in empty
    groups = snapshot(f"sqlite:///{target}", ["settlement_rule_sets"])
    assert groups == {"settlement_rule_sets": []}
    assert head(settings) > 0
    assert live(settings, None) == everything


def test_every_read_model_replays_alone_equal_to_the_live_one(
    settings: Settings, tmp_path: Path
) -> None:
    """No read model's handlers read another's tables (each target holds one read model only,
    so such a read would fail), and a replay at the head equals the live read model."""
    c = bootstrap(settings)
    try:
        load_everything(c)
        c.start_follower().catch_up()
        assert c.segment_evaluator is not None
        c.segment_evaluator.run_until_caught_up()
        c.start_follower().catch_up()
        top = c.head()
        assert set(c.engine.positions().values()) == {top}
        for projection in all_projections():
            url = replays.target_url(str(tmp_path / f"{projection.name}.sqlite"))
            target = Database(url)
            try:
                result = replays.replay_as_of(c, names=[projection.name], position=top, into=target)
                assert result.events == top
                mine = set(projection.tables) | {"projection_positions", "projection_schemas"}
                assert set(table_names(target)) == mine | {"replay_info"}
            finally:
                target.close()
            assert snapshot(url, projection.tables) == snapshot(c.read_db.url, projection.tables), (
                projection.name
            )

        # A replay that dies halfway (here its progress callback) leaves no half read model
        # behind, only empty tables, and says so; replayed again with --replace, it is whole.
        url = replays.target_url(str(tmp_path / "ledger.sqlite"))
        target = Database(url)

        def dies(position: int, cut: int) -> None:
            if position:
                raise KeyboardInterrupt

        try:
            with pytest.raises(KeyboardInterrupt):
                replays.replay_as_of(
                    c, names=["ledger"], position=top, into=target, replace=True, progress=dies
                )
            assert all(not target.query(f"SELECT * FROM {t}") for t in Ledger.tables)
            assert target.query("SELECT position FROM projection_positions") == [(0,)]
            [row] = replays.replay_info(target)
            assert (row["cut_position"], row["replayed_at"], row["events"]) == (top, None, None)
            with pytest.raises(Conflict, match="already holds ledger"):
                replays.replay_as_of(c, names=["ledger"], position=1, into=target)
            replays.replay_as_of(c, names=["ledger"], position=top, into=target, replace=True)
            [row] = replays.replay_info(target)
            assert row["replayed_at"] and row["events"] == top
        finally:
            target.close()
        assert snapshot(url, Ledger.tables) == snapshot(c.read_db.url, Ledger.tables)
    finally:
        c.close()
