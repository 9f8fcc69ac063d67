"""The dashboards' queries over the rollups (projections/dashboards/rollups.py): each reads at
most a window's rows of one small table. Days are `YYYY-MM-DD`, months `YYYY-MM`, both UTC;
`since` is inclusive, `until` exclusive. Amounts are fen."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from domain.shared import InvalidInput
from infra.db import Database

MAX_DAYS = 366


def days(since: date | None, until: date | None, default: int = 30) -> tuple[str, str]:
    """A window of UTC days, at most a year and a day: [from, to), by default the last
    `default` days up to and including today."""
    end = until or datetime.now(UTC).date() + timedelta(days=1)
    start = since or end - timedelta(days=default)
    if start >= end:
        raise InvalidInput("from must be before to", field="from")
    if (end - start).days > MAX_DAYS:
        raise InvalidInput(f"a window is at most {MAX_DAYS} days", field="from")
    return start.isoformat(), end.isoformat()


def months(since: date | None, until: date | None) -> tuple[str, str]:
    """The whole months touching [from, to), by default the last twelve."""
    first, last = days(since, until, default=365)
    final = date.fromisoformat(last) - timedelta(days=1)  # the window's last day
    after = date(final.year + final.month // 12, final.month % 12 + 1, 1)
    return first[:7], after.isoformat()[:7]


FunnelBy = Literal["code", "staff", "day"]
_FUNNEL: dict[str, tuple[str, str, str]] = {  # by -> (table, grouping column, its name)
    "code": ("dashboards_codes_daily", "code", "code_id"),
    "staff": ("dashboards_staff_daily", "staff", "staff_id"),
    "day": ("dashboards_codes_daily", "day", "day"),
}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _funnel_row(
    key: tuple[str, str] | None, scans: int, adds: int, first: int, gmv: int
) -> dict[str, Any]:
    return {
        **(dict([key]) if key else {}),
        "scans": scans,
        "adds": adds,
        "first_orders": first,
        "gmv": gmv,
        "add_rate": _rate(adds, scans),
        "conversion_rate": _rate(first, adds),
        "gmv_per_add": gmv // adds if adds else None,
    }


def funnel(db: Database, by: FunnelBy, since: str, until: str, limit: int) -> dict[str, Any]:
    """Scans → adds → first orders → GMV per channel code, member of staff or day, with the
    rates between the steps; codes carry their names. Largest GMV first (days in order)."""
    table, column, named = _FUNNEL[by]
    order = "day" if by == "day" else "SUM(gmv) DESC, " + column
    rows = db.query(
        f"SELECT {column}, SUM(scans), SUM(adds), SUM(first_orders), SUM(gmv) FROM {table}"
        f" WHERE day >= ? AND day < ? GROUP BY {column} ORDER BY {order} LIMIT ?",
        (since, until, limit),
    )
    items = [_funnel_row((named, str(r[0])), *(int(v) for v in r[1:])) for r in rows]
    if by == "code" and items:
        names = dict(
            db.query(
                "SELECT code_id, name FROM channel_stats_codes WHERE code_id IN"
                f" ({','.join('?' * len(items))})",
                [i["code_id"] for i in items],
            )
        )
        for item in items:
            item["name"] = names.get(item["code_id"])
    total = db.query(
        "SELECT COALESCE(SUM(scans), 0), COALESCE(SUM(adds), 0), COALESCE(SUM(first_orders), 0),"
        " COALESCE(SUM(gmv), 0) FROM dashboards_codes_daily WHERE day >= ? AND day < ?",
        (since, until),
    )[0]
    return {"items": items, "totals": _funnel_row(None, *(int(v) for v in total))}


def regions(
    db: Database, level: Literal["province", "city"], since: str, until: str, limit: int
) -> list[dict[str, Any]]:
    """Regional heat per province (or city): new buyers, paid orders, GMV net of refunds,
    refunds and tickets opened in the months [since, until). Largest GMV first."""
    keys = "province" if level == "province" else "province, city"
    rows = db.query(
        f"SELECT {keys}, SUM(new_customers), SUM(orders), SUM(gmv), SUM(refunded), SUM(tickets)"
        f" FROM dashboards_regions_monthly WHERE month >= ? AND month < ? GROUP BY {keys}"
        f" ORDER BY SUM(gmv) DESC, {keys} LIMIT ?",
        (since, until, limit),
    )
    width = 1 if level == "province" else 2
    out = []
    for row in rows:
        place = {"province": row[0], **({"city": row[1]} if width == 2 else {})}
        new, orders, gmv, refunded, tickets = (int(v) for v in row[width:])
        out.append(
            {**place, "new_customers": new, "orders": orders, "gmv": gmv, "refunded": refunded,
             "tickets": tickets}
        )  # fmt: skip
    return out


StaffOrder = Literal["adds", "conversions", "gmv", "response"]
_STAFF_ORDER = {
    "adds": "SUM(adds) DESC",
    "conversions": "SUM(first_orders) DESC",
    "gmv": "SUM(gmv) DESC",
    # quickest answer first; those who answered nobody last
    "response": "CASE WHEN SUM(replies) = 0 THEN 1 ELSE 0 END,"
    " SUM(reply_seconds) * 1.0 / NULLIF(SUM(replies), 0)",
}


def staff_ranking(
    db: Database, since: str, until: str, order_by: StaffOrder, limit: int
) -> list[dict[str, Any]]:
    """Staff ranked by adds, conversions (first orders of the customers they brought), GMV or
    their average wait before answering a customer, with their names and departments."""
    rows = db.query(
        "SELECT d.staff, SUM(d.scans), SUM(d.adds), SUM(d.first_orders), SUM(d.gmv),"
        " SUM(d.replies), SUM(d.reply_seconds), s.name, s.department"
        " FROM dashboards_staff_daily d LEFT JOIN staff_members s ON s.staff_id = d.staff"
        " WHERE d.day >= ? AND d.day < ? GROUP BY d.staff, s.name, s.department"
        f" ORDER BY {_STAFF_ORDER[order_by]}, d.staff LIMIT ?",
        (since, until, limit),
    )
    out = []
    for rank, row in enumerate(rows, start=1):
        staff, scans, adds, first, gmv, replies, waited = row[:7]
        out.append(
            {"rank": rank, "staff_id": staff, "name": row[7], "department": row[8],
             "scans": int(scans), "adds": int(adds), "conversions": int(first),
             "conversion_rate": _rate(int(first), int(adds)), "gmv": int(gmv),
             "replies": int(replies),
             "average_response_seconds": round(int(waited) / int(replies)) if replies else None}
        )  # fmt: skip
    return out


def promotions(
    db: Database, by: Literal["region", "month"], since: str, until: str, limit: int
) -> list[dict[str, Any]]:
    """What promotions cost per province of the customer (or per month): coupons redeemed
    and their discounts, points earned and spent."""
    key = "province" if by == "region" else "month"
    rows = db.query(
        f"SELECT {key}, SUM(coupons_redeemed), SUM(discount), SUM(points_earned),"
        " SUM(points_spent) FROM dashboards_promotions_monthly WHERE month >= ? AND month < ?"
        f" GROUP BY {key} ORDER BY {'SUM(discount) DESC, ' if by == 'region' else ''}{key}"
        " LIMIT ?",
        (since, until, limit),
    )
    return [
        {by: r[0], "coupons_redeemed": int(r[1]), "discount": int(r[2]),
         "points_earned": int(r[3]), "points_spent": int(r[4])}
        for r in rows
    ]  # fmt: skip


def coupons(
    db: Database, by: Literal["issuer", "month"], since: str, until: str
) -> list[dict[str, Any]]:
    """Coupons issued, redeemed, revoked and expired per issuer (campaign, rule, staff,
    points) or month, with the redemption rate and the discounts given."""
    key = "issued_by" if by == "issuer" else "month"
    rows = db.query(
        f"SELECT {key}, SUM(issued), SUM(redeemed), SUM(revoked), SUM(expired), SUM(discount)"
        f" FROM dashboards_coupons_monthly WHERE month >= ? AND month < ? GROUP BY {key}"
        f" ORDER BY {key}",
        (since, until),
    )
    return [
        {by: r[0], "issued": int(r[1]), "redeemed": int(r[2]), "revoked": int(r[3]),
         "expired": int(r[4]), "discount": int(r[5]),
         "redemption_rate": _rate(int(r[2]), int(r[1]))}
        for r in rows
    ]  # fmt: skip
