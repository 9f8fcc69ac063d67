"""Segments (智能分组): definitions with their version history, current members, and the
entered/left feed automation follows (by position)."""

from __future__ import annotations

from typing import Any

import orjson

from domain.customers.aggregates import Customer
from domain.segments.aggregates import Segment, SegmentMembership
from infra.db import Database
from infra.events import EventRecord, dumps
from projections.base import Projection, handles, select


class Segments(Projection):
    name = "segments"
    tables = (
        "segments_changes",
        "segments_members",
        "segments_versions",
        "segments_definitions",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS segments_definitions ("
        " segment_id TEXT PRIMARY KEY, name TEXT NOT NULL, rule TEXT NOT NULL, auto_tag TEXT,"
        " version BIGINT NOT NULL, status TEXT NOT NULL, defined_at TEXT NOT NULL,"
        " defined_by TEXT NOT NULL, changed_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS segments_versions ("
        " segment_id TEXT NOT NULL, position BIGINT NOT NULL, change TEXT NOT NULL,"
        " version BIGINT NOT NULL, rule TEXT, reason TEXT NOT NULL, actor TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL, correlation_id TEXT NOT NULL,"
        " PRIMARY KEY (segment_id, position))",
        "CREATE TABLE IF NOT EXISTS segments_members ("
        " segment_id TEXT NOT NULL, customer_id TEXT NOT NULL, since TEXT NOT NULL,"
        " segment_version BIGINT NOT NULL, position BIGINT NOT NULL,"
        " PRIMARY KEY (segment_id, customer_id))",
        "CREATE INDEX IF NOT EXISTS segments_members_page ON segments_members"
        " (segment_id, position)",
        "CREATE INDEX IF NOT EXISTS segments_members_customer ON segments_members (customer_id)",
        "CREATE TABLE IF NOT EXISTS segments_changes ("
        " position BIGINT PRIMARY KEY, segment_id TEXT NOT NULL, customer_id TEXT NOT NULL,"
        " change TEXT NOT NULL, segment_version BIGINT NOT NULL, reason TEXT, facts TEXT NOT NULL,"
        " auto_tag TEXT, occurred_at TEXT NOT NULL, recorded_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS segments_changes_page ON segments_changes"
        " (segment_id, position)",
        "CREATE INDEX IF NOT EXISTS segments_changes_customer ON segments_changes (customer_id)",
    )

    def _version(
        self, e: EventRecord, cur: Any, change: str, version: int, rule: Any, reason: str
    ) -> None:
        cur.execute(
            "INSERT INTO segments_versions (segment_id, position, change, version, rule, reason,"
            " actor, occurred_at, recorded_at, correlation_id) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                e.position,
                change,
                version,
                dumps(rule).decode() if rule is not None else None,
                reason,
                e.actor,
                e.occurred_at,
                e.recorded_at,
                e.correlation_id,
            ),
        )

    @handles(Segment, "Defined")
    def _defined(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO segments_definitions (segment_id, name, rule, auto_tag, version, status,"
            " defined_at, defined_by, changed_at, position) VALUES (?,?,?,?,?,'live',?,?,?,?)",
            (
                e.originator_id,
                d["name"],
                dumps(d["rule"]).decode(),
                d["auto_tag"],
                d["segment_version"],
                e.occurred_at,
                e.actor,
                e.occurred_at,
                e.position,
            ),
        )
        self._version(e, cur, "defined", d["segment_version"], d["rule"], "")

    @handles(Segment, "RuleRevised")
    def _revised(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE segments_definitions SET rule = ?, version = ?, changed_at = ?"
            " WHERE segment_id = ?",
            (dumps(d["rule"]).decode(), d["segment_version"], e.occurred_at, e.originator_id),
        )
        self._version(e, cur, "revised", d["segment_version"], d["rule"], d["reason"])

    @handles(Segment, "Retired")
    def _retired(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE segments_definitions SET status = 'retired', changed_at = ?"
            " WHERE segment_id = ?",
            (e.occurred_at, e.originator_id),
        )
        d = e.data
        self._version(e, cur, "retired", d["segment_version"], None, d["reason"])

    def _change(self, e: EventRecord, cur: Any, change: str, reason: str | None, tag: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO segments_changes (position, segment_id, customer_id, change,"
            " segment_version, reason, facts, auto_tag, occurred_at, recorded_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                e.position,
                d["segment_id"],
                d["customer_id"],
                change,
                d["segment_version"],
                reason,
                dumps(d["facts"]).decode(),
                tag,
                e.occurred_at,
                e.recorded_at,
            ),
        )

    @handles(SegmentMembership, "Entered", "Reentered")
    def _entered(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO segments_members (segment_id, customer_id, since, segment_version,"
            " position) VALUES (?,?,?,?,?) ON CONFLICT (segment_id, customer_id) DO UPDATE"
            " SET since = excluded.since, segment_version = excluded.segment_version,"
            " position = excluded.position",
            (d["segment_id"], d["customer_id"], e.occurred_at, d["segment_version"], e.position),
        )
        self._change(e, cur, "entered", None, d["auto_tagged"])

    @handles(SegmentMembership, "Left")
    def _left(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "DELETE FROM segments_members WHERE segment_id = ? AND customer_id = ?",
            (d["segment_id"], d["customer_id"]),
        )
        self._change(e, cur, "left", d["reason"], d["auto_untagged"])

    @handles(Customer, "Erased")
    def _erased(self, e: EventRecord, cur: Any) -> None:
        # The facts a rule read (tags, city, ...) describe the person: gone with them.
        cur.execute(
            "UPDATE segments_changes SET facts = '{}' WHERE customer_id = ?", (e.originator_id,)
        )


DEFINITION = [
    "segment_id",
    "name",
    "rule",
    "auto_tag",
    "version",
    "status",
    "defined_at",
    "defined_by",
    "changed_at",
    "position",
]


def _definition(row: dict[str, Any]) -> dict[str, Any]:
    row["rule"] = orjson.loads(row["rule"])
    row["version"], row["position"] = int(row["version"]), int(row["position"])
    row["id"] = row.pop("segment_id")
    return row


def list_segments(db: Database, status: str | None = None) -> list[dict[str, Any]]:
    where: list[str] = ["status = ?"] if status else []
    params: list[object] = [status] if status else []
    found = [
        _definition(r)
        for r in select(
            db, "segments_definitions", DEFINITION, where, params, order="position", limit=10_000
        )
    ]
    counts = dict(db.query("SELECT segment_id, COUNT(*) FROM segments_members GROUP BY segment_id"))
    for item in found:
        item["members"] = int(counts.get(item["id"], 0))
    return found


def get_segment(db: Database, segment_id: str) -> dict[str, Any] | None:
    found = select(
        db,
        "segments_definitions",
        DEFINITION,
        ["segment_id = ?"],
        [segment_id],
        order="position",
        limit=1,
    )
    if not found:
        return None
    segment = _definition(found[0])
    columns = ["position", "change", "version", "rule", "reason", "actor", "occurred_at"]
    history = select(
        db,
        "segments_versions",
        [*columns, "recorded_at", "correlation_id"],
        ["segment_id = ?"],
        [segment_id],
        order="position",
        limit=10_000,
    )
    for h in history:
        h["position"], h["version"] = int(h["position"]), int(h["version"])
        h["rule"] = orjson.loads(h["rule"]) if h["rule"] is not None else None
    segment["history"] = history
    (count,) = db.query(
        "SELECT COUNT(*) FROM segments_members WHERE segment_id = ?", (segment_id,)
    )[0]
    segment["members"] = int(count)
    return segment


def _scoped(owner: str | None, department: str | None) -> tuple[str, list[Any]]:
    """Only active customers, and for staff and managers only theirs (as customer lists)."""
    sql = " JOIN portrait_customers c ON c.customer_id = m.customer_id AND c.status = 'active'"
    params: list[Any] = []
    if owner is not None:
        sql += " AND c.owner = ?"
        params.append(owner)
    if department is not None:
        sql += " AND c.owner IN (SELECT staff_id FROM staff_members WHERE department = ?)"
        params.append(department)
    return sql, params


def list_members(
    db: Database,
    segment_id: str,
    *,
    owner: str | None = None,
    department: str | None = None,
    after: int = 0,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Members in the order they entered, keyset-paged by `after` (the entry's position)."""
    join, params = _scoped(owner, department)
    rows = db.query(
        "SELECT m.customer_id, c.owner, m.since, m.segment_version, m.position"
        f" FROM segments_members m{join} WHERE m.segment_id = ? AND m.position > ?"
        " ORDER BY m.position LIMIT ?",
        (*params, segment_id, after, limit),
    )
    return [
        {
            "customer_id": r[0],
            "owner": r[1],
            "since": r[2],
            "segment_version": int(r[3]),
            "cursor": int(r[4]),
        }
        for r in rows
    ]


def list_changes(
    db: Database,
    segment_id: str,
    *,
    owner: str | None = None,
    department: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Entered and left, in log order from `after` (a position): a feed to follow."""
    join, params = ("", []) if owner is None and department is None else _scoped(owner, department)
    rows = db.query(
        "SELECT m.position, m.customer_id, m.change, m.segment_version, m.reason, m.facts,"
        " m.auto_tag, m.occurred_at, m.recorded_at"
        f" FROM segments_changes m{join} WHERE m.segment_id = ? AND m.position > ?"
        " ORDER BY m.position LIMIT ?",
        (*params, segment_id, after, limit),
    )
    return [
        {
            "position": int(r[0]),
            "customer_id": r[1],
            "change": r[2],
            "segment_version": int(r[3]),
            "reason": r[4],
            "facts": orjson.loads(r[5]),
            "auto_tag": r[6],
            "occurred_at": r[7],
            "recorded_at": r[8],
        }
        for r in rows
    ]


def members_among(db: Database, customer_ids: list[str]) -> dict[str, set[str]]:
    """Of these customers, who is in which segment (segment id -> customer ids)."""
    out: dict[str, set[str]] = {}
    for start in range(0, len(customer_ids), 500):
        part = customer_ids[start : start + 500]
        for segment_id, customer_id in db.query(
            "SELECT segment_id, customer_id FROM segments_members"
            f" WHERE customer_id IN ({','.join('?' * len(part))})",
            part,
        ):
            out.setdefault(segment_id, set()).add(customer_id)
    return out


def all_members(db: Database) -> list[str]:
    return [r[0] for r in db.query("SELECT DISTINCT customer_id FROM segments_members")]


def last_activity_not_by(db: Database, customer_ids: list[str], actor: str) -> dict[str, str]:
    """When each customer was last active, not counting what `actor` recorded about them:
    a segment's own auto-tag must not end the silence that put the customer in it."""
    out: dict[str, str] = {}
    for start in range(0, len(customer_ids), 500):
        part = customer_ids[start : start + 500]
        for customer_id, last in db.query(
            "SELECT customer_id, MAX(occurred_at) FROM portrait_timeline"
            f" WHERE customer_id IN ({','.join('?' * len(part))}) AND actor <> ?"
            " GROUP BY customer_id",
            (*part, actor),
        ):
            out[customer_id] = last
    return out
