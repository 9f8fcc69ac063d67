"""Handovers (离职继承 / 在职转接) as read models: each handover with its counts, each item with
its status, receiver and reason, and every step of every item (who, when, why)."""

from __future__ import annotations

from typing import Any

from domain.handover.aggregates import Handover
from infra.db import Database
from infra.events import EventRecord, sortable_time
from projections.base import Projection, handles, select


class Handovers(Projection):
    name = "handover"
    tables = ("handover_handovers", "handover_items", "handover_steps")
    ddl = (
        "CREATE TABLE IF NOT EXISTS handover_handovers ("
        " handover_id TEXT PRIMARY KEY, handover_key TEXT NOT NULL UNIQUE, kind TEXT NOT NULL,"
        " from_staff TEXT NOT NULL, from_department TEXT NOT NULL, to_staff TEXT,"
        " department TEXT, reason TEXT NOT NULL, customer_limit BIGINT NOT NULL,"
        " status TEXT NOT NULL, started_at TEXT NOT NULL, started_by TEXT NOT NULL,"
        " completed_at TEXT, items BIGINT NOT NULL, handed_over BIGINT NOT NULL,"
        " pending BIGINT NOT NULL, skipped BIGINT NOT NULL, position BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS handover_handovers_from"
        " ON handover_handovers (from_staff, started_at)",
        "CREATE TABLE IF NOT EXISTS handover_items ("
        " handover_id TEXT NOT NULL, item TEXT NOT NULL, kind TEXT NOT NULL, ref TEXT NOT NULL,"
        " status TEXT NOT NULL, to_staff TEXT, how TEXT, reason TEXT, wecom_errcode BIGINT,"
        " attempts BIGINT NOT NULL, changed_at TEXT NOT NULL, position BIGINT NOT NULL,"
        " PRIMARY KEY (handover_id, item))",
        "CREATE INDEX IF NOT EXISTS handover_items_ref ON handover_items (ref, status)",
        "CREATE TABLE IF NOT EXISTS handover_steps ("
        " position BIGINT PRIMARY KEY, handover_id TEXT NOT NULL, item TEXT, step TEXT NOT NULL,"
        " to_staff TEXT, reason TEXT, occurred_at TEXT NOT NULL, actor TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS handover_steps_handover"
        " ON handover_steps (handover_id, position)",
    )

    def _step(self, e: EventRecord, cur: Any, step: str, item: str | None = None) -> None:
        d = e.data
        cur.execute(
            "INSERT INTO handover_steps (position, handover_id, item, step, to_staff, reason,"
            " occurred_at, actor) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (position) DO NOTHING",
            (e.position, e.originator_id, item, step, d.get("to_staff"), d.get("reason"),
             sortable_time(e.occurred_at), e.actor),
        )  # fmt: skip

    @handles(Handover, "Started")
    def _started(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        at = sortable_time(e.occurred_at)
        cur.execute(
            "INSERT INTO handover_handovers (handover_id, handover_key, kind, from_staff,"
            " from_department, to_staff, department, reason, customer_limit, status, started_at,"
            " started_by, items, handed_over, pending, skipped, position)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (handover_id) DO NOTHING",
            (e.originator_id, d["key"], d["kind"], d["from_staff"], d["from_department"],
             d["to_staff"], d["department"], d["reason"], d["customer_limit"], "open", at,
             e.actor, len(d["items"]), 0, 0, 0, e.position),
        )  # fmt: skip
        for i in d["items"]:
            cur.execute(
                "INSERT INTO handover_items (handover_id, item, kind, ref, status, attempts,"
                " changed_at, position) VALUES (?,?,?,?,?,?,?,?)"
                " ON CONFLICT (handover_id, item) DO NOTHING",
                (e.originator_id, i["item"], i["kind"], i["ref"], "unsettled", 1, at, e.position),
            )
        self._step(e, cur, "started")

    def _item(self, e: EventRecord, cur: Any, status: str, step: str, **extra: Any) -> None:
        d = e.data
        sets = "".join(f", {k} = ?" for k in extra)
        cur.execute(
            f"UPDATE handover_items SET status = ?, changed_at = ?, position = ?{sets}"
            " WHERE handover_id = ? AND item = ? AND position < ?",
            (status, sortable_time(e.occurred_at), e.position, *extra.values(), e.originator_id,
             d["item"], e.position),
        )  # fmt: skip
        self._step(e, cur, step, d["item"])
        self._count(e, cur)

    def _count(self, e: EventRecord, cur: Any, completed: bool = False) -> None:
        counts = {}
        for status in ("handed_over", "pending", "skipped"):
            cur.execute(
                "SELECT COUNT(*) FROM handover_items WHERE handover_id = ? AND status = ?",
                (e.originator_id, status),
            )
            counts[status] = cur.fetchone()[0]
        cur.execute(
            "UPDATE handover_handovers SET handed_over = ?, pending = ?, skipped = ?,"
            " status = ?, completed_at = ?, position = ? WHERE handover_id = ?",
            (counts["handed_over"], counts["pending"], counts["skipped"],
             "completed" if completed else "open",
             sortable_time(e.occurred_at) if completed else None, e.position, e.originator_id),
        )  # fmt: skip

    @handles(Handover, "CustomerHandedOver", "TicketReassigned", "GroupHandedOver")
    def _handed_over(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._item(e, cur, "handed_over", "handed_over", to_staff=d["to_staff"], how=d["how"],
                   reason=None, wecom_errcode=None)  # fmt: skip

    @handles(Handover, "ItemPending")
    def _pending(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._item(e, cur, "pending", "pending", to_staff=d["to_staff"], reason=d["reason"],
                   wecom_errcode=d["wecom_errcode"])  # fmt: skip

    @handles(Handover, "ItemSkipped")
    def _skipped(self, e: EventRecord, cur: Any) -> None:
        self._item(e, cur, "skipped", "skipped", reason=e.data["reason"])

    @handles(Handover, "ItemRetried")
    def _retried(self, e: EventRecord, cur: Any) -> None:
        d = e.data
        self._item(e, cur, "unsettled", "retried", to_staff=d["to_staff"],
                   attempts=d["attempt"])  # fmt: skip

    @handles(Handover, "Completed")
    def _completed(self, e: EventRecord, cur: Any) -> None:
        self._count(e, cur, completed=True)
        self._step(e, cur, "completed")


HANDOVER_COLUMNS = [
    "handover_id", "handover_key", "kind", "from_staff", "from_department", "to_staff",
    "department", "reason", "customer_limit", "status", "started_at", "started_by",
    "completed_at", "items", "handed_over", "pending", "skipped", "position",
]  # fmt: skip
ITEM_COLUMNS = [
    "item", "kind", "ref", "status", "to_staff", "how", "reason", "wecom_errcode", "attempts",
    "changed_at",
]  # fmt: skip


def handovers(
    db: Database,
    *,
    department: str | None = None,
    from_staff: str | None = None,
    status: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    where: list[str] = []
    params: list[object] = []
    for column, value in (
        ("from_department", department), ("from_staff", from_staff), ("status", status)
    ):  # fmt: skip
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    return select(db, "handover_handovers", HANDOVER_COLUMNS, where, params,
                  order="started_at DESC, handover_key", limit=limit)  # fmt: skip


def find_handover(
    db: Database, key: str, *, item_status: str | None = None
) -> dict[str, Any] | None:
    found = select(db, "handover_handovers", HANDOVER_COLUMNS, ["handover_key = ?"], [key],
                   order="handover_key", limit=1)  # fmt: skip
    if not found:
        return None
    handover = found[0]
    where, params = ["handover_id = ?"], [handover["handover_id"]]
    if item_status is not None:
        where.append("status = ?")
        params.append(item_status)
    handover["item_list"] = select(db, "handover_items", ITEM_COLUMNS, where, params,
                                   order="kind, item", limit=100_000)  # fmt: skip
    handover["steps"] = select(
        db, "handover_steps", ["position", "item", "step", "to_staff", "reason", "occurred_at",
                               "actor"],
        ["handover_id = ?"], [handover["handover_id"]], order="position", limit=100_000,
    )  # fmt: skip
    return handover


def handed_over_to(db: Database, customer_id: str, staff_id: str) -> str | None:
    """The key of the handover that gave this customer to this member of staff, if one did
    and its item stands (so WeCom's transfer_fail for it can mark it pending)."""
    rows = db.query(
        "SELECT h.handover_key FROM handover_items i JOIN handover_handovers h"
        " ON h.handover_id = i.handover_id WHERE i.kind = 'customer' AND i.ref = ?"
        " AND i.status = 'handed_over' AND i.to_staff = ? ORDER BY i.position DESC LIMIT 1",
        (customer_id, staff_id),
    )
    return str(rows[0][0]) if rows else None


def any_handed_over(db: Database) -> bool:
    return bool(db.query("SELECT 1 FROM handover_items WHERE status = 'handed_over' LIMIT 1"))
