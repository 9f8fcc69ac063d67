"""Channel code statistics: scans, adds and refusals per code and per day (UTC)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from domain.customers.aggregates import ChannelCode
from infra.db import Database
from infra.events import EventRecord, dumps
from projections.base import Projection, handles


class ChannelStats(Projection):
    name = "channel_stats"
    tables = ("channel_stats_refusals", "channel_stats_daily", "channel_stats_codes")
    ddl = (
        "CREATE TABLE IF NOT EXISTS channel_stats_codes ("
        " code_id TEXT PRIMARY KEY, name TEXT NOT NULL, staff_pool TEXT NOT NULL,"
        " tags TEXT NOT NULL, expires_at TEXT, max_scans BIGINT, disabled_at TEXT,"
        " created_at TEXT NOT NULL, last_scan_at TEXT, version BIGINT NOT NULL,"
        " scans BIGINT NOT NULL DEFAULT 0, adds BIGINT NOT NULL DEFAULT 0,"
        " refusals BIGINT NOT NULL DEFAULT 0)",
        "CREATE TABLE IF NOT EXISTS channel_stats_daily ("
        " code_id TEXT NOT NULL, day TEXT NOT NULL, scans BIGINT NOT NULL DEFAULT 0,"
        " adds BIGINT NOT NULL DEFAULT 0, refusals BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (code_id, day))",
        "CREATE TABLE IF NOT EXISTS channel_stats_refusals ("
        " code_id TEXT NOT NULL, reason TEXT NOT NULL, count BIGINT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (code_id, reason))",
    )

    @handles(ChannelCode, "Created")
    def _created(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO channel_stats_codes (code_id, name, staff_pool, tags, expires_at,"
            " max_scans, created_at, version) VALUES (?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["name"],
                dumps(d["staff_pool"]).decode(),
                dumps(d["tags"]).decode(),
                d["expires_at"],
                d["max_scans"],
                e.occurred_at,
                e.originator_version,
            ),
        )

    def _count(self, e: EventRecord, cur: Any, *, scans: int, adds: int, refusals: int) -> None:
        cur.execute(
            "UPDATE channel_stats_codes SET scans = scans + ?, adds = adds + ?,"
            " refusals = refusals + ?, version = ?, last_scan_at = ? WHERE code_id = ?",
            (scans, adds, refusals, e.originator_version, e.occurred_at, e.originator_id),
        )
        cur.execute(
            "INSERT INTO channel_stats_daily (code_id, day, scans, adds, refusals)"
            " VALUES (?,?,?,?,?) ON CONFLICT (code_id, day) DO UPDATE SET"
            " scans = channel_stats_daily.scans + excluded.scans,"
            " adds = channel_stats_daily.adds + excluded.adds,"
            " refusals = channel_stats_daily.refusals + excluded.refusals",
            (e.originator_id, e.occurred_at[:10], scans, adds, refusals),
        )

    @handles(ChannelCode, "Scanned", "ContactAdded", "OfficialAccountScanned")
    def _scanned(self, e: EventRecord, cur: Any) -> None:
        self._count(e, cur, scans=1, adds=1 if e.data["new_customer"] else 0, refusals=0)

    @handles(ChannelCode, "ScanRefused")
    def _refused(self, e: EventRecord, cur: Any) -> None:
        self._count(e, cur, scans=0, adds=0, refusals=1)
        cur.execute(
            "INSERT INTO channel_stats_refusals (code_id, reason, count) VALUES (?,?,1)"
            " ON CONFLICT (code_id, reason) DO UPDATE SET"
            " count = channel_stats_refusals.count + 1",
            (e.originator_id, e.data["reason"]),
        )

    @handles(ChannelCode, "Disabled")
    def _disabled(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "UPDATE channel_stats_codes SET disabled_at = ?, version = ? WHERE code_id = ?",
            (e.occurred_at, e.originator_version, e.originator_id),
        )


# --- queries ---------------------------------------------------------------------------------

_CODE_COLUMNS = (
    "code_id, name, staff_pool, tags, expires_at, max_scans, disabled_at, created_at,"
    " last_scan_at, version, scans, adds, refusals"
)


def _code(r: Any, now: datetime) -> dict[str, Any]:
    if r[6] is not None:
        status = "disabled"
    elif r[4] is not None and datetime.fromisoformat(r[4]) <= now:
        status = "expired"
    elif r[5] is not None and int(r[10]) >= int(r[5]):
        status = "exhausted"
    else:
        status = "active"
    return {
        "id": r[0],
        "name": r[1],
        "staff_pool": orjson.loads(r[2]),
        "tags": orjson.loads(r[3]),
        "expires_at": r[4],
        "max_scans": r[5],
        "disabled_at": r[6],
        "created_at": r[7],
        "last_scan_at": r[8],
        "version": int(r[9]),
        "status": status,
        "scans": int(r[10]),
        "adds": int(r[11]),
        "refusals": int(r[12]),
    }


def _daily(db: Database, code_ids: list[str], since: str | None, until: str | None) -> Any:
    where, params = [], []
    if code_ids:
        where.append(f"code_id IN ({','.join('?' * len(code_ids))})")
        params += code_ids
    if since:
        where.append("day >= ?")
        params.append(since)
    if until:
        where.append("day <= ?")
        params.append(until)
    sql = "SELECT code_id, day, scans, adds, refusals FROM channel_stats_daily"
    if where:
        sql += " WHERE " + " AND ".join(where)
    return db.query(sql + " ORDER BY day, code_id", params)


def code_stats(db: Database, code_id: str, now: datetime) -> dict[str, Any] | None:
    rows = db.query(
        f"SELECT {_CODE_COLUMNS} FROM channel_stats_codes WHERE code_id = ?", (code_id,)
    )
    if not rows:
        return None
    out = _code(rows[0], now)
    out["refusals_by_reason"] = {
        reason: int(n)
        for reason, n in db.query(
            "SELECT reason, count FROM channel_stats_refusals WHERE code_id = ? ORDER BY reason",
            (code_id,),
        )
    }
    out["daily"] = [
        {"day": d, "scans": int(s), "adds": int(a), "refusals": int(f)}
        for _, d, s, a, f in _daily(db, [code_id], None, None)
    ]
    return out


def channels_dashboard(
    db: Database, now: datetime, since: str | None = None, until: str | None = None
) -> dict[str, Any]:
    codes = [
        _code(r, now)
        for r in db.query(
            f"SELECT {_CODE_COLUMNS} FROM channel_stats_codes ORDER BY created_at, code_id"
        )
    ]
    days: dict[str, dict[str, int]] = {}
    per_code_days: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in codes}
    for code_id, day, scans, adds, refusals in _daily(db, [], since, until):
        total = days.setdefault(day, {"scans": 0, "adds": 0, "refusals": 0})
        total["scans"] += int(scans)
        total["adds"] += int(adds)
        total["refusals"] += int(refusals)
        per_code_days.setdefault(code_id, []).append(
            {"day": day, "scans": int(scans), "adds": int(adds), "refusals": int(refusals)}
        )
    for code in codes:
        code["daily"] = per_code_days.get(code["id"], [])
    return {
        # Totals over the days shown, so a window's totals match its series.
        "totals": {k: sum(d[k] for d in days.values()) for k in ("scans", "adds", "refusals")},
        "days": [{"day": d, **v} for d, v in sorted(days.items())],
        "codes": codes,
    }
