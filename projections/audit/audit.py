"""The audit index: one row per event of the log — where it stands, which aggregate and
version it is, its business and recorded times, who and what caused it. History, time travel
and correlations (api/routes/audit.py) find events here and read them from the store itself,
so what an auditor sees is the stored event, not a projection of it."""

from __future__ import annotations

from typing import Any

from infra.db import Database
from infra.events import EventRecord, sortable_time
from projections.base import Projection


class Audit(Projection):
    name = "audit"
    tables = ("audit_index",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS audit_index ("
        " position BIGINT PRIMARY KEY, originator_id TEXT NOT NULL,"
        " originator_version BIGINT NOT NULL, name TEXT NOT NULL, context TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, actor TEXT NOT NULL,"
        " source TEXT NOT NULL, correlation_id TEXT NOT NULL, causation_id TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_index_originator"
        " ON audit_index (originator_id, originator_version)",
        "CREATE INDEX IF NOT EXISTS audit_index_correlation"
        " ON audit_index (correlation_id, position)",
    )

    def handles_event(self, name: str) -> bool:
        return True

    def apply(self, record: EventRecord, cur: Any) -> None:
        # Every event, whatever its kind: the index is of the whole log (written once per
        # batch: nothing here reads it while projecting).
        self.held.add(
            "INSERT INTO audit_index (position, originator_id, originator_version, name,"
            " context, occurred_at, recorded_at, actor, source, correlation_id, causation_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                record.position,
                record.originator_id,
                record.originator_version,
                record.name,
                record.context,
                sortable_time(record.occurred_at),
                sortable_time(record.recorded_at),
                record.actor,
                record.source,
                record.correlation_id,
                record.causation_id,
            ),
        )


def positions_of(db: Database, originator_id: str) -> list[tuple[int, int, str]]:
    """(version, position, recorded_at) of every event of one aggregate, in version order."""
    return [
        (int(v), int(p), str(r))
        for v, p, r in db.query(
            "SELECT originator_version, position, recorded_at FROM audit_index"
            " WHERE originator_id = ? ORDER BY originator_version",
            (originator_id,),
        )
    ]


def correlated(db: Database, correlation_id: str, limit: int = 1000) -> list[int]:
    """Positions of the events one request or callback caused, in log order."""
    return [
        int(r[0])
        for r in db.query(
            "SELECT position FROM audit_index WHERE correlation_id = ? ORDER BY position LIMIT ?",
            (correlation_id, limit),
        )
    ]
