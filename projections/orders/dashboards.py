"""The orders dashboard: orders, GMV, refunds and buyers per platform, region, channel code or
UTC day, over the orders read model (and the portrait's identities for attribution). Queries
only, plain GROUP BY SQL for SQLite and PostgreSQL alike; amounts are fen."""

from __future__ import annotations

from typing import Any, Literal

from domain.orders.model import PLATFORMS
from infra.db import Database

OrdersBy = Literal["platform", "region", "channel_code", "day"]

# One customer per platform buyer: the customer the buyer identity is linked to (at most one by
# the domain's rule; MIN keeps a join from ever counting an order twice).
_LINKS = (
    "LEFT JOIN (SELECT kind, value, MIN(customer_id) AS customer_id FROM portrait_identities"
    f" WHERE kind IN ({', '.join('?' * len(PLATFORMS))}) GROUP BY kind, value) i"
    " ON i.kind = o.buyer_kind AND i.value = o.buyer_id"
)
_LINK_PARAMS: list[object] = [f"{p}_buyer" for p in PLATFORMS]
_CHANNEL = " LEFT JOIN portrait_customers c ON c.customer_id = i.customer_id"

_METRICS = (
    "COUNT(*),"
    " COALESCE(SUM(CASE WHEN o.paid_at IS NOT NULL THEN o.payable ELSE 0 END), 0),"
    " COALESCE(SUM(o.refunded), 0),"
    " SUM(CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0 END),"
    " COUNT(DISTINCT o.buyer_kind || ':' || o.buyer_id)"
)

# by -> (grouping expressions, their names in a row, needs the channel join)
_GROUPS: dict[str, tuple[list[str], list[str], bool]] = {
    "platform": (["o.platform"], ["platform"], False),
    "province": (["o.province"], ["province"], False),
    "city": (["o.province", "o.city"], ["province", "city"], False),
    "channel_code": (["c.source_channel_code"], ["channel_code"], True),
    "day": (["SUBSTR(o.placed_at, 1, 10)"], ["day"], False),
}


def _metrics(orders: Any, gmv: Any, refunds: Any, cancelled: Any, buyers: Any) -> dict[str, int]:
    gmv, refunds = int(gmv or 0), int(refunds or 0)
    return {
        "orders": int(orders or 0),
        "gmv": gmv,
        "refunds": refunds,
        "net": gmv - refunds,
        "cancelled": int(cancelled or 0),
        "buyers": int(buyers or 0),
    }


def orders_dashboard(
    db: Database,
    by: OrdersBy,
    *,
    level: Literal["province", "city"] = "province",
    since: str | None = None,
    until: str | None = None,
    platform: str | None = None,
) -> dict[str, Any]:
    """Rows per `by` and totals over the orders placed in [since, until) (sortable UTC times).

    Per row: orders, gmv (payable of the orders that were paid), refunds (refunded so far),
    net (gmv - refunds), cancelled, buyers (distinct platform buyers). `channel_code` is the
    source channel code of the customer the buyer is linked to; orders of unlinked buyers (and
    of customers who came without a code) share the row whose channel_code is null. The totals
    add `repurchase_rate`: among the paying buyers of the window, the customer they are linked
    to counting once across platforms and buyer ids (an unlinked buyer counts as themselves),
    the share with two or more paid orders (null when nobody paid)."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append("o.placed_at >= ?")
        params.append(since)
    if until is not None:
        where.append("o.placed_at < ?")
        params.append(until)
    if platform is not None:
        where.append("o.platform = ?")
        params.append(platform)
    cond = f" WHERE {' AND '.join(where)}" if where else ""

    exprs, names, channel = _GROUPS[level if by == "region" else by]
    joins = f" {_LINKS}{_CHANNEL}" if channel else ""
    join_params = list(_LINK_PARAMS) if channel else []
    group = ", ".join(exprs)
    rows = db.query(
        f"SELECT {group}, {_METRICS} FROM orders_orders o{joins}{cond} GROUP BY {group}",
        [*join_params, *params],
    )
    out = []
    for row in rows:
        item: dict[str, Any] = dict(zip(names, row[: len(names)], strict=True))
        item.update(_metrics(*row[len(names) :]))
        out.append(item)
    if by == "day":
        out.sort(key=lambda r: r["day"])
    else:
        # Largest GMV first; ties by orders, then by key (the null row last).
        out.sort(key=lambda r: tuple((r[n] is None, r[n] or "") for n in names))
        out.sort(key=lambda r: (-r["gmv"], -r["orders"]))

    (total,) = db.query(f"SELECT {_METRICS} FROM orders_orders o{cond}", params)
    totals: dict[str, Any] = _metrics(*total)

    unit = "COALESCE(i.customer_id, o.buyer_kind || ':' || o.buyer_id)"
    paid_cond = f"{cond} AND o.paid_at IS NOT NULL" if cond else " WHERE o.paid_at IS NOT NULL"
    (repeat,) = db.query(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) FROM"
        f" (SELECT {unit} AS unit, COUNT(*) AS n FROM orders_orders o {_LINKS}{paid_cond}"
        f" GROUP BY {unit}) t",
        [*_LINK_PARAMS, *params],
    )
    paying, repeating = int(repeat[0] or 0), int(repeat[1] or 0)
    totals["paying_customers"] = paying
    totals["repeat_customers"] = repeating
    totals["repurchase_rate"] = round(repeating / paying, 4) if paying else None
    shape: dict[str, Any] = {"by": by}
    if by == "region":
        shape["level"] = level
    return {**shape, "rows": out, "totals": totals}
