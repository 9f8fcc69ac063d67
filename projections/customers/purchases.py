"""What a customer bought, across every platform buyer linked to them: lifetime value, first
and last order, RFM scores, favourite categories. Segments' rules read the same profile.

The one table of its own holds the RFM model's versions. The profile itself is computed when
asked, from the orders read model and the portrait's identities: a buyer linked (or merged)
later brings its whole history at once, and "days since" is always counted to the moment of
the question, never frozen at the time an event was projected.

Orders: every order placed (`placed_count`, first and last order). Purchases: orders paid,
not cancelled and not refunded in full (`order_count`, the F and R of RFM, categories).
Lifetime value is paid minus refunded, in fen.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from domain.customers.aggregates import BUYER_KINDS
from domain.customers.rfm import DEFAULT_BANDS, RfmBands, RfmModel
from infra.db import Database
from infra.events import EventRecord, dumps, sortable_time
from projections.base import Projection, handles

FAVOURITES = 3  # categories shown on the portrait
_CHUNK = 500  # customer ids per IN (...) list


class Purchases(Projection):
    name = "purchases"
    tables = ("purchases_rfm_models",)
    ddl = (
        "CREATE TABLE IF NOT EXISTS purchases_rfm_models ("
        " model_version BIGINT PRIMARY KEY, bands TEXT NOT NULL, effective_from TEXT NOT NULL,"
        " recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL, position BIGINT NOT NULL)",
    )

    @handles(RfmModel, "Published", "Revised")
    def _model(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO purchases_rfm_models (model_version, bands, effective_from, recorded_by,"
            " recorded_at, position) VALUES (?,?,?,?,?,?)",
            (
                d.get("model_version", 1),
                dumps(d["bands"]).decode(),
                sortable_time(d["effective_from"]),
                e.actor,
                e.occurred_at,
                e.position,
            ),
        )


def rfm_versions(db: Database) -> list[dict[str, Any]]:
    rows = db.query(
        "SELECT model_version, bands, effective_from, recorded_by, recorded_at, position"
        " FROM purchases_rfm_models ORDER BY model_version"
    )
    return [
        {
            "model_version": int(r[0]),
            "bands": orjson.loads(r[1]),
            "effective_from": r[2],
            "recorded_by": r[3],
            "recorded_at": r[4],
            "position": int(r[5]),
        }
        for r in rows
    ]


def rfm_model_in_force(db: Database, now: datetime) -> tuple[int, RfmBands]:
    """(version, bands) of the latest version whose effective time has come; (0, defaults)
    before any."""
    at = sortable_time(now)
    found = [v for v in rfm_versions(db) if v["effective_from"] <= at]
    if not found:
        return 0, DEFAULT_BANDS
    latest = max(found, key=lambda v: (v["effective_from"], v["model_version"]))
    return latest["model_version"], RfmBands.parse(latest["bands"])


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _days(now: datetime, then: datetime | None) -> int | None:
    return None if then is None else max(int((now - then).total_seconds() // 86_400), 0)


def _chunks(ids: list[str] | None) -> Iterator[tuple[str, list[str]]]:
    """SQL for "these customers" (or all) and its parameters, in bounded pieces."""
    if ids is None:
        yield "", []
        return
    for start in range(0, len(ids), _CHUNK):
        part = ids[start : start + _CHUNK]
        yield f" AND c.customer_id IN ({','.join('?' * len(part))})", part


_KINDS = f"i.kind IN ({','.join('?' * len(BUYER_KINDS))})"
_BUYER_ORDERS = (
    "FROM portrait_customers c"
    " JOIN portrait_identities i ON i.customer_id = c.customer_id AND "
    + _KINDS
    + " JOIN orders_orders o ON o.buyer_kind = i.kind AND o.buyer_id = i.value"
)
_COUNTS = "o.paid_at IS NOT NULL AND o.status <> 'cancelled' AND o.refunded < o.payable"


# What an order is worth to its buyer now: paid and not refunded, nothing once cancelled.
_WORTH = "CASE WHEN o.status = 'cancelled' THEN 0 ELSE o.payable - o.refunded END"


def buyer_customer(db: Database, kind: str, buyer_id: str) -> str | None:
    """The active customer a platform buyer is linked to, if any."""
    rows = db.query(
        "SELECT c.customer_id FROM portrait_identities i JOIN portrait_customers c"
        " ON c.customer_id = i.customer_id WHERE i.kind = ? AND i.value = ?"
        " AND c.status = 'active' ORDER BY c.customer_id LIMIT 1",
        (kind, buyer_id),
    )
    return str(rows[0][0]) if rows else None


def order_worth(db: Database, order_id: str) -> tuple[str, str, int, str | None] | None:
    """(buyer kind, buyer id, worth in fen, completed at) of an order."""
    rows = db.query(
        f"SELECT o.buyer_kind, o.buyer_id, {_WORTH}, o.completed_at FROM orders_orders o"
        " WHERE o.order_id = ?",
        (order_id,),
    )
    if not rows:
        return None
    kind, buyer, worth, completed = rows[0]
    return str(kind), str(buyer), max(int(worth), 0), completed


def completed_orders(db: Database, kind: str, buyer_id: str) -> list[tuple[str, int]]:
    """(order id, worth) of a buyer's completed orders, oldest first."""
    return [
        (str(oid), max(int(worth), 0))
        for oid, worth in db.query(
            f"SELECT o.order_id, {_WORTH} FROM orders_orders o WHERE o.buyer_kind = ?"
            " AND o.buyer_id = ? AND o.completed_at IS NOT NULL ORDER BY o.completed_at",
            (kind, buyer_id),
        )
    ]


