"""Staff handover (离职继承 / 在职转接): a departing or moving member of staff's customers, open
tickets and customer groups go to a named colleague or round-robin within a department
(docs/handover.md).

The handover is a process with its own events. Each item (one customer, ticket or group) is
settled by one event recorded with the change it makes; an item WeCom refused stays pending
with WeCom's reason until it is retried. Public methods decide; `@event` methods only assign.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, derived_id

KINDS = ("departure", "transfer")  # 离职继承 (the member has left WeCom), 在职转接
ITEM_KINDS = ("customer", "ticket", "group")
DEFAULT_CUSTOMER_LIMIT = 20_000  # the receiver's customer cap unless a handover states its own

# Why an item is pending. WeCom's transfer_fail callback (FailReason) and transfer_result
# statuses 3 and 4 name the first two; the per-customer errcodes of transfer_customer the
# next; scrm's own checks the last two.
CUSTOMER_REFUSED = "customer_refused"  # 客户拒绝
LIMIT_EXCEEDED = "customer_limit_exceed"  # 接替成员客户达到上限
WECOM_ERRCODES = {
    40096: "invalid_external_userid",  # 不合法的外部联系人 userid
    40097: "handover_member_not_departed",  # 该成员尚未离职 (离职继承 only)
    40098: "receiver_not_verified",  # 接替成员尚未实名认证
    40099: LIMIT_EXCEEDED,  # 外部联系人的数量已达上限
    40100: "transfer_in_progress",  # 用户的外部联系人已经在转移流程中
}
NO_RECEIVER = "no_receiver"  # nobody in the department is active and under the limit
RECEIVER_DEPARTED = "receiver_departed"


def wecom_reason(errcode: int) -> str:
    return WECOM_ERRCODES.get(errcode, f"wecom_errcode_{errcode}")


def item_key(kind: str, ref: str) -> str:
    return f"{kind}:{ref}"


class Handover(ScrmAggregate):
    """One handover from one member of staff. Its items are fixed when it starts: what they
    held then. Items settle as handed over, skipped (no longer theirs, closed, erased) or
    pending; it is complete when nothing is pending or unsettled."""

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("handover", key)

    @event("Started")
    def __init__(
        self,
        key: str,
        kind: str,
        from_staff: str,
        from_department: str,
        to_staff: str | None,
        department: str | None,  # round-robin within it when no colleague is named
        reason: str,
        customer_limit: int,
        items: list[dict[str, str]],  # {"item", "kind", "ref"}
        meta: Meta,
    ):
        self.key = key
        self.kind = kind
        self.from_staff = from_staff
        self.from_department = from_department
        self.to_staff = to_staff
        self.department = department
        self.reason = reason
        self.customer_limit = customer_limit
        self.items: dict[str, dict[str, Any]] = {
            i["item"]: {**i, "status": "unsettled", "to": None, "reason": None, "attempts": 1}
            for i in items
        }
        self.causes: tuple[str, ...] = ()  # WeCom failures applied, by the event that told us
        self.completed = False

    # --- decisions -----------------------------------------------------------------------

    def same_request(
        self, kind: str, from_staff: str, to_staff: str | None, department: str | None
    ) -> bool:
        return (self.kind, self.from_staff, self.to_staff, self.department) == (
            kind,
            from_staff,
            to_staff,
            department,
        )

    def unsettled(self) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if i["status"] == "unsettled"]

    def pending(self) -> list[dict[str, Any]]:
        return [i for i in self.items.values() if i["status"] == "pending"]

    def item(self, key: str, field: str = "items") -> dict[str, Any]:
        found = self.items.get(key)
        if found is None:
            raise InvalidInput(f"handover {self.key} has no item {key!r}", field=field)
        return found

    def hand_over(self, key: str, to_staff: str, how: str, meta: Meta, **target: Any) -> None:
        """The item went to `to_staff` (`how`: named or round_robin); `target` names it
        (customer_id and external_userid, ticket_id, chat_id) so the event reads alone."""
        item = self.item(key)
        if item["status"] not in ("unsettled", "pending"):
            raise Conflict(f"item {key} is {item['status']} already", code="item_settled")
        record: Any = {
            "customer": self._customer_handed_over,
            "ticket": self._ticket_reassigned,
            "group": self._group_handed_over,
        }[item["kind"]]
        record(
            item=key, from_staff=self.from_staff, to_staff=to_staff, how=how, meta=meta, **target
        )

    def hold(
        self, key: str, to_staff: str | None, reason: str, meta: Meta, *, errcode: int | None = None
    ) -> None:
        """The item stays pending: WeCom refused it (`errcode`), or nobody could take it."""
        self._item_pending(
            item=key, to_staff=to_staff, reason=reason, wecom_errcode=errcode, cause=None, meta=meta
        )

    def skip(self, key: str, why: str, meta: Meta) -> None:
        """Nothing to hand over any more: it left them meanwhile, or it is closed or erased."""
        self._item_skipped(item=key, reason=why, meta=meta)

    def retry(self, key: str, to_staff: str, meta: Meta) -> bool:
        item = self.item(key)
        if item["status"] != "pending":
            return False  # a repeated retry finds it settled: nothing to record
        self._item_retried(item=key, attempt=item["attempts"] + 1, to_staff=to_staff, meta=meta)
        return True

    def transfer_failed(
        self, customer_id: str, staff_id: str, reason: str, cause: str, at: datetime, meta: Meta
    ) -> bool:
        """WeCom's transfer_fail for a customer handed over to `staff_id`: the item is pending
        again with WeCom's reason. Once per failure; a failure older than the hand-over it
        would undo (an earlier attempt's) changes nothing."""
        item = self.items.get(item_key("customer", customer_id))
        if item is None or cause in self.causes:
            return False
        if item["status"] != "handed_over" or item["to"] != staff_id:
            return False
        if at < datetime.fromisoformat(item["at"]):
            return False
        self._item_pending(
            item=item["item"],
            to_staff=staff_id,
            reason=reason,
            wecom_errcode=None,
            cause=cause,
            meta=meta,
        )
        return True

    def complete_if_done(self, meta: Meta) -> bool:
        if self.completed or any(
            i["status"] in ("unsettled", "pending") for i in self.items.values()
        ):
            return False
        self._completed(
            handed_over=sum(i["status"] == "handed_over" for i in self.items.values()),
            skipped=sum(i["status"] == "skipped" for i in self.items.values()),
            meta=meta,
        )
        return True

    # --- events: state only --------------------------------------------------------------

    def _settle(self, key: str, status: str, **changes: Any) -> None:
        self.items = {**self.items, key: {**self.items[key], "status": status, **changes}}

    @event("CustomerHandedOver")
    def _customer_handed_over(
        self,
        item: str,
        customer_id: str,
        external_userid: str | None,  # None: not a WeCom contact, moved in scrm alone
        from_staff: str,
        to_staff: str,
        how: str,
        meta: Meta,
    ) -> None:
        self._settle(item, "handed_over", to=to_staff, reason=None, at=meta.occurred_at.isoformat())

    @event("TicketReassigned")
    def _ticket_reassigned(
        self, item: str, ticket_id: str, from_staff: str, to_staff: str, how: str, meta: Meta
    ) -> None:
        self._settle(item, "handed_over", to=to_staff, reason=None, at=meta.occurred_at.isoformat())

    @event("GroupHandedOver")
    def _group_handed_over(
        self, item: str, chat_id: str, from_staff: str, to_staff: str, how: str, meta: Meta
    ) -> None:
        self._settle(item, "handed_over", to=to_staff, reason=None, at=meta.occurred_at.isoformat())

    @event("ItemPending")
    def _item_pending(
        self,
        item: str,
        to_staff: str | None,
        reason: str,
        wecom_errcode: int | None,
        cause: str | None,  # the event that reported WeCom's failure, if one did
        meta: Meta,
    ) -> None:
        self._settle(item, "pending", to=to_staff, reason=reason)
        self.completed = False
        if cause is not None:
            self.causes = (*self.causes, cause)

    @event("ItemSkipped")
    def _item_skipped(self, item: str, reason: str, meta: Meta) -> None:
        self._settle(item, "skipped", reason=reason)

    @event("ItemRetried")
    def _item_retried(self, item: str, attempt: int, to_staff: str, meta: Meta) -> None:
        self._settle(item, "unsettled", to=to_staff, attempts=attempt)

    @event("Completed")
    def _completed(self, handed_over: int, skipped: int, meta: Meta) -> None:
        self.completed = True


class Receivers:
    """Round-robin that stays fair: each item goes to the least loaded active colleague
    (ties by staff id), whose load then grows by one, so a handover spreads evenly over
    colleagues who already had different loads, and the same loads always give the same
    answer. A colleague at the customer limit takes no more customers."""

    def __init__(self, loads: dict[str, dict[str, int]], customer_limit: int):
        self.loads = {s: dict(v) for s, v in loads.items()}
        self.customer_limit = customer_limit

    def at_limit(self, staff_id: str) -> bool:
        return self.loads.get(staff_id, {}).get("customer", 0) >= self.customer_limit

    def next(self, kind: str) -> str | None:
        open_ = [s for s in self.loads if not (kind == "customer" and self.at_limit(s))]
        if not open_:
            return None
        return min(open_, key=lambda s: (self.loads[s].get(kind, 0), s))

    def took(self, staff_id: str, kind: str) -> None:
        load = self.loads.setdefault(staff_id, {})
        load[kind] = load.get(kind, 0) + 1
