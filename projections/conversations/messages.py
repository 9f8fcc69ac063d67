"""The archive as a read model: one row per message (content still sealed), who took part,
and recalls. Content is unsealed only at read time, for those entitled, and each such read
is itself recorded (ArchiveAccessed)."""

from __future__ import annotations

from typing import Any

import orjson

from domain.conversations.aggregates import ArchivedMessage
from domain.customers.aggregates import Customer
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


class Messages(Projection):
    name = "conversations"
    schema_version = 2  # 2: restriction (a data subject's erasure request)
    tables = (
        "conversations_restrictions",
        "conversations_participants",
        "conversations_messages",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS conversations_messages ("
        " message_id TEXT PRIMARY KEY, msgid TEXT NOT NULL, seq BIGINT, action TEXT NOT NULL,"
        " sender TEXT NOT NULL, recipients TEXT NOT NULL, room_id TEXT NOT NULL,"
        " sent_at TEXT NOT NULL, msgtype TEXT NOT NULL, subject TEXT NOT NULL,"
        " sealed TEXT NOT NULL, recalled_at TEXT, position BIGINT NOT NULL, restriction TEXT)",
        "CREATE INDEX IF NOT EXISTS conversations_messages_subject"
        " ON conversations_messages (subject)",
        "CREATE TABLE IF NOT EXISTS conversations_restrictions ("
        " subject TEXT PRIMARY KEY, status TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS conversations_messages_room"
        " ON conversations_messages (room_id, sent_at)",
        "CREATE INDEX IF NOT EXISTS conversations_messages_sent"
        " ON conversations_messages (sent_at)",
        "CREATE TABLE IF NOT EXISTS conversations_participants ("
        " message_id TEXT NOT NULL, participant TEXT NOT NULL, sent_at TEXT NOT NULL,"
        " PRIMARY KEY (participant, sent_at, message_id))",
    )

    # Messages and participants are held to be written once per batch; the handlers that
    # change or read those rows afterwards (recalls, restrictions) write what is held first.
    @handles(ArchivedMessage, "Archived")
    def _archived(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        sent_at = sortable_time(d["sent_at"])
        self.held.add(
            "INSERT INTO conversations_messages (message_id, msgid, seq, action, sender,"
            " recipients, room_id, sent_at, msgtype, subject, sealed, position, restriction)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,"
            " (SELECT status FROM conversations_restrictions WHERE subject = ?))",
            (
                e.originator_id,
                d["msgid"],
                d["seq"],
                d["action"],
                d["sender"],
                dumps(d["recipients"]).decode(),
                d["room_id"],
                d["sent_at"],
                d["msgtype"],
                d["subject"],
                d["sealed"],
                e.position,
                d["subject"],
            ),
        )
        for participant in {d["sender"], *d["recipients"]}:
            self.held.add(
                "INSERT INTO conversations_participants (message_id, participant, sent_at)"
                " VALUES (?,?,?) ON CONFLICT DO NOTHING",
                (e.originator_id, participant, sent_at),
            )

    @handles(ArchivedMessage, "Recalled")
    def _recalled(self, e: EventRecord, cur: Any) -> None:
        self.held.write(cur)
        cur.execute(
            "UPDATE conversations_messages SET recalled_at = ? WHERE message_id = ?",
            (e.occurred_at, e.originator_id),
        )

    @handles(Customer, "ErasureRequested", "Erased")
    def _restricted(self, e: EventRecord, cur: Any) -> None:
        """The customer's conversations leave every list at once; they stay stored."""
        status = "erased" if e.name == "CustomerErased" else "restricted"
        self.held.write(cur)
        for subject in e.data["subjects"]:
            cur.execute(
                "INSERT INTO conversations_restrictions (subject, status) VALUES (?, ?)"
                " ON CONFLICT (subject) DO UPDATE SET status = excluded.status",
                (subject, status),
            )
            cur.execute(
                "UPDATE conversations_messages SET restriction = ? WHERE subject = ?",
                (status, subject),
            )


COLUMNS = (
    "message_id, msgid, seq, action, sender, recipients, room_id, sent_at, msgtype,"
    " subject, sealed, recalled_at, restriction"
)


def find_messages(
    db: Database,
    *,
    participants: list[str] | None = None,
    room_id: str | None = None,
    msgid: str | None = None,
    since: str | None = None,
    until: str | None = None,
    also: tuple[str, list[object]] | None = None,
    include_restricted: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Messages in time order, by any of the participants (ids as WeCom knows them). `also`
    is one more condition from another read model (the search index's candidates)."""
    where: list[str] = [] if include_restricted else ["restriction IS NULL"]
    params: list[object] = []
    if also is not None:
        where.append(also[0])
        params += also[1]
    if participants is not None:
        if not participants:
            return []
        marks = ",".join("?" * len(participants))
        where.append(
            f"message_id IN (SELECT message_id FROM conversations_participants"
            f" WHERE participant IN ({marks}))"
        )
        params += participants
    if room_id is not None:
        where.append("room_id = ?")
        params.append(room_id)
    if msgid is not None:
        where.append("msgid = ?")
        params.append(msgid)
    if since is not None:
        where.append("sent_at >= ?")
        params.append(since)
    if until is not None:
        where.append("sent_at < ?")
        params.append(until)
    out = select(
        db,
        "conversations_messages",
        [c.strip() for c in COLUMNS.split(",")],
        where,
        params,
        order="sent_at, msgid",
        limit=limit,
        offset=offset,
    )
    for item in out:
        item["recipients"] = orjson.loads(item["recipients"])
    return out
