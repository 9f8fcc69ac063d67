"""Compliance alerts: every ComplianceViolationDetected, with the pack version that found it."""

from __future__ import annotations

from typing import Any

import orjson

from domain.conversations.aggregates import ComplianceViolation, subject_key
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


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
        " sealed_note TEXT)",
        "CREATE INDEX IF NOT EXISTS compliance_alerts_sent ON compliance_alerts (sent_at)",
    )

    @handles(ComplianceViolation, "Detected")
    def _detected(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO compliance_alerts (violation_id, msgid, message_id, pack_id,"
            " pack_version, word, severity, sender, recipients, room_id, sent_at, detected_at,"
            " status, version, subject) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,'open',?,?)",
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


def list_alerts(
    db: Database,
    *,
    severity: str | None = None,
    status: str | None = None,
    department: str | None = None,
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
    if department is not None:
        where.append("sender IN (SELECT staff_id FROM staff_members WHERE department = ?)")
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