def completed_spend(
    db: Database, customer_ids: list[str] | None, since: datetime, until: datetime
) -> dict[str, int]:
    """What active customers spent on orders completed in (since, until], across every
    buyer linked to them, by customer id (those who spent nothing are left out)."""
    kinds = list(BUYER_KINDS)
    out: dict[str, int] = {}
    for where, params in _chunks(customer_ids):
        for cid, spend in db.query(
            f"SELECT c.customer_id, SUM({_WORTH}) {_BUYER_ORDERS} WHERE c.status = 'active'"
            f"{where} AND o.completed_at > ? AND o.completed_at <= ? GROUP BY c.customer_id",
            [*kinds, *params, sortable_time(since), sortable_time(until)],
        ):
            if spend:
                out[str(cid)] = int(spend)
    return out


def purchase_profiles(
    db: Database, customer_ids: list[str] | None, now: datetime
) -> dict[str, dict[str, Any]]:
    """Active customers' purchase profiles and the portrait fields rules read, by customer id
    (all active customers when `customer_ids` is None)."""
    version, bands = rfm_model_in_force(db, now)
    kinds = list(BUYER_KINDS)
    out: dict[str, dict[str, Any]] = {}
    for where, params in _chunks(customer_ids):
        for cid, owner, code, added_at, last_activity in db.query(
            "SELECT c.customer_id, c.owner, c.source_channel_code, c.added_at,"
            f" c.last_activity_at FROM portrait_customers c WHERE c.status = 'active'{where}",
            params,
        ):
            out[cid] = {
                "customer_id": cid,
                "owner": owner,
                "source_channel_code": code,
                "added_at": added_at,
                "last_activity_at": last_activity,
                "days_silent": _days(now, _when(last_activity)),
                "tags": [],
                "order_count": 0,
                "placed_count": 0,
                "refund_count": 0,
                "lifetime_value": 0,
                "refunded": 0,
                "first_order_at": None,
                "last_order_at": None,
                "last_purchase_at": None,
                "days_since_last_order": None,
                "rfm": None,
                "categories": [],
                "favourite_categories": [],
                "platforms": [],
                "province": None,
                "city": None,
            }
        for cid, tag in db.query(
            "SELECT c.customer_id, t.tag FROM portrait_customers c JOIN portrait_tags t"
            f" ON t.customer_id = c.customer_id WHERE c.status = 'active'{where} ORDER BY t.tag",
            params,
        ):
            if cid in out:
                out[cid]["tags"].append(tag)
        active = f" WHERE c.status = 'active'{where}"
        for row in db.query(
            "SELECT c.customer_id,"
            f" SUM(CASE WHEN {_COUNTS} THEN 1 ELSE 0 END),"
            " COUNT(*), SUM(CASE WHEN o.refunded > 0 THEN 1 ELSE 0 END),"
            " COALESCE(SUM(CASE WHEN o.paid_at IS NOT NULL THEN o.payable ELSE 0 END), 0),"
            " COALESCE(SUM(o.refunded), 0),"
            " MIN(o.placed_at), MAX(o.placed_at),"
            f" MAX(CASE WHEN {_COUNTS} THEN o.placed_at END)"
            f" {_BUYER_ORDERS}{active} GROUP BY c.customer_id",
            [*kinds, *params],
        ):
            cid, counted, placed, refunds, paid, refunded, first, last, bought = row
            p = out.get(cid)
            if p is None:
                continue
            ltv = int(paid or 0) - int(refunded or 0)
            p.update(
                order_count=int(counted or 0),
                placed_count=int(placed or 0),
                refund_count=int(refunds or 0),
                lifetime_value=ltv,
                refunded=int(refunded or 0),
                first_order_at=first,
                last_order_at=last,
                last_purchase_at=bought,
                days_since_last_order=_days(now, _when(last)),
            )
            if counted:  # recency counts from the last order that stayed bought
                p["rfm"] = {
                    **bands.score(_days(now, _when(bought)) or 0, int(counted), ltv),
                    "model_version": version,
                }
        for cid, category, orders, amount, last in db.query(
            "SELECT c.customer_id, l.category, COUNT(DISTINCT o.order_id),"
            " SUM(l.paid - COALESCE(r.amount, 0)), MAX(o.placed_at)"
            f" {_BUYER_ORDERS} JOIN orders_lines l ON l.order_id = o.order_id"
            " LEFT JOIN (SELECT order_id, line_id, SUM(amount) AS amount FROM orders_refunds"
            " WHERE line_id IS NOT NULL GROUP BY order_id, line_id) r"
            " ON r.order_id = l.order_id AND r.line_id = l.line_id"
            f"{active} AND {_COUNTS} AND l.category IS NOT NULL"
            " GROUP BY c.customer_id, l.category",
            [*kinds, *params],
        ):
            # A line refunded in full was not, in the end, bought.
            if cid in out and int(amount or 0) > 0:
                out[cid]["categories"].append(
                    {
                        "category": category,
                        "orders": int(orders),
                        "amount": int(amount),
                        "last_bought_at": last,
                    }
                )
        latest: dict[str, str] = {}
        for cid, platform, province, city, placed in db.query(
            "SELECT c.customer_id, o.platform, o.province, o.city, MAX(o.placed_at)"
            f" {_BUYER_ORDERS}{active} GROUP BY c.customer_id, o.platform, o.province, o.city",
            [*kinds, *params],
        ):
            p = out.get(cid)
            if p is None:
                continue
            if platform not in p["platforms"]:
                p["platforms"].append(platform)
            if placed > latest.get(cid, ""):  # the region of the latest order
                latest[cid] = placed
                p["province"], p["city"] = province, city
    for p in out.values():
        p["platforms"].sort()
        p["categories"].sort(key=lambda c: (-c["orders"], -c["amount"], c["category"]))
        p["favourite_categories"] = [c["category"] for c in p["categories"][:FAVOURITES]]
    return out


def purchase_summary(profile: dict[str, Any], recent: list[dict[str, Any]]) -> dict[str, Any]:
    """The portrait's purchase sections, from one profile and the customer's latest orders."""
    return {
        "orders": {
            "count": profile["placed_count"],
            "purchases": profile["order_count"],
            "lifetime_value": profile["lifetime_value"],
            "refunded": profile["refunded"],
            "refunds": profile["refund_count"],
            "first_order_at": profile["first_order_at"],
            "last_order_at": profile["last_order_at"],
            "last_purchase_at": profile["last_purchase_at"],
            "platforms": profile["platforms"],
            "recent": recent,
        },
        "rfm": profile["rfm"],
        "favourite_categories": profile["favourite_categories"],
        "categories": profile["categories"],
    }
