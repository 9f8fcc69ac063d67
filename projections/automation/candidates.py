"""The sweeps' questions to the read models, set-based and paged by customer id: who has been
silent N days, whose last purchase was N days ago, who is in a schedule's audience, and a
channel funnel's drop-off. No table of its own: it reads the portrait, orders, segments and
channel statistics read models."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from infra.db import Database
from infra.events import sortable_time

_CHUNK = 500


def conditions_sql(conditions: dict[str, Any]) -> tuple[str, list[object]]:
    """A rule's conditions as SQL over `portrait_customers p`."""
    sql: list[str] = []
    params: list[object] = []
    if conditions.get("segment_id"):
        sql.append(
            " AND EXISTS (SELECT 1 FROM segments_members m WHERE m.segment_id = ?"
            " AND m.customer_id = p.customer_id)"
        )
        params.append(conditions["segment_id"])
    for tag in conditions.get("tags_all") or ():
        sql.append(
            " AND EXISTS (SELECT 1 FROM portrait_tags t WHERE t.customer_id = p.customer_id"
            " AND t.tag = ?)"
        )
        params.append(tag)
    none = conditions.get("tags_none") or []
    if none:
        sql.append(
            " AND NOT EXISTS (SELECT 1 FROM portrait_tags t WHERE t.customer_id = p.customer_id"
            f" AND t.tag IN ({','.join('?' * len(none))}))"
        )
        params.extend(none)
    return "".join(sql), params


def matches(db: Database, customer_id: str, conditions: dict[str, Any]) -> bool:
    """An active customer meeting the conditions (an event trigger's customer)."""
    sql, params = conditions_sql(conditions)
    rows = db.query(
        "SELECT 1 FROM portrait_customers p WHERE p.customer_id = ? AND p.status = 'active'" + sql,
        (customer_id, *params),
    )
    return bool(rows)


def audience(
    db: Database, conditions: dict[str, Any], after: str, limit: int
) -> list[tuple[str, str]]:
    """(customer, last activity) of active customers meeting the conditions, by id."""
    sql, params = conditions_sql(conditions)
    rows = db.query(
        "SELECT p.customer_id, p.last_activity_at FROM portrait_customers p"
        " WHERE p.status = 'active' AND p.customer_id > ?"
        + sql
        + " ORDER BY p.customer_id LIMIT ?",
        (after, *params, limit),
    )
    return [(str(c), str(t)) for c, t in rows]


def silent(
    db: Database, conditions: dict[str, Any], since: datetime, after: str, limit: int
) -> list[tuple[str, str]]:
    """(customer, last activity) of active customers not active since `since`."""
    sql, params = conditions_sql(conditions)
    rows = db.query(
        "SELECT p.customer_id, p.last_activity_at FROM portrait_customers p"
        " WHERE p.status = 'active' AND p.customer_id > ? AND p.last_activity_at < ?"
        + sql
        + " ORDER BY p.customer_id LIMIT ?",
        (after, sortable_time(since), *params, limit),
    )
    return [(str(c), str(t)) for c, t in rows]


def birthdays(
    db: Database, conditions: dict[str, Any], day_keys: list[str], after: str, limit: int
) -> list[tuple[str, str]]:
    """(customer, its birthday's key) of active customers whose birthday is one of these
    month-days (by keyed hash: the read model holds no dates)."""
    sql, params = conditions_sql(conditions)
    marks = ",".join("?" * len(day_keys))
    rows = db.query(
        "SELECT p.customer_id, b.day_key FROM portrait_birthdays b"
        " JOIN portrait_customers p ON p.customer_id = b.customer_id AND p.status = 'active'"
        f" WHERE b.day_key IN ({marks}) AND p.customer_id > ?"
        + sql
        + " ORDER BY p.customer_id LIMIT ?",
        (*day_keys, after, *params, limit),
    )
    return [(str(c), str(k)) for c, k in rows]


def last_purchase_between(
    db: Database, conditions: dict[str, Any], lo: datetime, hi: datetime
) -> list[tuple[str, str]]:
    """(customer, date of their last completed order) where that order completed in
    (lo, hi] and none since: one pass over the orders completed in the window."""
    sql, params = conditions_sql(conditions)
    rows = db.query(
        "SELECT p.customer_id, MAX(o.completed_at) FROM orders_orders o"
        " JOIN portrait_identities i ON i.kind = o.buyer_kind AND i.value = o.buyer_id"
        " JOIN portrait_customers p ON p.customer_id = i.customer_id AND p.status = 'active'"
        " WHERE o.completed_at > ? AND o.completed_at <= ?"
        + sql
        + " GROUP BY p.customer_id ORDER BY p.customer_id",
        (sortable_time(lo), sortable_time(hi), *params),
    )
    found = [(str(c), str(t)) for c, t in rows]
    later: set[str] = set()
    for start in range(0, len(found), _CHUNK):
        part = [c for c, _ in found[start : start + _CHUNK]]
        later.update(
            str(r[0])
            for r in db.query(
                "SELECT DISTINCT i.customer_id FROM orders_orders o JOIN portrait_identities i"
                " ON i.kind = o.buyer_kind AND i.value = o.buyer_id WHERE o.completed_at > ?"
                f" AND i.customer_id IN ({','.join('?' * len(part))})",
                (sortable_time(hi), *part),
            )
        )
    return [(c, t) for c, t in found if c not in later]


def channel_dropoff(db: Database, until: datetime, days: int, code_id: str | None) -> float:
    """1 - contacts added / scans, over the `days` days (UTC) up to `until`; 0 without scans."""
    lo = (until - timedelta(days=days)).date().isoformat()
    hi = until.date().isoformat()
    where = " AND code_id = ?" if code_id else ""
    rows = db.query(
        "SELECT COALESCE(SUM(scans), 0), COALESCE(SUM(adds), 0) FROM channel_stats_daily"
        " WHERE day > ? AND day <= ?" + where,
        (lo, hi, *([code_id] if code_id else [])),
    )
    scans, adds = int(rows[0][0]), int(rows[0][1])
    return 0.0 if scans == 0 else max(0.0, 1 - adds / scans)
