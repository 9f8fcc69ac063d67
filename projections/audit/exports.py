"""The archive exports made for regulators, newest first: who asked, for what, when, and the
digest each produced (with the one it follows)."""

from __future__ import annotations

from typing import Any

import orjson

from domain.audit.exports import ArchiveExport
from infra.db import Database
from infra.events import EventRecord, dumps
from projections.base import Projection, handles, select


class Exports(Projection):
    name = "exports"
    tables = ("exports_made",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS exports_made ("
        " export_id TEXT PRIMARY KEY, number BIGINT NOT NULL UNIQUE, requested_by TEXT NOT NULL,"
        " role TEXT NOT NULL, scope TEXT NOT NULL, events BIGINT NOT NULL,"
        " first_position BIGINT, last_position BIGINT, merkle_root TEXT NOT NULL,"
        " digest TEXT NOT NULL, previous_digest TEXT, produced_at TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
    )

    @handles(ArchiveExport, "Produced")
    def _produced(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO exports_made (export_id, number, requested_by, role, scope, events,"
            " first_position, last_position, merkle_root, digest, previous_digest,"
            " produced_at, position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (export_id) DO NOTHING",
            (
                e.originator_id,
                d["number"],
                d["requested_by"],
                d["role"],
                dumps(d["scope"]).decode(),
                d["events"],
                d["first_position"],
                d["last_position"],
                d["merkle_root"],
                d["digest"],
                d["previous_digest"],
                e.occurred_at,
                e.position,
            ),
        )


COLUMNS = [
    "export_id",
    "number",
    "requested_by",
    "role",
    "scope",
    "events",
    "first_position",
    "last_position",
    "merkle_root",
    "digest",
    "previous_digest",
    "produced_at",
    "position",
]


def list_exports(db: Database, limit: int = 100) -> list[dict[str, Any]]:
    out = select(db, "exports_made", COLUMNS, [], [], order="number DESC", limit=limit)
    for item in out:
        item["scope"] = orjson.loads(item["scope"])
    return out


def find_export(db: Database, export_id: str) -> dict[str, Any] | None:
    out = select(
        db, "exports_made", COLUMNS, ["export_id = ?"], [export_id], order="number", limit=1
    )
    for item in out:
        item["scope"] = orjson.loads(item["scope"])
    return out[0] if out else None
