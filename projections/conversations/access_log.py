"""Who read the archive: every ArchiveAccessed, for auditors."""

from __future__ import annotations

from typing import Any

import orjson

from domain.conversations.aggregates import Archive
from infra.db import Database
from infra.events import EventRecord, dumps
from projections.base import Projection, handles, select


class AccessLog(Projection):
    name = "archive_access"
    tables = ("archive_access_reads",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS archive_access_reads ("
        " access_id TEXT PRIMARY KEY, reader TEXT NOT NULL, role TEXT NOT NULL,"
        " purpose TEXT NOT NULL, query TEXT NOT NULL, message_ids TEXT NOT NULL,"
        " messages BIGINT NOT NULL, read_at TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS archive_access_reads_reader"
        " ON archive_access_reads (reader, position)",
    )

    @handles(Archive, "Accessed")
    def _accessed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO archive_access_reads (access_id, reader, role, purpose, query,"
            " message_ids, messages, read_at, correlation_id, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["reader"],
                d["role"],
                d["purpose"],
                dumps(d["query"]).decode(),
                dumps(d["message_ids"]).decode(),
                len(d["message_ids"]),
                e.occurred_at,
                e.correlation_id,
                e.position,
            ),
        )


def list_reads(
    db: Database,
    *,
    reader: str | None = None,
    msgid: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where: list[str] = ["position > ?"]
    params: list[object] = [after]
    if reader is not None:
        where.append("reader = ?")
        params.append(reader)
    if msgid is not None:  # who read this message? (message ids are JSON text)
        where.append("message_ids LIKE ?")
        params.append(f'%"{msgid}"%')
    columns = [
        "access_id",
        "reader",
        "role",
        "purpose",
        "query",
        "message_ids",
        "messages",
        "read_at",
        "correlation_id",
        "position",
    ]
    out = select(db, "archive_access_reads", columns, where, params, order="position", limit=limit)
    for item in out:
        item["query"] = orjson.loads(item["query"])
        item["message_ids"] = orjson.loads(item["message_ids"])
        item["messages"], item["position"] = int(item["messages"]), int(item["position"])
    return out
