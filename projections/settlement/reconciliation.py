"""Reconciliation's read model (对账): each imported statement with its counts, and the
findings finance works down, open until resolved. Amounts are fen."""

from __future__ import annotations

from typing import Any

import orjson

from domain.settlement.reconciling import StatementImport
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


def _time(value: str | None) -> str | None:
    return sortable_time(value) if value else None


class Reconciliation(Projection):
    name = "reconciliation"
    tables = ("reconciliation_findings", "reconciliation_imports")
    ddl = (
        "CREATE TABLE IF NOT EXISTS reconciliation_imports ("
        " import_id TEXT PRIMARY KEY, channel TEXT NOT NULL, file_name TEXT NOT NULL,"
        " digest TEXT NOT NULL, row_count BIGINT NOT NULL, period_from TEXT, period_to TEXT,"
        " fee_rate TEXT NOT NULL, tolerance_fen BIGINT NOT NULL, platforms TEXT,"
        " counts TEXT NOT NULL, finding_count BIGINT NOT NULL, open_count BIGINT NOT NULL,"
        " imported_by TEXT NOT NULL, imported_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS reconciliation_findings ("
        " import_id TEXT NOT NULL, finding_index BIGINT NOT NULL, channel TEXT NOT NULL,"
        " reason TEXT NOT NULL, kind TEXT NOT NULL, order_ref TEXT NOT NULL, refund_ref TEXT,"
        " statement_amount BIGINT, book_amount BIGINT, statement_fee BIGINT,"
        " expected_fee BIGINT NOT NULL, line BIGINT, status TEXT NOT NULL, resolution TEXT,"
        " note TEXT, resolved_by TEXT, resolved_at TEXT, position BIGINT NOT NULL,"
        " PRIMARY KEY (import_id, finding_index))",
        "CREATE INDEX IF NOT EXISTS reconciliation_findings_status"
        " ON reconciliation_findings (status, reason, position, finding_index)",
        "CREATE INDEX IF NOT EXISTS reconciliation_findings_order"
        " ON reconciliation_findings (order_ref)",
    )

    @handles(StatementImport, "Imported")
    def _imported(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        findings = d["findings"]  # the first ones; FindingsListed brings the rest
        listed = sum(n for reason, n in d["counts"].items() if reason != "matched")
        cur.execute(
            "INSERT INTO reconciliation_imports (import_id, channel, file_name, digest,"
            " row_count, period_from, period_to, fee_rate, tolerance_fen, platforms, counts,"
            " finding_count, open_count, imported_by, imported_at, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["channel"],
                d["file_name"],
                d["digest"],
                d["rows"],
                _time(d["period_from"]),
                _time(d["period_to"]),
                d["fee_rate"],
                d["tolerance_fen"],
                None if d["platforms"] is None else dumps(d["platforms"]).decode(),
                dumps(d["counts"]).decode(),
                listed,
                listed,
                e.actor,
                sortable_time(e.occurred_at),
                e.position,
            ),
        )
        self._findings(cur, e, d["channel"], 0, findings)

    @handles(StatementImport, "FindingsListed")
    def _listed(self, e: EventRecord, cur: Any) -> None:
        cur.execute(
            "SELECT channel FROM reconciliation_imports WHERE import_id = ?", (e.originator_id,)
        )
        channel = cur.fetchone()[0]
        self._findings(cur, e, channel, e.data["first_index"], e.data["findings"])

    def _findings(
        self, cur: Any, e: EventRecord, channel: str, first: int, findings: list[dict[str, Any]]
    ) -> None:
        if not findings:
            return
        cur.executemany(
            "INSERT INTO reconciliation_findings (import_id, finding_index, channel, reason,"
            " kind, order_ref, refund_ref, statement_amount, book_amount, statement_fee,"
            " expected_fee, line, status, position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (
                    e.originator_id,
                    first + i,
                    channel,
                    f["reason"],
                    f["kind"],
                    f["order_ref"],
                    f["refund_ref"],
                    f["statement_amount"],
                    f["book_amount"],
                    f["statement_fee"],
                    f["expected_fee"],
                    f["line"],
                    "open",
                    e.position,
                )
                for i, f in enumerate(findings)
            ],
        )

    @handles(StatementImport, "FindingResolved")
    def _resolved(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "UPDATE reconciliation_findings SET status = 'resolved', resolution = ?, note = ?,"
            " resolved_by = ?, resolved_at = ? WHERE import_id = ? AND finding_index = ?",
            (
                d["resolution"],
                d["note"],
                e.actor,
                sortable_time(e.occurred_at),
                e.originator_id,
                d["index"],
            ),
        )
        cur.execute(
            "UPDATE reconciliation_imports SET open_count = open_count - 1 WHERE import_id = ?",
            (e.originator_id,),
        )


# --- queries ----------------------------------------------------------------------------

_IMPORT = [
    "import_id",
    "channel",
    "file_name",
    "digest",
    "row_count",
    "period_from",
    "period_to",
    "fee_rate",
    "tolerance_fen",
    "platforms",
    "counts",
    "finding_count",
    "open_count",
    "imported_by",
    "imported_at",
    "position",
]
_FINDING = [
    "import_id",
    "finding_index",
    "channel",
    "reason",
    "kind",
    "order_ref",
    "refund_ref",
    "statement_amount",
    "book_amount",
    "statement_fee",
    "expected_fee",
    "line",
    "status",
    "resolution",
    "note",
    "resolved_by",
    "resolved_at",
    "position",
]
_INTS = ("statement_amount", "book_amount", "statement_fee", "expected_fee", "line")


def _import(row: dict[str, Any]) -> dict[str, Any]:
    platforms = row["platforms"]
    return {
        **row,
        "row_count": int(row["row_count"]),
        "tolerance_fen": int(row["tolerance_fen"]),
        "finding_count": int(row["finding_count"]),
        "open_count": int(row["open_count"]),
        "position": int(row["position"]),
        "platforms": orjson.loads(platforms) if platforms is not None else None,
        "counts": orjson.loads(row["counts"]),
    }


def imports(
    db: Database, *, channel: str | None = None, limit: int = 100, offset: int = 0
) -> list[dict[str, Any]]:
    """Imports, latest first."""
    where, params = (["channel = ?"], [channel]) if channel else ([], [])
    rows = select(
        db,
        "reconciliation_imports",
        _IMPORT,
        where,
        list(params),
        order="position DESC",
        limit=limit,
        offset=offset,
    )
    return [_import(r) for r in rows]


def get_import(db: Database, import_id: str) -> dict[str, Any] | None:
    rows = select(
        db,
        "reconciliation_imports",
        _IMPORT,
        ["import_id = ?"],
        [import_id],
        order="import_id",
        limit=1,
    )
    return _import(rows[0]) if rows else None


def findings(
    db: Database,
    *,
    status: str | None = None,
    reason: str | None = None,
    import_id: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Findings, in import order then as each import lists them."""
    where: list[str] = []
    params: list[object] = []
    for column, value in (("status", status), ("reason", reason), ("import_id", import_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    rows = select(
        db,
        "reconciliation_findings",
        _FINDING,
        where,
        params,
        order="position, import_id, finding_index",
        limit=limit,
        offset=offset,
    )
    out = []
    for row in rows:
        item = {"index": int(row.pop("finding_index")), **row}
        for key in _INTS:
            item[key] = None if item[key] is None else int(item[key])
        item["position"] = int(item["position"])
        out.append(item)
    return out
