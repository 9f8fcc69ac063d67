"""Coupons, points and membership as read models: each coupon with its current state, every
change of a coupon's state, every movement of points with the balance after it and every tier
change, so all can be shown as of any date (business time); and the loyalty program's
versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson

from domain.promotions.aggregates import Coupon, Points
from domain.promotions.loyalty import LoyaltyProgram, Membership
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles, select


class Promotions(Projection):
    name = "promotions"
    tables = (
        "promotions_coupon_changes",
        "promotions_coupons",
        "promotions_points",
        "promotions_programs",
        "promotions_members",
        "promotions_tier_changes",
    )
    ddl = (
        "CREATE TABLE IF NOT EXISTS promotions_coupons ("
        " code TEXT PRIMARY KEY, customer_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " value TEXT NOT NULL, min_spend BIGINT NOT NULL, valid_from TEXT NOT NULL,"
        " expires_at TEXT NOT NULL, issued_by TEXT NOT NULL, issuer_ref TEXT NOT NULL,"
        " issued_at TEXT NOT NULL, status TEXT NOT NULL, order_ref TEXT, discount BIGINT,"
        " changed_at TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS promotions_coupons_customer"
        " ON promotions_coupons (customer_id, issued_at)",
        "CREATE INDEX IF NOT EXISTS promotions_coupons_due"
        " ON promotions_coupons (status, expires_at)",
        "CREATE TABLE IF NOT EXISTS promotions_coupon_changes ("
        " position BIGINT PRIMARY KEY, code TEXT NOT NULL, status TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT)",
        "CREATE INDEX IF NOT EXISTS promotions_coupon_changes_code"
        " ON promotions_coupon_changes (code, occurred_at)",
        "CREATE TABLE IF NOT EXISTS promotions_points ("
        " position BIGINT PRIMARY KEY, customer_id TEXT NOT NULL, delta BIGINT NOT NULL,"
        " balance BIGINT NOT NULL, reason TEXT NOT NULL, ref TEXT NOT NULL,"
        " occurred_at TEXT NOT NULL, actor TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS promotions_points_customer"
        " ON promotions_points (customer_id, occurred_at, position)",
        "CREATE TABLE IF NOT EXISTS promotions_programs ("
        " program_version BIGINT PRIMARY KEY, definition TEXT NOT NULL,"
        " effective_from TEXT NOT NULL, recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL,"
        " position BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS promotions_members ("
        " customer_id TEXT PRIMARY KEY, tier TEXT NOT NULL, spend BIGINT NOT NULL,"
        " program_version BIGINT NOT NULL, since TEXT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS promotions_members_tier ON promotions_members (tier)",
        "CREATE TABLE IF NOT EXISTS promotions_tier_changes ("
        " position BIGINT PRIMARY KEY, customer_id TEXT NOT NULL, from_tier TEXT,"
        " tier TEXT NOT NULL, spend BIGINT NOT NULL, period_days BIGINT NOT NULL,"
        " program_version BIGINT NOT NULL, occurred_at TEXT NOT NULL, actor TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS promotions_tier_changes_customer"
        " ON promotions_tier_changes (customer_id, occurred_at, position)",
    )

    def _change(self, e: EventRecord, cur: Any, code: str, status: str, detail: str) -> None:
        cur.execute(
            "INSERT INTO promotions_coupon_changes (position, code, status, occurred_at, actor,"
            " detail) VALUES (?,?,?,?,?,?) ON CONFLICT (position) DO NOTHING",
            (e.position, code, status, sortable_time(e.occurred_at), e.actor, detail),
        )

    @handles(Coupon, "Issued")
    def _issued(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO promotions_coupons (code, customer_id, kind, value, min_spend,"
            " valid_from, expires_at, issued_by, issuer_ref, issued_at, status, changed_at,"
            " position) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (code) DO NOTHING",
            (
                d["code"], d["customer_id"], d["kind"], d["value"], d["min_spend"],
                sortable_time(d["valid_from"]), sortable_time(d["expires_at"]), d["issued_by"],
                d["issuer_ref"], at, "issued", at, e.position,
            ),
        )  # fmt: skip
        self._change(e, cur, d["code"], "issued", f"{d['issued_by']}:{d['issuer_ref']}")

    def _status(self, e: EventRecord, cur: Any, status: str, detail: str, **extra: Any) -> None:
        code = e.data["code"]
        sets = ", ".join(f"{k} = ?" for k in extra)
        cur.execute(
            f"UPDATE promotions_coupons SET status = ?, changed_at = ?, position = ?"
            f"{', ' + sets if sets else ''} WHERE code = ? AND position < ?",
            (status, sortable_time(e.occurred_at), e.position, *extra.values(), code, e.position),
        )
        self._change(e, cur, code, status, detail)

    @handles(Coupon, "Redeemed")
    def _redeemed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._status(
            e, cur, "redeemed", f"order {d['order_ref']}", order_ref=d["order_ref"],
            discount=d["discount"],
        )  # fmt: skip

    @handles(Coupon, "Revoked")
    def _revoked(self, e: EventRecord, cur: Any) -> None:
        self._status(e, cur, "revoked", e.data["reason"])

    @handles(Coupon, "Expired")
    def _expired(self, e: EventRecord, cur: Any) -> None:
        self._status(e, cur, "expired", "")

    @handles(Points, "Earned", "Spent", "ClawedBack")
    def _points(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        delta = d["points"] if e.name == "PointsEarned" else -d["points"]
        cur.execute(
            "INSERT INTO promotions_points (position, customer_id, delta, balance, reason, ref,"
            " occurred_at, actor) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (position) DO NOTHING",
            (
                e.position, d["customer_id"], delta, d["balance"], d["reason"], d["ref"],
                sortable_time(e.occurred_at), e.actor,
            ),
        )  # fmt: skip

    @handles(LoyaltyProgram, "Published", "Revised")
    def _program(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO promotions_programs (program_version, definition, effective_from,"
            " recorded_by, recorded_at, position) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT (program_version) DO NOTHING",
            (
                d.get("program_version", 1), dumps(d["definition"]).decode(),
                sortable_time(d["effective_from"]), e.actor, sortable_time(e.occurred_at),
                e.position,
            ),
        )  # fmt: skip

    @handles(Membership, "Enrolled", "TierChanged")
    def _tier(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO promotions_members (customer_id, tier, spend, program_version, since,"
            " position) VALUES (?,?,?,?,?,?) ON CONFLICT (customer_id) DO UPDATE SET"
            " tier = excluded.tier, spend = excluded.spend,"
            " program_version = excluded.program_version, since = excluded.since,"
            " position = excluded.position WHERE promotions_members.position < excluded.position",
            (d["customer_id"], d["tier"], d["spend"], d["program_version"], at, e.position),
        )
        cur.execute(
            "INSERT INTO promotions_tier_changes (position, customer_id, from_tier, tier, spend,"
            " period_days, program_version, occurred_at, actor) VALUES (?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (position) DO NOTHING",
            (
                e.position, d["customer_id"], d.get("from_tier"), d["tier"], d["spend"],
                d["period_days"], d["program_version"], at, e.actor,
            ),
        )  # fmt: skip


COUPON_COLUMNS = [
    "code", "customer_id", "kind", "value", "min_spend", "valid_from", "expires_at", "issued_by",
    "issuer_ref", "issued_at", "status", "order_ref", "discount", "changed_at", "position",
]  # fmt: skip


def coupons(
    db: Database, *, customer_id: str | None = None, status: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[object] = []
    if customer_id:
        where.append("customer_id = ?")
        params.append(customer_id)
    if status:
        where.append("status = ?")
        params.append(status)
    return select(
        db,
        "promotions_coupons",
        COUPON_COLUMNS,
        where,
        params,
        order="issued_at DESC, code",
        limit=limit,
    )


def find_coupon(db: Database, code: str) -> dict[str, Any] | None:
    found = select(
        db, "promotions_coupons", COUPON_COLUMNS, ["code = ?"], [code], order="code", limit=1
    )
    if not found:
        return None
    found[0]["history"] = select(
        db, "promotions_coupon_changes", ["position", "status", "occurred_at", "actor", "detail"],
        ["code = ?"], [code], order="occurred_at, position", limit=100,
    )  # fmt: skip
    return found[0]


def coupon_status_as_of(db: Database, code: str, as_of: datetime) -> str | None:
    """The coupon's state at `as_of` (business time); None if not yet issued then."""
    rows = db.query(
        "SELECT status FROM promotions_coupon_changes WHERE code = ? AND occurred_at <= ?"
        " ORDER BY occurred_at DESC, position DESC LIMIT 1",
        (code, sortable_time(as_of)),
    )
    return str(rows[0][0]) if rows else None


