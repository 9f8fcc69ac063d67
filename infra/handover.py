"""Handover's glue to the read models: who holds what and how loaded each colleague is (the
`Directory` the application asks), and the follower that turns WeCom's transfer_fail into a
pending item.

The follower runs behind the read models like the segment evaluator and the message router:
it reads `CustomerTransferFailed` from the log, finds the handover that gave that customer to
that member of staff, and records the item pending there. The aggregate decides once per
failure, so a round retried after a crash records nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from domain.handover.application import HandoverAnswer
from infra.db import Database
from infra.events import EventRecord
from infra.processes import BehindTheReadModels
from projections.handover import handovers as read

if TYPE_CHECKING:
    from infra.bootstrap import Container


class ReadModelDirectory:
    """The handover's `Directory` over the portrait, tickets, groups and staff read models."""

    def __init__(self, db: Database):
        self.db = db

    def holdings(self, staff_id: str) -> dict[str, list[str]]:
        q = self.db.query
        return {
            "customer": [r[0] for r in q(
                "SELECT customer_id FROM portrait_customers WHERE owner = ? AND status = 'active'"
                " ORDER BY added_position", (staff_id,))],
            "ticket": [r[0] for r in q(
                "SELECT ticket_id FROM tickets_tickets WHERE assignee = ? AND final = 0"
                " ORDER BY position", (staff_id,))],
            "group": [r[0] for r in q(
                "SELECT chat_id FROM groups_chats WHERE owner = ? AND status <> 'dismissed'"
                " ORDER BY added_position", (staff_id,))],
        }  # fmt: skip

    def colleagues(self, department: str) -> list[str]:
        rows = self.db.query(
            "SELECT staff_id FROM staff_members WHERE department = ? AND departed_at IS NULL"
            " ORDER BY staff_id",
            (department,),
        )
        return [str(r[0]) for r in rows]

    def loads(self, staff_ids: list[str]) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {s: {} for s in staff_ids}
        if not staff_ids:
            return out
        marks = ",".join("?" * len(staff_ids))
        for kind, sql in (
            ("customer", "SELECT owner, COUNT(*) FROM portrait_customers WHERE status = 'active'"
                         f" AND owner IN ({marks}) GROUP BY owner"),
            ("ticket", "SELECT assignee, COUNT(*) FROM tickets_tickets WHERE final = 0"
                       f" AND assignee IN ({marks}) GROUP BY assignee"),
            ("group", "SELECT owner, COUNT(*) FROM groups_chats WHERE status <> 'dismissed'"
                      f" AND owner IN ({marks}) GROUP BY owner"),
        ):  # fmt: skip
            for staff_id, count in self.db.query(sql, tuple(staff_ids)):
                out[str(staff_id)][kind] = int(count)
        return out


class HandoverFollower(BehindTheReadModels):
    """Marks a handed-over customer's item pending when WeCom reports the transfer failed."""

    MARK, TABLE = "followed", "handover_follower_positions"

    def concerned(self) -> bool:
        """Nothing handed over yet (as the read model has it): no failure can concern one."""
        return read.any_handed_over(self.c.read_db)

    def _failed(self, record: EventRecord) -> None:
        staff_id, reason = record.data["staff_id"], record.data["reason"]
        key = read.handed_over_to(self.c.read_db, record.originator_id, staff_id)
        if key is None:  # not a handover's transfer (made in WeCom's own admin console)
            return
        cause = f"event:{record.originator_id}:{record.originator_version}"
        self.c.handover.record_transfer_failure(
            key,
            record.originator_id,
            staff_id,
            reason,
            cause,
            record.caused("system:handover", "wecom"),  # at WeCom's time
        )

    HANDLERS: ClassVar[dict[str, Callable[[HandoverFollower, EventRecord], None]]] = {
        "CustomerTransferFailed": _failed,
    }


DIRECTORY_READ_MODELS = ["staff", "portrait", "tickets", "groups"]


def await_directory(c: Container) -> None:
    """A handover hands over what the read models say the member of staff holds: they must
    have seen everything recorded so far (bounded; NotCaughtUp, 503, when they have not)."""
    c.engine.wait_for(c.head(), c.settings.min_position_timeout, DIRECTORY_READ_MODELS)


def present(answer: HandoverAnswer) -> dict[str, object]:
    """A command's answer: the handover's status, its counts, and its items."""
    counts = {s: sum(i["status"] == s for i in answer.items) for s in STATUSES}
    items = [
        {"item": i["item"], "kind": i["kind"], "ref": i["ref"], "status": i["status"],
         "to_staff": i["to"], "reason": i["reason"], "attempts": i["attempts"]}
        for i in answer.items
    ]  # fmt: skip
    return {"key": answer.key, "status": answer.status, **counts, "items": items,
            "position": answer.position}  # fmt: skip


STATUSES = ("handed_over", "pending", "skipped")
