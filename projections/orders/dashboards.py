"""The orders dashboard: orders, GMV, refunds and buyers per platform, region, channel code or
UTC day, over the orders read model (and the portrait's identities for attribution). Queries
only, plain GROUP BY SQL for SQLite and PostgreSQL alike; amounts are fen."""

from __future__ import annotations

from typing import Any, Literal

from domain.orders.model import PLATFORMS
from infra.db import Database
from projections.windows import by_days, day_range, time_range

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


def _metrics(
    orders: int, gmv: int, refunds: int, cancelled: int, buyers: int | None = None
) -> dict[str, Any]:
    return {
        "orders": orders,
        "gmv": gmv,
        "refunds": refunds,
        "net": gmv - refunds,
        "cancelled": cancelled,
        "buyers": buyers,
    }


_Plat = tuple[list[str], list[object]]


def orders_dashboard(
    db: Database,
    by: OrdersBy,
    *,
    level: Literal["province", "city"] = "province",
    since: str | None = None,
    until: str | None = None,
    platform: str | None = None,
    buyers: bool = False,
) -> dict[str, Any]:
    """Rows per `by` and totals over the orders placed in [since, until) (sortable UTC times).

    Per row: orders, gmv (payable of the orders that were paid), refunds (refunded so far),
    net (gmv - refunds), cancelled. By platform, region or day the whole UTC days of the window
    come from the daily rollup (`orders_daily`), its partial days from the orders themselves
    (projections/windows.py). `channel_code` is the source channel code of the customer the
    buyer is linked to, as linked now: counted over the orders (orders of unlinked buyers, and
    of customers who came without a code, share the row whose channel_code is null).

    `buyers` adds what no sum of days can say, at the cost of reading the window's orders:
    per row the distinct platform buyers, and in the totals `repurchase_rate`: among the
    paying buyers of the window, the customer they are linked to counting once across
    platforms and buyer ids (an unlinked buyer counts as themselves), the share with two or
    more paid orders (null when nobody paid). Without it those are null."""
    exprs, names, channel = _GROUPS[level if by == "region" else by]
    plat: _Plat = (["o.platform = ?"], [platform]) if platform is not None else ([], [])
    if channel:
        rows = _counted(db, exprs, channel, [(since, until)], plat)
    else:
        rows = _rolled(db, exprs, by, since, until, plat)
    if buyers:
        distinct = _counted(db, exprs, channel, [(since, until)], plat, distinct=True)
        for key, row in rows.items():
            row["buyers"] = distinct.get(key, {}).get("buyers", 0)
    out = []
    for key, row in rows.items():
        item: dict[str, Any] = dict(zip(names, key, strict=True))
        item.update(
            _metrics(
                row["orders"],
                row["gmv"],
                row["refunds"],
                row["cancelled"],
                row["buyers"] if buyers else None,
            )
        )
        out.append(item)
    if by == "day":
        out.sort(key=lambda r: r["day"])
    else:
        # Largest GMV first; ties by orders, then by key (the null row last).
        out.sort(key=lambda r: tuple((r[n] is None, r[n] or "") for n in names))
        out.sort(key=lambda r: (-r["gmv"], -r["orders"]))

    totals: dict[str, Any] = _metrics(
        **{k: sum(r[k] for r in rows.values()) for k in ("orders", "gmv", "refunds", "cancelled")}
    )
    totals["buyers"] = None
    totals["paying_customers"] = totals["repeat_customers"] = totals["repurchase_rate"] = None
    if buyers:
        where, params = _window(since, until, plat)
        (total,) = db.query(
            f"SELECT COUNT(DISTINCT o.buyer_kind || ':' || o.buyer_id) FROM orders_orders o{where}",
            params,
        )
        totals["buyers"] = int(total[0] or 0)
        unit = "COALESCE(i.customer_id, o.buyer_kind || ':' || o.buyer_id)"
        paid = f"{where} AND o.paid_at IS NOT NULL" if where else " WHERE o.paid_at IS NOT NULL"
        (repeat,) = db.query(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN n >= 2 THEN 1 ELSE 0 END), 0) FROM"
            f" (SELECT {unit} AS unit, COUNT(*) AS n FROM orders_orders o {_LINKS}{paid}"
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


_ROLLED = {"o.platform": "platform", "o.province": "province", "o.city": "city",
           "SUBSTR(o.placed_at, 1, 10)": "day"}  # fmt: skip


def _window(since: str | None, until: str | None, plat: _Plat) -> tuple[str, list[object]]:
    where, params = time_range("o.placed_at", since, until)
    where, params = [*where, *plat[0]], [*params, *plat[1]]
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


def _counted(
    db: Database,
    exprs: list[str],
    channel: bool,
    windows: list[tuple[str | None, str | None]],
    plat: _Plat,
    *,
    distinct: bool = False,
) -> dict[tuple[Any, ...], dict[str, int]]:
    """The figures per group over every order placed in the windows."""
    group = ", ".join(exprs)
    joins = f" {_LINKS}{_CHANNEL}" if channel else ""
    metrics = (
        "COUNT(DISTINCT o.buyer_kind || ':' || o.buyer_id)"
        if distinct
        else "COUNT(*), COALESCE(SUM(CASE WHEN o.paid_at IS NOT NULL THEN o.payable ELSE 0 END),"
        " 0), COALESCE(SUM(o.refunded), 0), SUM(CASE WHEN o.status = 'cancelled' THEN 1 ELSE 0"
        " END)"
    )
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for lo, hi in windows:
        where, params = _window(lo, hi, plat)
        for row in db.query(
            f"SELECT {group}, {metrics} FROM orders_orders o{joins}{where} GROUP BY {group}",
            [*(_LINK_PARAMS if channel else []), *params],
        ):
            key, figures = tuple(row[: len(exprs)]), row[len(exprs) :]
            found = out.setdefault(
                key, {"orders": 0, "gmv": 0, "refunds": 0, "cancelled": 0, "buyers": 0}
            )
            names = ("buyers",) if distinct else ("orders", "gmv", "refunds", "cancelled")
            for name, value in zip(names, figures, strict=True):
                found[name] += int(value or 0)
    return out


def _rolled(
    db: Database, exprs: list[str], by: str, since: str | None, until: str | None, plat: _Plat
) -> dict[tuple[Any, ...], dict[str, int]]:
    """Whole days from orders_daily, partial days from the orders (windows.py)."""
    split = by_days(since, until)
    out = _counted(db, exprs, False, list(split.edges), plat)
    if split.days is None:
        return out
    columns = [_ROLLED[e] for e in exprs]
    where, params = day_range("day", split.days)
    if plat[0]:
        where, params = [*where, "platform = ?"], [*params, *plat[1]]
    group = ", ".join(columns)
    for row in db.query(
        f"SELECT {group}, SUM(orders), SUM(gmv), SUM(refunds), SUM(cancelled) FROM orders_daily"
        f"{' WHERE ' + ' AND '.join(where) if where else ''} GROUP BY {group}",
        params,
    ):
        key = tuple(row[: len(columns)])
        found = out.setdefault(
            key, {"orders": 0, "gmv": 0, "refunds": 0, "cancelled": 0, "buyers": 0}
        )
        for name, value in zip(("orders", "gmv", "refunds", "cancelled"), row[len(columns) :],
                               strict=True):  # fmt: skip
            found[name] += int(value or 0)
    return out
