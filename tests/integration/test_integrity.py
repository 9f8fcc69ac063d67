"""The store's tamper evidence (infra/integrity.py), on the embedded default and on PostgreSQL:
records are sealed as they are written, and `scrm audit verify` finds the first record edited,
deleted, inserted or reordered by hand in the database, seals rewritten to match, and a forged
checkpoint. A crypto-shredded customer's records still verify."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import orjson
import psycopg

from domain.scope import Scope
from infra import integrity
from infra.bootstrap import bootstrap
from infra.settings import Settings
from tests.factories import erase, meta
from tests.integration.support import scrm

ADMIN = Scope(role="admin")
PHONES = [f"1380013{i:04d}" for i in range(12)]


def _seed(settings: Settings, checkpoint: bool = True) -> list[UUID]:
    """A dozen customers (two events each: added, and a tag), a checkpoint signed."""
    c = bootstrap(settings)
    try:
        ids = []
        for phone in PHONES:
            cid = UUID(
                c.customers.add_customer(
                    identities=[("phone", phone)], tags=[], owner=None, meta=meta()
                ).id
            )
            c.customers.change_tags(
                cid, add=["vip"], remove=[], expected_version=None, scope=ADMIN, meta=meta()
            )
            ids.append(cid)
        if checkpoint:
            assert c.notary is not None and c.notary.checkpoint() is not None
        return ids
    finally:
        c.close()


@contextmanager
def _store(settings: Settings) -> Iterator[tuple[Any, str, str]]:
    """A raw connection to the store behind scrm's back: (connection, events table, its
    position column)."""
    if settings.database_url:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            yield conn, "scrm_events", "notification_id"
    else:
        conn = sqlite3.connect(settings.data_dir / "events.sqlite3", isolation_level=None)
        try:
            yield conn, "stored_events", "rowid"
        finally:
            conn.close()


def _sql(settings: Settings, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    with _store(settings) as (conn, table, pos):
        statement = statement.format(table=table, pos=pos)
        if settings.database_url:
            statement = statement.replace("?", "%s")
        cur = conn.execute(statement, params)
        return list(cur.fetchall()) if cur.description else []


def _verify(settings: Settings) -> tuple[int, dict[str, Any]]:
    done = scrm(settings, "audit", "verify", "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, orjson.loads(done.stdout)


def _first(settings: Settings) -> tuple[str, int]:
    code, report = _verify(settings)
    assert code == 1 and not report["ok"], report
    return report["first"]["kind"], report["first"]["position"]


def test_every_record_is_sealed_as_written_and_the_store_verifies(settings: Settings) -> None:
    _seed(settings)
    stored = _sql(settings, "SELECT COUNT(*), MAX({pos}) FROM {table}")[0]
    sealed = _sql(settings, f"SELECT COUNT(*), MAX(position) FROM {integrity.SEALS}")[0]
    assert stored == sealed and stored[0] >= 24
    done = scrm(settings, "audit", "verify")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: the store verifies" in done.stdout
    assert f"{stored[0]} records, {stored[0]} seals, 1 signed checkpoints" in done.stdout


def test_an_edited_record_is_found(settings: Settings) -> None:
    _seed(settings)
    # One byte of the stored (sealed) state, as a hand edit would change it.
    _sql(settings, "UPDATE {table} SET state = state || ? WHERE {pos} = 7", (b" ",))
    assert _first(settings) == ("edited", 7)
    done = scrm(settings, "audit", "verify")
    assert done.returncode == 1 and "EDITED     position 7" in done.stdout
    assert "TAMPERED" in done.stdout


def test_a_deleted_record_is_found(settings: Settings) -> None:
    _seed(settings)
    _sql(settings, "DELETE FROM {table} WHERE {pos} = 9")
    assert _first(settings) == ("deleted", 9)


def test_a_record_inserted_behind_the_applications_back_is_found(settings: Settings) -> None:
    ids = _seed(settings)
    head = _sql(settings, "SELECT MAX({pos}) FROM {table}")[0][0]
    row = _sql(
        settings,
        "SELECT originator_id, originator_version, topic, state FROM {table} WHERE {pos} = ?",
        (head,),
    )[0]
    # A plausible next event of a real customer, copied from its last one.
    _sql(
        settings,
        "INSERT INTO {table} (originator_id, originator_version, topic, state) VALUES (?, ?, ?, ?)",
        (row[0], row[1] + 1, row[2], row[3]),
    )
    assert _first(settings) == ("inserted", head + 1)
    assert ids  # the store was real customers


def test_reordered_records_are_found(settings: Settings) -> None:
    _seed(settings)
    a, b = (
        _sql(
            settings,
            "SELECT originator_id, originator_version, topic, state FROM {table} WHERE {pos} = ?",
            (p,),
        )[0]
        for p in (10, 11)
    )
    # Swap the two records' contents (their keys are unique, so move one aside first).
    _sql(settings, "DELETE FROM {table} WHERE {pos} IN (10, 11)")
    for position, row in ((10, b), (11, a)):
        _sql(
            settings,
            "INSERT INTO {table} ({pos}, originator_id, originator_version, topic, state)"
            " VALUES (?, ?, ?, ?, ?)",
            (position, *row),
        )
    kind, position = _first(settings)
    assert (kind, position) == ("reordered", 10)
    report = _verify(settings)[1]
    assert "holds the record sealed at position 11" in report["first"]["detail"]


def _rewrite_seals_from(settings: Settings, position: int) -> None:
    """What a careful forger does after editing a record: recompute its seal and every later
    chain link so that the seals agree with each other again."""
    records = _sql(
        settings,
        "SELECT {pos}, originator_id, originator_version, topic, state FROM {table} ORDER BY {pos}",
    )
    chain = integrity.GENESIS
    for pos, oid, version, topic, state in records:
        ident = UUID(oid) if isinstance(oid, str) else oid
        digest = integrity.record_digest(ident, version, topic, state)
        chain = integrity.link(chain, pos, digest)
        if pos >= position:
            _sql(
                settings,
                f"UPDATE {integrity.SEALS} SET digest = ?, chain = ? WHERE position = ?",
                (digest, chain, pos),
            )
    _sql(settings, f"UPDATE {integrity.HEAD} SET chain = ? WHERE id = 1", (chain,))


def test_seals_rewritten_to_match_an_edit_are_caught_by_the_signed_checkpoint(
    settings: Settings,
) -> None:
    _seed(settings)
    _sql(settings, "UPDATE {table} SET state = state || ? WHERE {pos} = 5", (b" ",))
    _rewrite_seals_from(settings, 5)
    kind, _ = _first(settings)
    report = _verify(settings)[1]
    assert kind == "checkpoint", report
    assert "rewritten" in report["first"]["detail"]
    # No record or link is out of place any more: only the signature tells.
    assert {f["kind"] for f in report["findings"]} == {"checkpoint"}


def test_a_forged_checkpoint_is_refused(settings: Settings) -> None:
    _seed(settings)
    _sql(settings, "UPDATE {table} SET state = state || ? WHERE {pos} = 5", (b" ",))
    _rewrite_seals_from(settings, 5)
    new_head = _sql(settings, f"SELECT chain FROM {integrity.HEAD}")[0][0]
    _sql(settings, f"UPDATE {integrity.CHECKPOINTS} SET chain = ?", (bytes(new_head).hex(),))
    assert _first(settings)[0] == "signature"


def test_an_erased_customers_records_still_verify(settings: Settings) -> None:
    ids = _seed(settings, checkpoint=False)
    erase(settings, ids[0])
    c = bootstrap(settings)
    try:
        assert c.notary is not None and c.notary.checkpoint() is not None
        assert c.vault.unseal_many([(ids[0], _a_sealed_phone(c, ids[0]))]) == [None]
    finally:
        c.close()
    code, report = _verify(settings)
    assert code == 0 and report["ok"], report


def _a_sealed_phone(c: Any, customer: UUID) -> str:
    events = c.customers.recorder.select_events(customer, limit=1)
    text = bytes(events[0].state).decode()
    start = text.index("pd1.")
    return text[start : text.index('"', start)]


def test_a_store_written_before_seals_existed_is_sealed_once_at_start(settings: Settings) -> None:
    _seed(settings, checkpoint=False)
    # What a store from before this version holds: records, no seals.
    _sql(settings, f"DELETE FROM {integrity.SEALS}")
    _sql(settings, f"UPDATE {integrity.HEAD} SET position = 0, size = 0, chain = ?", (bytes(32),))
    records = _sql(settings, "SELECT COUNT(*) FROM {table}")[0][0]
    c = bootstrap(settings)  # seals the backlog, as found
    try:
        assert integrity.head(c.integrity_db)[1] == records  # type: ignore[arg-type]
        c.customers.add_customer(
            identities=[("phone", "13600000001")], tags=[], owner=None, meta=meta()
        )  # and goes on sealing from there
    finally:
        c.close()
    code, report = _verify(settings)
    assert code == 0 and report["sealed"] == report["records"] > records, report