def due_for_expiry(db: Database, now: datetime, limit: int = 1000) -> list[str]:
    """Coupons still issued whose time has passed: the expiry sweep's candidates."""
    rows = db.query(
        "SELECT code FROM promotions_coupons WHERE status = 'issued' AND expires_at <= ?"
        " ORDER BY expires_at, code LIMIT ?",
        (sortable_time(now), limit),
    )
    return [str(r[0]) for r in rows]


def points(
    db: Database, customer_id: str, as_of: datetime | None = None, limit: int = 100
) -> dict[str, Any]:
    """The balance as of a time (now if not given) and the movements up to it, newest first,
    each with the balance after it. Both are counted in business time: a process may record
    a movement after others that happened later (points for an order completed this morning,
    recorded after a gift given this afternoon), so the order of recording is not the order
    of the balance."""
    where: list[str] = ["customer_id = ?"]
    params: list[object] = [customer_id]
    if as_of is not None:
        where.append("occurred_at <= ?")
        params.append(sortable_time(as_of))
    moves = select(
        db, "promotions_points",
        ["position", "delta", "balance", "reason", "ref", "occurred_at", "actor"],
        where, params, order="occurred_at DESC, position DESC", limit=limit,
    )  # fmt: skip
    total = db.query(
        f"SELECT COALESCE(SUM(delta), 0) FROM promotions_points WHERE {' AND '.join(where)}",
        params,
    )[0][0]
    balance = int(total)
    for move in moves:  # newest first: each one's balance is the total less what came after
        move["balance"] = balance
        balance -= int(move["delta"])
    return {
        "customer_id": customer_id,
        "as_of": sortable_time(as_of) if as_of is not None else None,
        "balance": int(total),
        "movements": moves,
    }


