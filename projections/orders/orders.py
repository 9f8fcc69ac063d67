"""Orders as the platforms reported them: one row per main order, its lines and refunds.
The receiver stays sealed; amounts are fen."""

from __future__ import annotations

from typing import Any

from domain.orders.aggregates import Order
from infra.db import Database
from infra.events import EventRecord, sortable_time
from projections.base import Counter, Projection, handles, select

# The orders dashboard's additive figures per UTC day an order was placed and where: orders,
# GMV (payable, once paid), refunds and cancellations, each counted on the placing day.
ORDERS_DAILY = Counter(
    "orders_daily",
    ("day", "platform", "province", "city"),
    ("orders", "gmv", "refunds", "cancelled"),
)


class Orders(Projection):
    name = "orders"
    schema_version = 2  # 2: orders_daily (the orders dashboard's rollup)
    tables = ("orders_daily", "orders_refunds", "orders_lines", "orders_orders")
    ddl = (
        "CREATE TABLE IF NOT EXISTS orders_daily (day TEXT NOT NULL, platform TEXT NOT NULL,"
        " province TEXT NOT NULL, city TEXT NOT NULL, orders BIGINT NOT NULL DEFAULT 0,"
        " gmv BIGINT NOT NULL DEFAULT 0, refunds BIGINT NOT NULL DEFAULT 0,"
        " cancelled BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (day, platform, province, city))",
        "CREATE TABLE IF NOT EXISTS orders_orders ("
        " order_id TEXT PRIMARY KEY, platform TEXT NOT NULL, trade_id TEXT NOT NULL,"
        " shop_id TEXT NOT NULL, buyer_kind TEXT NOT NULL, buyer_id TEXT NOT NULL,"
        " unionid TEXT, phone_index TEXT, status TEXT NOT NULL, total BIGINT NOT NULL,"
        " discount BIGINT NOT NULL, freight BIGINT NOT NULL, payable BIGINT NOT NULL,"
        " refunded BIGINT NOT NULL DEFAULT 0, province TEXT NOT NULL, city TEXT NOT NULL,"
        " district TEXT NOT NULL, group_id TEXT, subject TEXT NOT NULL, sealed_receiver TEXT,"
        " placed_at TEXT NOT NULL, paid_at TEXT, shipped_at TEXT, completed_at TEXT,"
        " cancelled_at TEXT, cancel_reason TEXT, carrier TEXT, tracking_no TEXT,"
        " version BIGINT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS orders_orders_buyer ON orders_orders (buyer_id)",
        "CREATE INDEX IF NOT EXISTS orders_orders_placed ON orders_orders (placed_at)",
        "CREATE TABLE IF NOT EXISTS orders_lines ("
        " order_id TEXT NOT NULL, line_id TEXT NOT NULL, sku TEXT NOT NULL, title TEXT NOT NULL,"
        " quantity BIGINT NOT NULL, unit_price BIGINT NOT NULL, paid BIGINT NOT NULL,"
        " discount BIGINT NOT NULL, category TEXT, PRIMARY KEY (order_id, line_id))",
        "CREATE TABLE IF NOT EXISTS orders_refunds ("
        " order_id TEXT NOT NULL, refund_id TEXT NOT NULL, line_id TEXT,"
        " amount BIGINT NOT NULL, full_refund BIGINT NOT NULL, refunded_at TEXT NOT NULL,"
        " PRIMARY KEY (order_id, refund_id))",
    )

    def _count(
        self, row: Any, orders: int = 0, gmv: int = 0, refunds: int = 0, cancelled: int = 0
    ) -> None:
        """`row`: the order's (placed_at, platform, province, city), as stored."""
        placed_at, platform, province, city = row
        self.tallies.add(
            ORDERS_DAILY,
            (str(placed_at)[:10], platform, province, city, orders, gmv, refunds, cancelled),
        )

    @handles(Order, "Placed")
    def _placed(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        a, r, b = d["amounts"], d["region"], d["buyer"]
        self._count(
            (sortable_time(e.occurred_at), d["platform"], r["province"], r["city"]), orders=1
        )
        cur.execute(
            "INSERT INTO orders_orders (order_id, platform, trade_id, shop_id, buyer_kind,"
            " buyer_id, unionid, phone_index, status, total, discount, freight, payable,"
            " province, city, district, group_id, subject, sealed_receiver, placed_at, version,"
            " position) VALUES (?,?,?,?,?,?,?,?,'placed',?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                e.originator_id,
                d["platform"],
                d["trade_id"],
                d["shop_id"],
                b["kind"],
                b["id"],
                b.get("unionid"),
                d["phone_index"],
                a["total"],
                a["discount"],
                a["freight"],
                a["payable"],
                r["province"],
                r["city"],
                r["district"],
                d["group_id"],
                d["subject"],
                d["sealed_receiver"],
                sortable_time(e.occurred_at),
                e.originator_version,
                e.position,
            ),
        )
        cur.executemany(
            "INSERT INTO orders_lines (order_id, line_id, sku, title, quantity, unit_price, paid,"
            " discount, category) VALUES (?,?,?,?,?,?,?,?,?)",
            [
                (
                    e.originator_id,
                    line["line_id"],
                    line["sku"],
                    line["title"],
                    line["quantity"],
                    line["unit_price"],
                    line["paid"],
                    line["discount"],
                    line["category"],
                )
                for line in d["lines"]
            ],
        )

    def _step(
        self,
        e: EventRecord,
        cur: Any,
        status: str,
        column: str,
        *,
        first: bool = False,
        **more: Any,
    ) -> Any:
        """`first`: only if the step is new to the order; answers the order's (placed_at,
        platform, province, city, payable) then, else None."""
        extra = "".join(f", {k} = ?" for k in more)
        cur.execute(
            f"UPDATE orders_orders SET status = ?, {column} = ?, version = ?, position = ?{extra}"
            f" WHERE order_id = ?{f' AND {column} IS NULL' if first else ''}"
            f"{' RETURNING placed_at, platform, province, city, payable' if first else ''}",
            (
                status,
                sortable_time(e.occurred_at),
                e.originator_version,
                e.position,
                *more.values(),
                e.originator_id,
            ),
        )
        return cur.fetchone() if first else None

    @handles(Order, "Paid")
    def _paid(self, e: EventRecord, cur: Any) -> None:
        found = self._step(e, cur, "paid", "paid_at", first=True)
        if found is not None:
            self._count(found[:4], gmv=int(found[4]))

    @handles(Order, "Shipped")
    def _shipped(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._step(
            e, cur, "shipped", "shipped_at", carrier=d["carrier"], tracking_no=d["tracking_no"]
        )

    @handles(Order, "Completed")
    def _completed(self, e: EventRecord, cur: Any) -> None:
        self._step(e, cur, "completed", "completed_at")

    @handles(Order, "Cancelled")
    def _cancelled(self, e: EventRecord, cur: Any) -> None:
        found = self._step(
            e, cur, "cancelled", "cancelled_at", first=True, cancel_reason=e.data["reason"]
        )
        if found is not None:
            self._count(found[:4], cancelled=1)

    @handles(Order, "Refunded")
    def _refunded(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO orders_refunds (order_id, refund_id, line_id, amount, full_refund,"
            " refunded_at) VALUES (?,?,?,?,?,?)",
            (
                e.originator_id,
                d["refund_id"],
                d["line_id"],
                d["amount"],
                1 if d["full"] else 0,
                sortable_time(e.occurred_at),
            ),
        )
        cur.execute(
            "UPDATE orders_orders SET refunded = refunded + ?, version = ?, position = ?"
            " WHERE order_id = ? RETURNING placed_at, platform, province, city",
            (d["amount"], e.originator_version, e.position, e.originator_id),
        )
        found = cur.fetchone()
        if found is not None:
            self._count(found, refunds=int(d["amount"]))


ORDER_COLUMNS = [
    "order_id",
    "platform",
    "trade_id",
    "shop_id",
    "buyer_kind",
    "buyer_id",
    "unionid",
    "status",
    "total",
    "discount",
    "freight",
    "payable",
    "refunded",
    "province",
    "city",
    "district",
    "group_id",
    "subject",
    "sealed_receiver",
    "placed_at",
    "paid_at",
    "shipped_at",
    "completed_at",
    "cancelled_at",
    "cancel_reason",
    "carrier",
    "tracking_no",
    "version",
    "position",
]
_INTS = ("total", "discount", "freight", "payable", "refunded", "version", "position")


def list_orders(
    db: Database,
    *,
    platform: str | None = None,
    buyer_id: str | None = None,
    status: str | None = None,
    after: int = 0,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Orders by the position of their latest change, keyset-paged by `after`."""
    where = ["position > ?"]
    params: list[object] = [after]
    for column, value in (("platform", platform), ("buyer_id", buyer_id), ("status", status)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    out = select(db, "orders_orders", ORDER_COLUMNS, where, params, order="position", limit=limit)
    for item in out:
        for key in _INTS:
            item[key] = int(item[key])
    return out


def get_order(db: Database, order_id: str) -> dict[str, Any] | None:
    found = select(
        db, "orders_orders", ORDER_COLUMNS, ["order_id = ?"], [order_id], order="order_id", limit=1
    )
    if not found:
        return None
    order = found[0]
    for key in _INTS:
        order[key] = int(order[key])
    line_columns = [
        "line_id",
        "sku",
        "title",
        "quantity",
        "unit_price",
        "paid",
        "discount",
        "category",
    ]
    order["lines"] = select(
        db, "orders_lines", line_columns, ["order_id = ?"], [order_id], order="line_id", limit=1000
    )
    for line in order["lines"]:
        for key in ("quantity", "unit_price", "paid", "discount"):
            line[key] = int(line[key])
    refund_columns = ["refund_id", "line_id", "amount", "full_refund", "refunded_at"]
    order["refunds"] = select(
        db,
        "orders_refunds",
        refund_columns,
        ["order_id = ?"],
        [order_id],
        order="refunded_at, refund_id",
        limit=1000,
    )
    for refund in order["refunds"]:
        refund["amount"] = int(refund["amount"])
        refund["full"] = bool(int(refund.pop("full_refund")))
    return order


def recent_orders(
    db: Database, buyers: list[tuple[str, str]], recent: int = 10
) -> list[dict[str, Any]]:
    """The latest few orders of these platform buyers (a customer's linked identities)."""
    if not buyers:
        return []
    match = " OR ".join(["(buyer_kind = ? AND buyer_id = ?)"] * len(buyers))
    latest = select(
        db,
        "orders_orders",
        ["order_id", "platform", "trade_id", "status", "payable", "refunded", "placed_at"],
        [f"({match})"],
        [v for pair in buyers for v in pair],
        order="placed_at DESC, order_id",
        limit=recent,
    )
    for item in latest:
        item["payable"], item["refunded"] = int(item["payable"]), int(item["refunded"])
    return latest


def identity_match_rates(db: Database) -> list[dict[str, Any]]:
    """Per platform: distinct buyers seen in orders, how many are linked to a customer."""
    rows = db.query(
        "SELECT o.platform, COUNT(DISTINCT o.buyer_id),"
        " COUNT(DISTINCT CASE WHEN i.customer_id IS NOT NULL THEN o.buyer_id END)"
        " FROM orders_orders o LEFT JOIN portrait_identities i"
        " ON i.kind = o.buyer_kind AND i.value = o.buyer_id GROUP BY o.platform ORDER BY o.platform"
    )
    return [
        {
            "platform": platform,
            "buyers": int(buyers),
            "linked": int(linked),
            "pending": int(buyers) - int(linked),
            "match_rate": round(int(linked) / int(buyers), 4) if buyers else 0.0,
        }
        for platform, buyers, linked in rows
    ]


def pending_buyers(
    db: Database,
    *,
    unionids: list[str] | None = None,
    phone_keys: list[str] | None = None,
    limit: int = 10_000,
) -> list[tuple[str, str, str | None, str | None]]:
    """Buyers seen in orders but linked to no customer yet, that carry something to match on
    (a unionid, a phone's keyed hash) — all of them, or those with the given values."""
    where = [
        "NOT EXISTS (SELECT 1 FROM portrait_identities i"
        " WHERE i.kind = o.buyer_kind AND i.value = o.buyer_id)",
        "(o.unionid IS NOT NULL OR o.phone_index IS NOT NULL)",
    ]
    params: list[object] = []
    wanted = []
    if unionids:
        wanted.append(f"o.unionid IN ({','.join('?' * len(unionids))})")
        params += unionids
    if phone_keys:
        wanted.append(f"o.phone_index IN ({','.join('?' * len(phone_keys))})")
        params += phone_keys
    if unionids is not None or phone_keys is not None:
        if not wanted:
            return []
        where.append("(" + " OR ".join(wanted) + ")")
    rows = db.query(
        "SELECT DISTINCT o.platform, o.buyer_id, o.unionid, o.phone_index FROM orders_orders o"
        f" WHERE {' AND '.join(where)} ORDER BY o.platform, o.buyer_id LIMIT ?",
        (*params, limit),
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]
