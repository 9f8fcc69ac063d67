"""Channel anomalies as read models: every code's scans per minute (what the detector counts
windows and baselines from) and every alert with its evidence and how it was handled."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from domain.channels.aggregates import ChannelAnomaly
from domain.customers.aggregates import ChannelCode
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select

STATUSES = ("open", "acknowledged", "resolved")


def minute_of(at: str | datetime) -> str:
    """The minute a time falls in, as sortable text (seconds and below zeroed)."""
    return sortable_time(at)[:16] + ":00.000000Z"


class ChannelAnomalies(Projection):
    name = "channel_anomalies"
    tables = ("channel_anomalies_alerts", "channel_anomalies_minutes")
    ddl = (
        "CREATE TABLE IF NOT EXISTS channel_anomalies_minutes ("
        " code_id TEXT NOT NULL, minute TEXT NOT NULL, scans BIGINT NOT NULL DEFAULT 0,"
        " refused BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (code_id, minute))",
        "CREATE TABLE IF NOT EXISTS channel_anomalies_alerts ("
        " anomaly_id TEXT PRIMARY KEY, code_id TEXT NOT NULL, code_name TEXT NOT NULL,"
        " window_start TEXT NOT NULL, window_end TEXT NOT NULL, local_start TEXT NOT NULL,"
        " count BIGINT NOT NULL, refused BIGINT NOT NULL, baseline TEXT, baseline_days BIGINT,"
        " rule TEXT NOT NULL, rules TEXT NOT NULL, thresholds TEXT NOT NULL,"
        " thresholds_version BIGINT NOT NULL, detected_at TEXT NOT NULL, status TEXT NOT NULL,"
        " acknowledged_by TEXT, acknowledged_at TEXT, acknowledge_note TEXT,"
        " resolved_by TEXT, resolved_at TEXT, outcome TEXT, resolve_note TEXT,"
        " version BIGINT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS channel_anomalies_alerts_code"
        " ON channel_anomalies_alerts (code_id, window_start)",
        "CREATE INDEX IF NOT EXISTS channel_anomalies_alerts_window"
        " ON channel_anomalies_alerts (window_start)",
    )

    def _count(self, e: EventRecord, cur: Any, scans: int, refused: int) -> None:
        cur.execute(
            "INSERT INTO channel_anomalies_minutes (code_id, minute, scans, refused)"
            " VALUES (?,?,?,?) ON CONFLICT (code_id, minute) DO UPDATE SET"
            " scans = channel_anomalies_minutes.scans + excluded.scans,"
            " refused = channel_anomalies_minutes.refused + excluded.refused",
            (e.originator_id, minute_of(e.occurred_at), scans, refused),
        )

    # Every way a code is scanned counts, as on the channel dashboard; refused scans count
    # too: a bot hammering an exhausted or disabled code is a burst as well.
    @handles(ChannelCode, "Scanned", "ContactAdded", "OfficialAccountScanned")
    def _scanned(self, e: EventRecord, cur: Any) -> None:
        self._count(e, cur, 1, 0)

    @handles(ChannelCode, "ScanRefused")
    def _refused(self, e: EventRecord, cur: Any) -> None:
        self._count(e, cur, 0, 1)

    @handles(ChannelAnomaly, "Detected")
    def _detected(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO channel_anomalies_alerts (anomaly_id, code_id, code_name, window_start,"
            " window_end, local_start, count, refused, baseline, baseline_days, rule, rules,"
            " thresholds, thresholds_version, detected_at, status, version, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (anomaly_id) DO NOTHING",
            (
                e.originator_id, d["code_id"], d["code_name"], sortable_time(d["window_start"]),
                sortable_time(d["window_end"]), d["local_start"], d["count"], d["refused"],
                d["baseline"], d["baseline_days"], d["rule"], dumps(d["rules"]).decode(),
                d["thresholds"], d["thresholds_version"], sortable_time(e.occurred_at), "open",
                e.originator_version, e.position,
            ),
        )  # fmt: skip

    @handles(ChannelAnomaly, "Acknowledged")
    def _acknowledged(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE channel_anomalies_alerts SET status = 'acknowledged', acknowledged_by = ?,"
            " acknowledged_at = ?, acknowledge_note = ?, version = ?, position = ?"
            " WHERE anomaly_id = ? AND position < ?",
            (
                e.actor, sortable_time(e.occurred_at), e.data["note"], e.originator_version,
                e.position, e.originator_id, e.position,
            ),
        )  # fmt: skip

    @handles(ChannelAnomaly, "Resolved")
    def _resolved(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE channel_anomalies_alerts SET status = 'resolved', resolved_by = ?,"
            " resolved_at = ?, outcome = ?, resolve_note = ?, version = ?, position = ?"
            " WHERE anomaly_id = ? AND position < ?",
            (
                e.actor, sortable_time(e.occurred_at), d["outcome"], d["note"],
                e.originator_version, e.position, e.originator_id, e.position,
            ),
        )  # fmt: skip


# --- queries ---------------------------------------------------------------------------------

COLUMNS = [
    "anomaly_id", "code_id", "code_name", "window_start", "window_end", "local_start", "count",
    "refused", "baseline", "baseline_days", "rule", "rules", "thresholds", "thresholds_version",
    "detected_at", "status", "acknowledged_by", "acknowledged_at", "acknowledge_note",
    "resolved_by", "resolved_at", "outcome", "resolve_note", "version", "position",
]  # fmt: skip


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    row["rules"] = orjson.loads(row["rules"])
    return row


def anomalies(
    db: Database,
    *,
    code_id: str | None = None,
    status: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alerts, the latest window first; `since` inclusive, `until` exclusive (window start)."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (("code_id", code_id), ("status", status)):
        if value:
            where.append(f"{column} = ?")
            params.append(value)
    if since is not None:
        where.append("window_start >= ?")
        params.append(sortable_time(since))
    if until is not None:
        where.append("window_start < ?")
        params.append(sortable_time(until))
    rows = select(
        db, "channel_anomalies_alerts", COLUMNS, where, params,
        order="window_start DESC, anomaly_id", limit=limit,
    )  # fmt: skip
    return [_shown(r) for r in rows]


def find_anomaly(db: Database, anomaly_id: str) -> dict[str, Any] | None:
    rows = select(
        db, "channel_anomalies_alerts", COLUMNS, ["anomaly_id = ?"], [anomaly_id],
        order="anomaly_id", limit=1,
    )  # fmt: skip
    return _shown(rows[0]) if rows else None


def alerts_by_code(db: Database, latest: int = 5) -> dict[str, dict[str, Any]]:
    """Per code: its open and acknowledged alerts counted, and the latest unresolved ones (the
    channel dashboard shows them beside the code)."""
    out: dict[str, dict[str, Any]] = {}
    for code_id, status, n in db.query(
        "SELECT code_id, status, COUNT(*) FROM channel_anomalies_alerts"
        " WHERE status <> 'resolved' GROUP BY code_id, status"
    ):
        found = out.setdefault(code_id, {"open": 0, "acknowledged": 0, "latest": []})
        found[status] = int(n)
    shown = ["anomaly_id", "window_start", "window_end", "count", "rule", "status"]
    for code_id, found in out.items():
        found["latest"] = select(
            db, "channel_anomalies_alerts", shown, ["code_id = ?", "status <> 'resolved'"],
            [code_id], order="window_start DESC, anomaly_id", limit=latest,
        )  # fmt: skip
    return out


def window_scans(db: Database, code_id: str, start: datetime, end: datetime) -> tuple[int, int]:
    """(scans, refused) of a code in [start, end)."""
    rows = db.query(
        "SELECT COALESCE(SUM(scans), 0), COALESCE(SUM(refused), 0) FROM channel_anomalies_minutes"
        " WHERE code_id = ? AND minute >= ? AND minute < ?",
        (code_id, sortable_time(start), sortable_time(end)),
    )
    return int(rows[0][0]), int(rows[0][1])