def program_versions(db: Database) -> list[dict[str, Any]]:
    rows = select(
        db, "promotions_programs",
        ["program_version", "definition", "effective_from", "recorded_by", "recorded_at",
         "position"],
        [], [], order="program_version", limit=1000,
    )  # fmt: skip
    for row in rows:
        row["definition"] = orjson.loads(row["definition"])
    return rows


def membership(db: Database, customer_id: str, as_of: datetime | None = None) -> dict[str, Any]:
    """The customer's tier as of a time (now if not given) and the changes up to it, newest
    first; `tier` None when they had none yet."""
    where: list[str] = ["customer_id = ?"]
    params: list[object] = [customer_id]
    if as_of is not None:
        where.append("occurred_at <= ?")
        params.append(sortable_time(as_of))
    changes = select(
        db, "promotions_tier_changes",
        ["position", "from_tier", "tier", "spend", "period_days", "program_version",
         "occurred_at", "actor"],
        where, params, order="occurred_at DESC, position DESC", limit=100,
    )  # fmt: skip
    last = changes[0] if changes else None
    return {
        "customer_id": customer_id,
        "as_of": sortable_time(as_of) if as_of is not None else None,
        "tier": last["tier"] if last else None,
        "since": last["occurred_at"] if last else None,
        "spend": last["spend"] if last else None,
        "program_version": last["program_version"] if last else None,
        "changes": changes,
    }


def members_after(db: Database, after: str, limit: int) -> list[str]:
    """Customers with a tier, by id after `after`: the review sweep walks them in pages."""
    rows = db.query(
        "SELECT customer_id FROM promotions_members WHERE customer_id > ?"
        " ORDER BY customer_id LIMIT ?",
        (after, limit),
    )
    return [str(r[0]) for r in rows]


def tier_counts(db: Database) -> dict[str, int]:
    return {str(t): int(n) for t, n in db.query(
        "SELECT tier, COUNT(*) FROM promotions_members GROUP BY tier"
    )}  # fmt: skip
