"""Compliance alerts: every ComplianceViolationDetected, with the pack version that found it.

Each alert is attributed to one staff member (`staff_id`), computed from the event alone: the
sender if staff, else the first staff member among the recipients (a customer's message in a
one-to-one chat belongs to the staff member they wrote to). A chat with no staff party has
none. Departments are not copied in: dashboards join the staff directory (`staff_members`), so
an alert counts for its staff member's department as the directory shows it now.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from domain.conversations.aggregates import ComplianceViolation, is_external, subject_key
from domain.conversations.compliance import SEVERITIES
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select

STATUSES = ("open", "acknowledged", "resolved")


def alert_staff(sender: str, recipients: Iterable[str]) -> str | None:
    """The staff member an alert is attributed to: the sender if staff, else the first staff
    recipient; None when no party is staff."""
    return next((u for u in [sender, *recipients] if not is_external(u)), None)


class Alerts(Projection):
    name = "compliance"
    tables = ("compliance_alerts",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS compliance_alerts ("
        " violation_id TEXT PRIMARY KEY, msgid TEXT NOT NULL, message_id TEXT NOT NULL,"
        " pack_id TEXT NOT NULL, pack_version BIGINT NOT NULL, word TEXT NOT NULL,"
        " severity TEXT NOT NULL, sender TEXT NOT NULL, recipients TEXT NOT NULL,"
        " room_id TEXT NOT NULL, sent_at TEXT NOT NULL, detected_at TEXT NOT NULL,"
        " status TEXT NOT NULL, version BIGINT NOT NULL, subject TEXT NOT NULL,"
        " acknowledged_by TEXT, acknowledged_at TEXT, resolved_by TEXT, resolved_at TEXT,"
        " sealed_note TEXT, staff_id TEXT)",
        "CREATE INDEX IF NOT EXISTS compliance_alerts_sent ON compliance_alerts (sent_at)",
        "CREATE INDEX IF NOT EXISTS compliance_alerts_staff ON compliance_alerts (staff_id)",
    )

    def create(self, cur: Any) -> None:
        """The table, then any column added since it was first created, then the indexes.

        How a read model's table gains a column that its own rows determine: the column is
        in the CREATE TABLE for new databases; for a table created before it, `create` adds
        it with ALTER TABLE and fills the rows already there from their own columns, with
        the function the handler uses, in the engine's start-up transaction (under the
        schema lock on PostgreSQL). No replay is needed and the result equals a rebuild. A
        change the rows cannot determine raises `schema_version` instead (a replay)."""
        cur.execute(self.ddl[0])
        if "staff_id" not in _columns(cur, "compliance_alerts"):
            cur.execute("ALTER TABLE compliance_alerts ADD COLUMN staff_id TEXT")
            cur.execute("SELECT violation_id, sender, recipients FROM compliance_alerts")
            for violation_id, sender, recipients in cur.fetchall():
                cur.execute(
                    "UPDATE compliance_alerts SET staff_id = ? WHERE violation_id = ?",
                    (alert_staff(sender, orjson.loads(recipients)), violation_id),
                )
        for statement in self.ddl[1:]:
            cur.execute(statement)

    @handles(ComplianceViolation, "Detected")
    def _detected(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO compliance_alerts (violation_id, msgid, message_id, pack_id,"
            " pack_version, word, severity, sender, recipients, room_id, sent_at, detected_at,"
            " status, version, subject, staff_id)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'open',?,?,?)",
            (
                e.originator_id,
                d["msgid"],
                d["message_id"],
                d["pack_id"],
                d["pack_version"],
                d["word"],
                d["severity"],
                d["sender"],
                dumps(d["recipients"]).decode(),
                d["room_id"],
                sortable_time(d["sent_at"]),
                e.recorded_at,
                e.originator_version,
                subject_key(d["sender"], d["recipients"], d["room_id"]),
                alert_staff(d["sender"], d["recipients"]),
            ),
        )

    @handles(ComplianceViolation, "Acknowledged")
    def _acknowledged(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE compliance_alerts SET status = 'acknowledged', version = ?,"
            " acknowledged_by = ?, acknowledged_at = ? WHERE violation_id = ?",
            (e.originator_version, e.actor, e.occurred_at, e.originator_id),
        )

    @handles(ComplianceViolation, "Resolved")
    def _resolved(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE compliance_alerts SET status = 'resolved', version = ?, resolved_by = ?,"
            " resolved_at = ?, sealed_note = ? WHERE violation_id = ?",
            (e.originator_version, e.actor, e.occurred_at, e.data["sealed_note"], e.originator_id),
        )


def _columns(cur: Any, table: str) -> set[str]:
    if isinstance(cur, sqlite3.Cursor):
        cur.execute(f"SELECT name FROM pragma_table_info('{table}')")
    else:
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
    return {row[0] for row in cur.fetchall()}


def list_alerts(
    db: Database,
    *,
    severity: str | None = None,
    status: str | None = None,
    department: str | None = None,
    staff_id: str | None = None,
    violation_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[object] = []
    if severity is not None:
        where.append("severity = ?")
        params.append(severity)
    if violation_id is not None:
        where.append("violation_id = ?")
        params.append(violation_id)
    if status is not None:
        where.append("status = ?")
        params.append(status)
    if staff_id is not None:
        where.append("staff_id = ?")
        params.append(staff_id)
    if department is not None:
        where.append("staff_id IN (SELECT staff_id FROM staff_members WHERE department = ?)")
        params.append(department)
    columns = [
        "violation_id",
        "msgid",
        "pack_id",
        "pack_version",
        "word",
        "severity",
        "sender",
        "recipients",
        "room_id",
        "staff_id",
        "sent_at",
        "detected_at",
        "status",
        "version",
        "subject",
        "acknowledged_by",
        "acknowledged_at",
        "resolved_by",
        "resolved_at",
        "sealed_note",
    ]
    out = select(
        db, "compliance_alerts", columns, where, params, order="sent_at, msgid, word", limit=limit
    )
    for item in out:
        item["recipients"] = orjson.loads(item["recipients"])
        item["pack_version"], item["version"] = int(item["pack_version"]), int(item["version"])
    return out


# Dashboards: what each `by` groups on (columns of `compliance_alerts a` joined to the staff
# directory `s`) and the names those columns take in a row. Days are UTC dates of sent_at,
# which is stored as fixed-width UTC text, so the date is its first ten characters.
GROUPINGS: dict[str, tuple[tuple[str, str], ...]] = {
    "staff": (("a.staff_id", "staff_id"), ("s.department", "department")),
    "department": (("s.department", "department"),),
    "rule": (("a.pack_id", "pack_id"), ("a.word", "word")),
    "day": (("substr(a.sent_at, 1, 10)", "day"),),
}


def _counts() -> dict[str, Any]:
    return {
        "total": 0,
        **dict.fromkeys(STATUSES, 0),
        "by_severity": dict.fromkeys(SEVERITIES, 0),
    }


def compliance_dashboard(
    db: Database,
    by: str,
    *,
    since: str | None = None,
    until: str | None = None,
    severity: str | None = None,
    status: str | None = None,
    pack_id: str | None = None,
    department: str | None = None,
    staff_id: str | None = None,
) -> dict[str, Any]:
    """Alerts counted per staff member, department, rule (pack and word) or UTC day of the
    message: total, per status and per severity. `since` is inclusive and `until` exclusive
    (sortable UTC times, see `sortable_time`). Rows by total, largest first (days in order);
    a rule's row also names the pack versions that found it and its severity in the latest
    of them."""
    keys = GROUPINGS[by]
    where: list[str] = []
    params: list[object] = []
    for clause, value in (
        ("a.sent_at >= ?", since),
        ("a.sent_at < ?", until),
        ("a.severity = ?", severity),
        ("a.status = ?", status),
        ("a.pack_id = ?", pack_id),
        ("s.department = ?", department),
        ("a.staff_id = ?", staff_id),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    group = ", ".join([k for k, _ in keys] + ["a.status", "a.severity", "a.pack_version"])
    rows = db.query(
        f"SELECT {group}, COUNT(*) FROM compliance_alerts a"
        " LEFT JOIN staff_members s ON s.staff_id = a.staff_id"
        f" WHERE {' AND '.join(where) or '1=1'} GROUP BY {group}",
        params,
    )
    out: dict[tuple[Any, ...], dict[str, Any]] = {}
    latest: dict[tuple[Any, ...], tuple[int, int]] = {}
    for row in rows:
        key = tuple(row[: len(keys)])
        alert_status, alert_severity, version, count = row[len(keys) :]
        item = out.get(key)
        if item is None:
            item = out[key] = {name: value for (_, name), value in zip(keys, key, strict=True)}
            item.update(_counts())
            if by == "rule":
                item["versions"] = []
        count = int(count)
        item["total"] += count
        item[alert_status] += count
        item["by_severity"][alert_severity] += count
        if by == "rule":
            version = int(version)
            if version not in item["versions"]:
                item["versions"].append(version)
            rank = SEVERITIES.index(alert_severity)
            latest[key] = max(latest.get(key, (0, 0)), (version, rank))
    for key, (_, rank) in latest.items():
        out[key]["versions"].sort()
        out[key]["severity"] = SEVERITIES[rank]
    # By key (unknown staff or department last), then, but for days, by total: the sort is
    # stable, so rows with equal totals stay in key order.
    items = sorted(out.values(), key=lambda i: [(i[n] is None, i[n] or "") for _, n in keys])
    if by != "day":
        items.sort(key=lambda i: -i["total"])
    totals = _counts()
    for item in items:
        totals["total"] += item["total"]
        for name in STATUSES:
            totals[name] += item[name]
        for name in SEVERITIES:
            totals["by_severity"][name] += item["by_severity"][name]
    return {"by": by, "rows": items, "totals": totals}
