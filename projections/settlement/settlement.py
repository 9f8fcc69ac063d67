"""Settlement's read model: rule set versions, payees, earnings line by line, closed periods
and their statements, payouts, disputes.

Every line lands in the period it settles in: the period of its business time in its payee's
group, or, once that period is closed, the group's first open period (a late item, a
correction, a clawback: "posted in the current cycle"). Closing a period moves lines recorded
after the close's cutoff into the next period and writes one statement row per payee; the
statement's lines are the period's lines, which are never changed after.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from domain.settlement.aggregates import (
    Earning,
    Payee,
    PayeeGroup,
    Payout,
    RuleSet,
    SettlementPeriod,
)
from domain.settlement.cycles import period_name, period_of
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


_INSERT_LINE = (
    "INSERT INTO settlement_lines (line_id, earning_id, seq, source, payee_id, group_key,"
    " period, component, type, amount, explanation, inputs, rule_set, rule_version, event,"
    " occurred_at, position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


class Settlement(Projection):
    name = "settlement"
    schema_version = 2  # 2: settlement_items.order_id (refunds find their sales by it)
    tables = (
        "settlement_rule_sets",
        "settlement_groups",
        "settlement_payees",
        "settlement_shops",
        "settlement_items",
        "settlement_lines",
        "settlement_closed",
        "settlement_statements",
        "settlement_payouts",
        "settlement_disputes",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS settlement_rule_sets ("
        " rule_set TEXT NOT NULL, rule_version BIGINT NOT NULL, aggregate_id TEXT NOT NULL,"
        " definition TEXT NOT NULL,"
        " effective_from TEXT NOT NULL, recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL,"
        " position BIGINT NOT NULL, PRIMARY KEY (rule_set, rule_version))",
        "CREATE TABLE IF NOT EXISTS settlement_groups ("
        " group_key TEXT PRIMARY KEY, name TEXT NOT NULL, cycle TEXT NOT NULL,"
        " timezone TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS settlement_payees ("
        " payee_id TEXT PRIMARY KEY, aggregate_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " name TEXT NOT NULL,"
        " group_key TEXT NOT NULL, rule_set TEXT, region TEXT, parent TEXT, staff_id TEXT,"
        " shops TEXT NOT NULL, has_account INTEGER NOT NULL, version BIGINT NOT NULL,"
        " position BIGINT NOT NULL, registered_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS settlement_payees_staff ON settlement_payees (staff_id)",
        "CREATE TABLE IF NOT EXISTS settlement_shops ("
        " shop_id TEXT NOT NULL, payee_id TEXT NOT NULL, PRIMARY KEY (shop_id, payee_id))",
        # One row per earning: what volume counts and the held list read.
        "CREATE TABLE IF NOT EXISTS settlement_items ("
        " earning_id TEXT PRIMARY KEY, source TEXT NOT NULL, payee_id TEXT NOT NULL,"
        " kind TEXT NOT NULL, region TEXT, occurred_at TEXT NOT NULL, amount BIGINT,"
        " total BIGINT NOT NULL, held TEXT, rule_set TEXT, rule_version BIGINT,"
        " order_id TEXT, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS settlement_items_order ON settlement_items (order_id)",
        "CREATE INDEX IF NOT EXISTS settlement_items_payee"
        " ON settlement_items (payee_id, occurred_at)",
        "CREATE INDEX IF NOT EXISTS settlement_items_region"
        " ON settlement_items (region, kind, occurred_at)",
        "CREATE INDEX IF NOT EXISTS settlement_items_held ON settlement_items (held)",
        "CREATE TABLE IF NOT EXISTS settlement_lines ("
        " line_id TEXT PRIMARY KEY, earning_id TEXT NOT NULL, seq BIGINT NOT NULL,"
        " source TEXT NOT NULL, payee_id TEXT NOT NULL, group_key TEXT, period TEXT,"
        " component TEXT NOT NULL,"
        " type TEXT NOT NULL, amount BIGINT NOT NULL, explanation TEXT NOT NULL,"
        " inputs TEXT NOT NULL, rule_set TEXT, rule_version BIGINT, event TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, position BIGINT NOT NULL)",
        # A period's lines by payee in recorded order: the close's totals and digest read
        # them in this order without sorting millions of rows.
        "CREATE INDEX IF NOT EXISTS settlement_lines_period"
        " ON settlement_lines (group_key, period, payee_id, position, seq)",
        "CREATE INDEX IF NOT EXISTS settlement_lines_payee"
        " ON settlement_lines (payee_id, position)",
        "CREATE INDEX IF NOT EXISTS settlement_lines_earning"
        " ON settlement_lines (earning_id, position, seq)",
        "CREATE TABLE IF NOT EXISTS settlement_closed ("
        " group_key TEXT NOT NULL, period TEXT NOT NULL, period_start TEXT NOT NULL,"
        " period_end TEXT NOT NULL, cutoff_position BIGINT NOT NULL, payees BIGINT NOT NULL,"
        " lines BIGINT NOT NULL, total BIGINT NOT NULL, digest TEXT NOT NULL,"
        " rule_versions TEXT NOT NULL, closed_by TEXT NOT NULL, closed_at TEXT NOT NULL,"
        " position BIGINT NOT NULL, PRIMARY KEY (group_key, period))",
        "CREATE TABLE IF NOT EXISTS settlement_statements ("
        " group_key TEXT NOT NULL, period TEXT NOT NULL, payee_id TEXT NOT NULL,"
        " lines BIGINT NOT NULL, total BIGINT NOT NULL,"
        " PRIMARY KEY (group_key, period, payee_id))",
        "CREATE INDEX IF NOT EXISTS settlement_statements_payee"
        " ON settlement_statements (payee_id, period)",
        "CREATE TABLE IF NOT EXISTS settlement_payouts ("
        " payout_id TEXT PRIMARY KEY, payee_id TEXT NOT NULL, group_key TEXT NOT NULL,"
        " period TEXT NOT NULL, amount BIGINT NOT NULL, status TEXT NOT NULL,"
        " attempt BIGINT NOT NULL, idempotency_key TEXT NOT NULL, reference TEXT,"
        " reason TEXT, issued_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS settlement_payouts_payee ON settlement_payouts (payee_id)",
        "CREATE TABLE IF NOT EXISTS settlement_disputes ("
        " dispute_id TEXT PRIMARY KEY, earning_id TEXT NOT NULL, source TEXT NOT NULL,"
        " line BIGINT NOT NULL, payee_id TEXT NOT NULL, reason TEXT NOT NULL,"
        " status TEXT NOT NULL, outcome TEXT, amount BIGINT, note TEXT,"
        " opened_by TEXT NOT NULL, opened_at TEXT NOT NULL, resolved_by TEXT,"
        " resolved_at TEXT)",
    )

    def __init__(self) -> None:
        super().__init__()
        # What `_place` reads for every line, kept between events: the payee's group with its
        # cycle and zone, and how far each group is closed. Only this projection's handlers
        # change those rows, and each updates the cache as it does (forget() on a rollback).
        self._groups_of: dict[str, tuple[str, str, str] | None] = {}
        self._closed_until: dict[str, str | None] = {}
        # Item and line rows are held (self.held) to one INSERT each per batch: most events
        # are accruals. A handler that reads those tables writes them first (`flush`).

    def forget(self) -> None:
        super().forget()
        self._groups_of.clear()
        self._closed_until.clear()

    # --- configuration -----------------------------------------------------------------

    @handles(RuleSet, "Published", "Revised")
    def _rules(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        if e.name == "RuleSetPublished":
            key = d["key"]
        else:
            cur.execute(
                "SELECT rule_set FROM settlement_rule_sets WHERE aggregate_id = ? LIMIT 1",
                (e.originator_id,),
            )
            key = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO settlement_rule_sets (rule_set, rule_version, aggregate_id, definition,"
            " effective_from, recorded_by, recorded_at, position) VALUES (?,?,?,?,?,?,?,?)",
            (
                key,
                d.get("rule_version", 1),
                e.originator_id,
                dumps(d["definition"]).decode(),
                sortable_time(d["effective_from"]),
                e.actor,
                sortable_time(e.occurred_at),
                e.position,
            ),
        )

    @handles(PayeeGroup, "Defined")
    def _group(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO settlement_groups (group_key, name, cycle, timezone, position)"
            " VALUES (?,?,?,?,?)",
            (d["key"], d["name"], d["cycle"], d["timezone"], e.position),
        )

    @handles(Payee, "Registered")
    def _payee(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO settlement_payees (payee_id, aggregate_id, kind, name, group_key,"
            " rule_set, region, parent, staff_id, shops, has_account, version, position,"
            " registered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                d["payee_id"],
                e.originator_id,
                d["kind"],
                d["name"],
                d["group"],
                d["rule_set"],
                d["region"],
                d["parent"],
                d["staff_id"],
                dumps(d["shops"]).decode(),
                1 if d["account"] else 0,
                e.originator_version,
                e.position,
                sortable_time(e.occurred_at),
            ),
        )
        self._shops(cur, d["payee_id"], d["shops"])
        self._groups_of.pop(d["payee_id"], None)
        self._place_waiting_lines(cur, d["payee_id"], d["group"])

    @handles(Payee, "Changed")
    def _payee_changed(self, e: EventRecord, cur: Any) -> None:
        changes = dict(e.data["changes"])
        cur.execute(
            "SELECT payee_id FROM settlement_payees WHERE aggregate_id = ?", (e.originator_id,)
        )
        payee_id = cur.fetchone()[0]
        columns = {"group": "group_key", "account": "has_account"}
        sets, params = ["version = ?", "position = ?"], [e.originator_version, e.position]
        for key, value in changes.items():
            column = columns.get(key, key)
            if key == "shops":
                self._shops(cur, payee_id, value)
                value = dumps(value).decode()
            elif key == "account":
                value = 1 if value else 0
            sets.append(f"{column} = ?")
            params.append(value)
        cur.execute(
            f"UPDATE settlement_payees SET {', '.join(sets)} WHERE payee_id = ?",
            (*params, payee_id),
        )
        # Lines already placed stay in the group they settle in; a new group takes new ones.
        self._groups_of.pop(payee_id, None)

    @staticmethod
    def _shops(cur: Any, payee_id: str, shops: list[str]) -> None:
        """The shops whose orders the payee is paid on, as they are now."""
        cur.execute("DELETE FROM settlement_shops WHERE payee_id = ?", (payee_id,))
        if shops:
            cur.executemany(
                "INSERT INTO settlement_shops (shop_id, payee_id) VALUES (?,?)",
                [(shop, payee_id) for shop in shops],
            )

    # --- earnings ----------------------------------------------------------------------

    @handles(Earning, "Accrued")
    def _accrued(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        facts = d["facts"]
        lines = d["lines"]
        self.held.add(
            "INSERT INTO settlement_items (earning_id, source, payee_id, kind, region,"
            " occurred_at, amount, total, held, rule_set, rule_version, order_id, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["source"],
                facts["payee_id"],
                facts["kind"],
                facts.get("region"),
                sortable_time(facts["occurred_at"]),
                facts.get("amount"),
                sum(ln["amount"] for ln in lines if ln["payee_id"] == facts["payee_id"]),
                d["held"],
                d["rule_set"],
                d["rule_version"],
                facts.get("order_id"),
                e.position,
            ),
        )
        self._lines(
            cur, e, d["source"], lines, facts["occurred_at"], d["rule_set"], d["rule_version"]
        )

    @handles(Earning, "Priced")
    def _priced(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self.flush(cur)
        cur.execute(
            "SELECT source, occurred_at FROM settlement_items WHERE earning_id = ?",
            (e.originator_id,),
        )
        source, occurred_at = cur.fetchone()
        payee_id = d["payee_id"]
        cur.execute(
            "UPDATE settlement_items SET held = NULL, payee_id = ?, rule_set = ?,"
            " rule_version = ?, total = ? WHERE earning_id = ?",
            (
                payee_id,
                d["rule_set"],
                d["rule_version"],
                sum(ln["amount"] for ln in d["lines"] if ln["payee_id"] == payee_id),
                e.originator_id,
            ),
        )
        self._lines(cur, e, source, d["lines"], occurred_at, d["rule_set"], d["rule_version"])

    @handles(Earning, "Corrected", "ClawedBack", "DisputeResolved")
    def _delta(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self.flush(cur)
        cur.execute(
            "SELECT source, rule_set, rule_version FROM settlement_items WHERE earning_id = ?",
            (e.originator_id,),
        )
        source, rule_set, version = cur.fetchone()
        version = d.get("rule_version", version)
        if e.name == "EarningCorrected":
            cur.execute(
                "UPDATE settlement_items SET rule_version = ? WHERE earning_id = ?",
                (version, e.originator_id),
            )
        if e.name == "EarningDisputeResolved":
            cur.execute(
                "UPDATE settlement_disputes SET status = 'resolved', outcome = ?, amount = ?,"
                " note = ?, resolved_by = ?, resolved_at = ? WHERE dispute_id = ?",
                (
                    d["outcome"],
                    sum(ln["amount"] for ln in d["lines"]),
                    d["note"],
                    e.actor,
                    sortable_time(e.occurred_at),
                    d["dispute_id"],
                ),
            )
        # Posted now: business time is the correction's, the refund's, the resolution's.
        self._lines(cur, e, source, d["lines"], e.occurred_at, rule_set, version)

    @handles(Earning, "Disputed")
    def _disputed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self.flush(cur)
        # The earning's line n is its n-th line in recorded order (each event appends).
        cur.execute(
            "SELECT source, payee_id FROM settlement_lines WHERE earning_id = ?"
            " ORDER BY position, seq LIMIT 1 OFFSET ?",
            (e.originator_id, d["line"]),
        )
        source, payee = cur.fetchone()
        cur.execute(
            "INSERT INTO settlement_disputes (dispute_id, earning_id, source, line, payee_id,"
            " reason, status, opened_by, opened_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                d["dispute_id"],
                e.originator_id,
                source,
                d["line"],
                payee,
                d["reason"],
                "open",
                e.actor,
                sortable_time(e.occurred_at),
            ),
        )

    def _lines(
        self,
        cur: Any,
        e: EventRecord,
        source: str,
        lines: list[dict[str, Any]],
        occurred_at: str,
        rule_set: str | None,
        rule_version: int | None,
        placed_in: tuple[str, str] | None = None,
    ) -> None:
        """One row per line, each in the period it settles in (`placed_in`: all in that one,
        for a closing period's own lines)."""
        at = _when(sortable_time(occurred_at))
        placed: dict[str, tuple[str | None, str | None]] = {}
        rows = []
        for i, line in enumerate(lines):
            payee = line["payee_id"]
            if payee not in placed:
                placed[payee] = placed_in or self._place(cur, payee, at)
            group, period = placed[payee]
            rows.append(
                (
                    f"{e.originator_id}:{e.originator_version}:{i}",
                    e.originator_id,
                    i,
                    source,
                    payee,
                    group,
                    period,
                    line["component"],
                    line["type"],
                    line["amount"],
                    line["explanation"],
                    dumps(line["inputs"]).decode(),
                    line.get("rule_set", rule_set),
                    line.get("rule_version", rule_version),
                    e.name,
                    sortable_time(occurred_at),
                    e.position,
                )
            )
        for row in rows:
            self.held.add(_INSERT_LINE, row)

    def _place(self, cur: Any, payee_id: str, at: datetime) -> tuple[str | None, str | None]:
        """(group, period) a line of this payee at this business time settles in; (None, None)
        while the payee is not registered (placed when it is)."""
        if payee_id not in self._groups_of:
            cur.execute(
                "SELECT p.group_key, g.cycle, g.timezone FROM settlement_payees p"
                " JOIN settlement_groups g ON g.group_key = p.group_key WHERE p.payee_id = ?",
                (payee_id,),
            )
            row = cur.fetchone()
            self._groups_of[payee_id] = (str(row[0]), str(row[1]), str(row[2])) if row else None
        found = self._groups_of[payee_id]
        if found is None:
            return None, None
        group, cycle, zone = found
        if group not in self._closed_until:
            cur.execute(
                "SELECT MAX(period_end) FROM settlement_closed WHERE group_key = ?", (group,)
            )
            self._closed_until[group] = cur.fetchone()[0]
        closed_until = self._closed_until[group]
        if closed_until is not None:
            at = max(at, _when(closed_until))
        start, _ = period_of(cycle, zone, at)
        return group, period_name(zone, start)

    def _place_waiting_lines(self, cur: Any, payee_id: str, group: str) -> None:
        self.flush(cur)
        cur.execute(
            "SELECT line_id, occurred_at FROM settlement_lines"
            " WHERE payee_id = ? AND group_key IS NULL",
            (payee_id,),
        )
        for line_id, occurred_at in cur.fetchall():
            placed_group, period = self._place(cur, payee_id, _when(occurred_at))
            cur.execute(
                "UPDATE settlement_lines SET group_key = ?, period = ? WHERE line_id = ?",
                (placed_group, period, line_id),
            )

    # --- closing -----------------------------------------------------------------------

    @handles(SettlementPeriod, "Closed")
    def _closed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self.flush(cur)
        group, period = d["group"], d["period"]
        cur.execute("SELECT cycle, timezone FROM settlement_groups WHERE group_key = ?", (group,))
        cycle, zone = cur.fetchone()
        start, _ = period_of(cycle, zone, _when(sortable_time(d["period_end"])))
        following = period_name(zone, start)
        # Lines recorded after the close read the period belong to the next one.
        cur.execute(
            "UPDATE settlement_lines SET period = ?"
            " WHERE group_key = ? AND period = ? AND position > ?",
            (following, group, period, d["cutoff_position"]),
        )
        source = f"period:{group}:{period}"
        self._lines(cur, e, source, d["adjustments"], d["period_end"], None, None, (group, period))
        self.flush(cur)  # the statements below sum them
        cur.execute(
            "INSERT INTO settlement_statements (group_key, period, payee_id, lines, total)"
            " SELECT group_key, period, payee_id, COUNT(*), SUM(amount) FROM settlement_lines"
            " WHERE group_key = ? AND period = ? GROUP BY group_key, period, payee_id",
            (group, period),
        )
        self._closed_until.pop(group, None)
        cur.execute(
            "INSERT INTO settlement_closed (group_key, period, period_start, period_end,"
            " cutoff_position, payees, lines, total, digest, rule_versions, closed_by, closed_at,"
            " position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                group,
                period,
                sortable_time(d["period_start"]),
                sortable_time(d["period_end"]),
                d["cutoff_position"],
                d["payees"],
                d["lines"],
                d["total"],
                d["digest"],
                dumps(d["rule_versions"]).decode(),
                e.actor,
                sortable_time(e.occurred_at),
                e.position,
            ),
        )

    # --- payouts -----------------------------------------------------------------------

    @handles(Payout, "Issued")
    def _payout(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO settlement_payouts (payout_id, payee_id, group_key, period, amount,"
            " status, attempt, idempotency_key, issued_at, updated_at, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["payee_id"],
                d["group"],
                d["period"],
                d["amount"],
                "issued",
                1,
                d["idempotency_key"],
                sortable_time(e.occurred_at),
                sortable_time(e.occurred_at),
                e.position,
            ),
        )

    @handles(Payout, "Failed", "Retried", "Settled")
    def _payout_moved(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        status = {"PayoutFailed": "failed", "PayoutRetried": "issued", "PayoutSettled": "settled"}
        cur.execute(
            "UPDATE settlement_payouts SET status = ?, attempt = COALESCE(?, attempt),"
            " reason = COALESCE(?, reason), reference = COALESCE(?, reference), updated_at = ?,"
            " position = ? WHERE payout_id = ?",
            (
                status[e.name],
                d.get("attempt"),
                d.get("reason"),
                d.get("gateway_ref"),
                sortable_time(e.occurred_at),
                e.position,
                e.originator_id,
            ),
        )


# --- queries ----------------------------------------------------------------------------


def _rows(
    db: Database, sql: str, params: tuple[Any, ...], columns: list[str]
) -> list[dict[str, Any]]:
    return [dict(zip(columns, row, strict=True)) for row in db.query(sql, params)]


_LINE = [
    "line_id",
    "earning_id",
    "seq",
    "source",
    "payee_id",
    "group_key",
    "period",
    "component",
    "type",
    "amount",
    "explanation",
    "inputs",
    "rule_set",
    "rule_version",
    "event",
    "occurred_at",
    "position",
]


def _line(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "inputs": orjson.loads(row["inputs"])}


def rule_versions(db: Database, rule_set: str | None = None) -> list[dict[str, Any]]:
    where, params = ("WHERE rule_set = ?", (rule_set,)) if rule_set else ("", ())
    rows = _rows(
        db,
        "SELECT rule_set, rule_version, definition, effective_from, recorded_by, recorded_at,"
        f" position FROM settlement_rule_sets {where} ORDER BY rule_set, rule_version",
        params,
        [
            "rule_set",
            "rule_version",
            "definition",
            "effective_from",
            "recorded_by",
            "recorded_at",
            "position",
        ],
    )
    return [{**r, "definition": orjson.loads(r["definition"])} for r in rows]


_PAYEE = [
    "payee_id",
    "kind",
    "name",
    "group_key",
    "rule_set",
    "region",
    "parent",
    "staff_id",
    "shops",
    "has_account",
    "version",
    "position",
    "registered_at",
]


def payee(db: Database, payee_id: str) -> dict[str, Any] | None:
    rows = _rows(
        db,
        f"SELECT {', '.join(_PAYEE)} FROM settlement_payees WHERE payee_id = ?",
        (payee_id,),
        _PAYEE,
    )
    if not rows:
        return None
    row = rows[0]
    return {**row, "shops": orjson.loads(row["shops"]), "has_account": bool(row["has_account"])}


def payee_of_staff(db: Database, staff_id: str) -> str | None:
    rows = db.query(
        "SELECT payee_id FROM settlement_payees WHERE staff_id = ? ORDER BY position LIMIT 1",
        (staff_id,),
    )
    return str(rows[0][0]) if rows else None


def payees_of_shop(db: Database, shop_id: str) -> list[str]:
    return [
        str(r[0])
        for r in db.query(
            "SELECT payee_id FROM settlement_shops WHERE shop_id = ? ORDER BY payee_id", (shop_id,)
        )
    ]


def groups(db: Database) -> list[dict[str, Any]]:
    return _rows(
        db,
        "SELECT group_key, name, cycle, timezone FROM settlement_groups ORDER BY group_key",
        (),
        ["group_key", "name", "cycle", "timezone"],
    )


def earnings(
    db: Database, payee_id: str, *, after: int = 0, limit: int = 200
) -> list[dict[str, Any]]:
    """A payee's lines as they accrue, oldest first after a position (a feed)."""
    rows = _rows(
        db,
        f"SELECT {', '.join(_LINE)} FROM settlement_lines WHERE payee_id = ? AND position > ?"
        " ORDER BY position, seq LIMIT ?",
        (payee_id, after, limit),
        _LINE,
    )
    return [_line(r) for r in rows]


def open_totals(db: Database, payee_id: str) -> list[dict[str, Any]]:
    """What each not yet closed period holds for the payee so far."""
    return _rows(
        db,
        "SELECT l.group_key, l.period, COUNT(*), CAST(SUM(l.amount) AS BIGINT)"
        " FROM settlement_lines l"
        " WHERE l.payee_id = ? AND l.period IS NOT NULL AND NOT EXISTS (SELECT 1 FROM"
        " settlement_closed c WHERE c.group_key = l.group_key AND c.period = l.period)"
        " GROUP BY l.group_key, l.period ORDER BY l.period",
        (payee_id,),
        ["group_key", "period", "lines", "total"],
    )


def statements(db: Database, payee_id: str) -> list[dict[str, Any]]:
    return _rows(
        db,
        "SELECT s.group_key, s.period, s.lines, s.total, c.period_start, c.period_end,"
        " c.closed_at FROM settlement_statements s JOIN settlement_closed c"
        " ON c.group_key = s.group_key AND c.period = s.period"
        " WHERE s.payee_id = ? ORDER BY s.period DESC, s.group_key",
        (payee_id,),
        ["group_key", "period", "lines", "total", "period_start", "period_end", "closed_at"],
    )


def statement(db: Database, payee_id: str, group: str, period: str) -> dict[str, Any] | None:
    head = _rows(
        db,
        "SELECT s.lines, s.total, c.period_start, c.period_end, c.closed_at, c.digest"
        " FROM settlement_statements s JOIN settlement_closed c"
        " ON c.group_key = s.group_key AND c.period = s.period"
        " WHERE s.payee_id = ? AND s.group_key = ? AND s.period = ?",
        (payee_id, group, period),
        ["line_count", "total", "period_start", "period_end", "closed_at", "period_digest"],
    )
    if not head:
        return None
    lines = _rows(
        db,
        f"SELECT {', '.join(_LINE)} FROM settlement_lines"
        " WHERE group_key = ? AND period = ? AND payee_id = ? ORDER BY position, seq",
        (group, period, payee_id),
        _LINE,
    )
    return {
        "payee_id": payee_id,
        "group": group,
        "period": period,
        **head[0],
        "lines": [_line(r) for r in lines],
    }


def closed(db: Database, group: str, period: str) -> dict[str, Any] | None:
    rows = _rows(
        db,
        "SELECT group_key, period, period_start, period_end, cutoff_position, payees, lines,"
        " total, digest, rule_versions, closed_by, closed_at, position FROM settlement_closed"
        " WHERE group_key = ? AND period = ?",
        (group, period),
        [
            "group_key",
            "period",
            "period_start",
            "period_end",
            "cutoff_position",
            "payees",
            "lines",
            "total",
            "digest",
            "rule_versions",
            "closed_by",
            "closed_at",
            "position",
        ],
    )
    return {**rows[0], "rule_versions": orjson.loads(rows[0]["rule_versions"])} if rows else None


def closed_until(db: Database, group: str) -> str | None:
    rows = db.query("SELECT MAX(period_end) FROM settlement_closed WHERE group_key = ?", (group,))
    return rows[0][0] if rows and rows[0][0] else None


def period_payees(db: Database, group: str, period: str, cutoff: int) -> list[tuple[str, int, int]]:
    """(payee, lines, total) of an open period, lines recorded up to `cutoff`."""
    return [
        (str(p), int(n), int(t))
        for p, n, t in db.query(
            "SELECT payee_id, COUNT(*), SUM(amount) FROM settlement_lines"
            " WHERE group_key = ? AND period = ? AND position <= ? GROUP BY payee_id"
            " ORDER BY payee_id",
            (group, period, cutoff),
        )
    ]


def period_line_text(db: Database, group: str, period: str, cutoff: int) -> Iterator[bytes]:
    """The lines a close's digest covers, as text: `payee\tcomponent\tamount\tline_id`, one per
    line, by payee and then recorded order (COPY's text format on PostgreSQL)."""
    yield from db.copy_text(
        "SELECT payee_id, component, amount, line_id FROM settlement_lines"
        " WHERE group_key = ? AND period = ? AND position <= ?"
        " ORDER BY payee_id, position, seq",
        (group, period, cutoff),
    )


def held(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    return _rows(
        db,
        "SELECT earning_id, source, payee_id, kind, occurred_at, held, position"
        " FROM settlement_items WHERE held IS NOT NULL ORDER BY position LIMIT ?",
        (limit,),
        ["earning_id", "source", "payee_id", "kind", "occurred_at", "held", "position"],
    )


def payouts(
    db: Database,
    *,
    payee_id: str | None = None,
    group: str | None = None,
    period: str | None = None,
) -> list[dict[str, Any]]:
    where, params = [], []
    for column, value in (("payee_id", payee_id), ("group_key", group), ("period", period)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    columns = [
        "payout_id",
        "payee_id",
        "group_key",
        "period",
        "amount",
        "status",
        "attempt",
        "idempotency_key",
        "reference",
        "reason",
        "issued_at",
        "updated_at",
    ]
    return _rows(
        db,
        f"SELECT {', '.join(columns)} FROM settlement_payouts"
        f" WHERE {' AND '.join(where) or '1=1'} ORDER BY period, payee_id",
        tuple(params),
        columns,
    )


def disputes(
    db: Database, *, status: str | None = None, payee_id: str | None = None
) -> list[dict[str, Any]]:
    where, params = [], []
    for column, value in (("status", status), ("payee_id", payee_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    columns = [
        "dispute_id",
        "earning_id",
        "source",
        "line",
        "payee_id",
        "reason",
        "status",
        "outcome",
        "amount",
        "note",
        "opened_by",
        "opened_at",
        "resolved_by",
        "resolved_at",
    ]
    return _rows(
        db,
        f"SELECT {', '.join(columns)} FROM settlement_disputes"
        f" WHERE {' AND '.join(where) or '1=1'} ORDER BY opened_at",
        tuple(params),
        columns,
    )


def dispute_source(db: Database, dispute_id: str) -> str | None:
    """The source of the earning a dispute is about."""
    rows = db.query("SELECT source FROM settlement_disputes WHERE dispute_id = ?", (dispute_id,))
    return str(rows[0][0]) if rows else None


def held_for(db: Database, payee_ids: list[str]) -> list[str]:
    """Sources of the earnings held for these payee ids, oldest first."""
    marks = ",".join("?" * len(payee_ids))
    return [
        str(r[0])
        for r in db.query(
            "SELECT source FROM settlement_items WHERE held IS NOT NULL"
            f" AND payee_id IN ({marks}) ORDER BY position",
            tuple(payee_ids),
        )
    ]


def trends(db: Database, *, region: str | None, group: str | None = None) -> list[dict[str, Any]]:
    """Settlement by period, component type and payee (a store, an installer) for the payees
    of a region (named anywhere in theirs: 杭州市 covers 浙江省杭州市)."""
    where, params = ["l.period IS NOT NULL"], []
    if region:
        where.append("p.region LIKE ?")
        params.append("%" + region.replace("%", "") + "%")
    if group:
        where.append("l.group_key = ?")
        params.append(group)
    return _rows(
        db,
        "SELECT l.period, l.type, l.payee_id, p.kind, COUNT(*), CAST(SUM(l.amount) AS BIGINT)"
        " FROM settlement_lines l JOIN settlement_payees p ON p.payee_id = l.payee_id"
        f" WHERE {' AND '.join(where)} GROUP BY l.period, l.type, l.payee_id, p.kind"
        " ORDER BY l.period, l.type, l.payee_id",
        tuple(params),
        ["period", "type", "payee_id", "kind", "lines", "amount"],
    )
