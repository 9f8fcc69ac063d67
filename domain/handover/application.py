"""Handover's service layer: start a handover, retry its pending items, and mark an item
pending when WeCom reports that a customer's transfer failed.

Each item's change (the customer's owner, the ticket's assignee, the group's owner) is saved in
one transaction with the handover's event for that item, a hundred items at a time (WeCom
moves at most 100 customers per call). WeCom is asked before the save; its answers are kept
across a save retried after losing a race, so it is never asked twice about one attempt.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from domain.customers.aggregates import Customer, Staff
from domain.customers.groups import CustomerGroup
from domain.handover.aggregates import (
    DEFAULT_CUSTOMER_LIMIT,
    ITEM_KINDS,
    KINDS,
    LIMIT_EXCEEDED,
    NO_RECEIVER,
    Handover,
    Receivers,
    item_key,
    wecom_reason,
)
from domain.ports import WecomTransfers
from domain.scope import Scope
from domain.shared import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    Meta,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication
from domain.tickets.aggregates import Ticket
from domain.tickets.workflow import Workflow

BATCH = 100  # items per transaction, and WeCom's limit of customers per transfer call
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class Directory(Protocol):
    """What the read models know about staff, for choosing items and receivers."""

    def holdings(self, staff_id: str) -> dict[str, list[str]]:
        """By item kind: the customer ids, open ticket ids and group chat ids they hold."""
        ...

    def colleagues(self, department: str) -> list[str]:
        """Staff of the department who have not departed."""
        ...

    def loads(self, staff_ids: list[str]) -> dict[str, dict[str, int]]:
        """By staff id and item kind: how many customers, open tickets and groups they hold."""
        ...


@dataclass(frozen=True)
class HandoverAnswer:
    """What a handover command answers: the handover as it stands and the position of the
    last event recorded (None when nothing new was)."""

    key: str
    status: str  # open (something pending) or completed
    items: list[dict[str, Any]]
    position: int | None

    @property
    def pending(self) -> int:
        return sum(i["status"] == "pending" for i in self.items)


class HandoverApp(ScrmApplication):
    def __init__(
        self,
        transfers: WecomTransfers,
        directory: Directory,
        workflows: Callable[[str, int], Workflow],
        env: dict[str, str] | None = None,
        *,
        share_with: ScrmApplication | None = None,
    ):
        super().__init__(env, share_with=share_with)
        self.transfers = transfers
        self.directory = directory
        self.workflows = workflows  # a ticket's workflow version, to reassign it by its rules

    # --- commands ------------------------------------------------------------------------

    def start(
        self,
        *,
        kind: str,
        from_staff: str,
        to_staff: str | None,
        department: str | None,
        reason: str,
        key: str | None,
        customer_limit: int | None,
        scope: Scope,
        meta: Meta,
    ) -> HandoverAnswer:
        """Hand over what `from_staff` holds to `to_staff`, or round-robin within
        `department`. The same key again with the same request answers the handover as it
        stands (finishing any items a crash left unsettled) and records nothing twice."""
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}", field="kind")
        if (to_staff is None) == (department is None):
            raise InvalidInput(
                "name either to_staff or a department to round-robin within", field="to_staff"
            )
        reason = require_text(reason, "reason", max_len=500, allow_empty=True)
        limit = DEFAULT_CUSTOMER_LIMIT if customer_limit is None else customer_limit
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 < limit <= 1_000_000:
            raise InvalidInput("customer_limit must be from 1 to 1,000,000", field="customer_limit")
        giver = self._staff(require_slug(from_staff, "from_staff"))
        self._check_scope(scope, giver.department, "hand over staff")
        if kind == "departure" and not giver.departed:
            raise Conflict(
                f"staff {from_staff} has not departed; record the departure first,"
                " or hand over with kind transfer",
                code="staff_not_departed",
            )
        if kind == "transfer" and giver.departed:
            raise Conflict(
                f"staff {from_staff} has departed; hand over with kind departure",
                code="staff_departed",
            )
        if to_staff is not None:
            self._receiver(require_slug(to_staff, "to_staff"), from_staff, scope)
        else:
            department = require_text(department or "", "department", max_len=80)
            self._check_scope(scope, department, "round-robin within a department")
            if not self._colleagues(department, from_staff):
                raise Conflict(
                    f"nobody in department {department} can take the handover", code=NO_RECEIVER
                )
        key = key or f"{kind}-{from_staff}-{meta.occurred_at:%Y%m%d}"
        if not _KEY.match(key):
            raise InvalidInput("key must be 1-128 letters, digits, '.', '_' or '-'", field="key")
        found = self.find(Handover, Handover.create_id(key))
        if found is not None and not found.same_request(kind, from_staff, to_staff, department):
            raise Conflict(
                f"handover {key} exists with another request; choose another key",
                code="handover_exists",
            )

        def new() -> Handover:
            held = self.directory.holdings(from_staff)
            items = [
                {"item": item_key(k, ref), "kind": k, "ref": ref}
                for k in ITEM_KINDS
                for ref in held.get(k, [])
            ]
            return Handover(
                key=key,
                kind=kind,
                from_staff=from_staff,
                from_department=giver.department,
                to_staff=to_staff,
                department=department,
                reason=reason,
                customer_limit=limit,
                items=items,
                meta=meta,
            )

        return self._work(key, new, meta)

    def retry(
        self, key: str, *, items: list[str] | None, to_staff: str | None, scope: Scope, meta: Meta
    ) -> HandoverAnswer:
        """Try pending items again (all of them unless named): with `to_staff`, to that
        colleague; otherwise to the handover's named colleague, or round-robin again. Items
        no longer pending are left as they are, so a repeated retry records nothing."""
        handover = self.handover(key)
        self._check_scope(scope, handover.from_department, "retry handovers of staff")
        if to_staff is not None:
            self._receiver(require_slug(to_staff, "to_staff"), handover.from_staff, scope)
        for n, name in enumerate(items or []):
            handover.item(name, field=f"items[{n}]")

        def attempt() -> int | None:
            handover = self.handover(key)
            wanted = [i for i in handover.pending() if items is None or i["item"] in items]
            chooser = self._chooser(handover, to_staff)
            for item in wanted:
                to = to_staff or handover.to_staff or chooser.next(item["kind"])
                if to is None:
                    continue  # still nobody to take it: it stays pending as it is
                handover.retry(item["item"], to, meta)
                chooser.took(to, item["kind"])
            return self.save_all(handover)

        position = self.retrying(attempt)
        answer = self._work(key, None, meta, named=to_staff)
        return HandoverAnswer(answer.key, answer.status, answer.items, answer.position or position)

    def record_transfer_failure(
        self, key: str, customer_id: str, staff_id: str, reason: str, cause: str, meta: Meta
    ) -> int | None:
        """WeCom's transfer_fail for a customer this handover gave `staff_id`: the item is
        pending again and the customer back with the member they were handed over from, as
        WeCom keeps them. Once per failure (`cause`: the event that reported it)."""

        def attempt() -> int | None:
            handover = self.find(Handover, Handover.create_id(key))
            if handover is None or not handover.transfer_failed(
                customer_id, staff_id, reason, cause, meta.occurred_at, meta
            ):
                return None
            customer = self.find(Customer, UUID(customer_id))
            back = []
            if customer is not None and customer.owner == staff_id:
                try:
                    customer.assign_owner(handover.from_staff, f"handover_failed:{reason}", meta)
                    back.append(customer)
                except DomainError:  # erased or merged meanwhile: nothing to give back
                    pass
            return self.save_all(handover, *back)

        return self.retrying(attempt)

    def handover(self, key: str) -> Handover:
        if not _KEY.match(key or ""):
            raise InvalidInput("key must be 1-128 letters, digits, '.', '_' or '-'", field="key")
        return self.load(Handover, Handover.create_id(key), f"handover {key}")

    # --- the work, a batch at a time -----------------------------------------------------

    def _work(
        self, key: str, new: Callable[[], Handover] | None, meta: Meta, named: str | None = None
    ) -> HandoverAnswer:
        answers: dict[tuple[str, int], int] = {}  # (item, attempt) -> WeCom's errcode
        loads: dict[str, dict[str, int]] | None = None  # carried from batch to batch
        position = None
        while True:

            def attempt(
                loads: dict[str, dict[str, int]] | None = loads,
            ) -> tuple[int | None, Handover, Receivers]:
                found = self.find(Handover, Handover.create_id(key))
                handover = found if found is not None else new() if new else self.handover(key)
                chooser = self._chooser(handover, named, loads)
                changed = self._settle(
                    handover, handover.unsettled()[:BATCH], chooser, answers, meta, named
                )
                handover.complete_if_done(meta)
                return self.save_all(handover, *changed), handover, chooser

            recorded, handover, chooser = self.retrying(attempt)
            loads = chooser.loads  # the read models have not seen this batch yet
            position = recorded or position
            if not handover.unsettled():
                break
        return HandoverAnswer(
            key=key,
            status="completed" if handover.completed else "open",
            items=[dict(i) for i in handover.items.values()],
            position=position,
        )

    def _settle(
        self,
        handover: Handover,
        batch: list[dict[str, Any]],
        chooser: Receivers,
        answers: dict[tuple[str, int], int],
        meta: Meta,
        named: str | None,
    ) -> list[Any]:
        changed: list[Any] = []
        wecom: dict[str, list[tuple[dict[str, Any], Any, str]]] = {}  # receiver -> to ask
        for item in batch:
            target = self._target(handover, item, meta)
            if target is None:
                continue
            to = item["to"] or handover.to_staff or chooser.next(item["kind"])
            if to is None:
                handover.hold(item["item"], None, NO_RECEIVER, meta)
                continue
            if item["kind"] == "customer" and chooser.at_limit(to):
                handover.hold(item["item"], to, LIMIT_EXCEEDED, meta)
                continue
            chooser.took(to, item["kind"])
            if item["kind"] == "ticket":
                flow = self.workflows(target.workflow_key, target.workflow_version)
                target.assign(flow, to, "handover", f"handover {handover.key}", meta)
                self._done(handover, item, to, meta, named, ticket_id=item["ref"])
                changed.append(target)
            else:
                wecom.setdefault(to, []).append((item, target, to))
        for to, asked in wecom.items():
            codes = self._ask_wecom(handover, to, asked, answers)
            for item, target, _ in asked:
                code = codes.get(item["item"], 0)
                if code:
                    handover.hold(item["item"], to, wecom_reason(code), meta, errcode=code)
                elif item["kind"] == "customer":
                    target.assign_owner(to, f"handover:{handover.key}", meta)
                    self._done(
                        handover,
                        item,
                        to,
                        meta,
                        named,
                        customer_id=item["ref"],
                        external_userid=_external_userid(target),
                    )
                    changed.append(target)
                elif target.change_owner(to, meta):
                    self._done(handover, item, to, meta, named, chat_id=item["ref"])
                    changed.append(target)
                else:
                    handover.skip(item["item"], "group_changed_since", meta)
        return changed

    def _done(
        self,
        handover: Handover,
        item: dict[str, Any],
        to: str,
        meta: Meta,
        named: str | None,
        **target: Any,
    ) -> None:
        how = "named" if handover.to_staff or named else "round_robin"
        handover.hand_over(item["item"], to, how, meta, **target)

    def _target(self, handover: Handover, item: dict[str, Any], meta: Meta) -> Any:
        """The aggregate the item changes, or None (and the item skipped) when it is no
        longer theirs, is closed, erased or merged."""
        ref, giver = item["ref"], handover.from_staff
        why = "no_longer_theirs"
        found: Any = None
        if item["kind"] == "customer":
            found = self.find(Customer, UUID(ref))
            if found is not None and found.owner == giver:
                try:
                    found.check_processing_allowed()
                    return found
                except DomainError as exc:
                    why = exc.code
        elif item["kind"] == "ticket":
            found = self.find(Ticket, UUID(ref))
            if found is not None and found.assignee == giver:
                if not found.final:
                    return found
                why = "ticket_closed"
        else:
            found = self.find(CustomerGroup, CustomerGroup.create_id(ref))
            if found is not None and found.owner == giver:
                if not found.dismissed:
                    return found
                why = "group_dismissed"
        handover.skip(item["item"], why, meta)
        return None

    def _ask_wecom(
        self,
        handover: Handover,
        to: str,
        asked: list[tuple[dict[str, Any], Any, str]],
        answers: dict[tuple[str, int], int],
    ) -> dict[str, int]:
        """WeCom's errcode per item; customers who are not WeCom contacts move in scrm alone."""
        departed = handover.kind == "departure"
        customers: dict[str, str] = {}
        groups: list[str] = []
        for item, target, _ in asked:
            if (item["item"], item["attempts"]) in answers:
                continue
            if item["kind"] == "group":
                groups.append(item["ref"])
            elif (userid := _external_userid(target)) is not None:
                customers[userid] = item["item"]
        if customers:
            codes = self.transfers.transfer_customers(
                departed=departed,
                handover_userid=handover.from_staff,
                takeover_userid=to,
                external_userids=list(customers),
            )
            for userid, name in customers.items():
                answers[(name, handover.items[name]["attempts"])] = int(codes.get(userid, 0))
        if groups:
            codes = self.transfers.transfer_groups(departed=departed, chat_ids=groups, new_owner=to)
            for chat_id in groups:
                name = item_key("group", chat_id)
                answers[(name, handover.items[name]["attempts"])] = int(codes.get(chat_id, 0))
        return {
            item["item"]: answers.get((item["item"], item["attempts"]), 0) for item, _, _ in asked
        }

    # --- staff and receivers -------------------------------------------------------------

    def _staff(self, staff_id: str) -> Staff:
        return self.load(Staff, Staff.create_id(staff_id), f"staff {staff_id}")

    def _check_scope(self, scope: Scope, department: str, what: str) -> None:
        if scope.role == "admin" or (scope.role == "manager" and scope.department == department):
            return
        raise Forbidden(f"only admins and the department's managers {what}")

    def _receiver(self, to_staff: str, from_staff: str, scope: Scope) -> Staff:
        if to_staff == from_staff:
            raise Conflict(
                "a handover goes to someone else", code="handover_to_self", field="to_staff"
            )
        receiver = self._staff(to_staff)
        if receiver.departed:
            raise Conflict(
                f"staff {to_staff} has departed", code="receiver_departed", field="to_staff"
            )
        self._check_scope(scope, receiver.department, "hand over to staff")
        return receiver

    def _colleagues(self, department: str, except_staff: str) -> list[str]:
        """Active colleagues, as their own records say: the directory may lag a departure."""
        return [
            s
            for s in self.directory.colleagues(department)
            if s != except_staff
            and (f := self.find(Staff, Staff.create_id(s))) is not None
            and not f.departed
            and f.department == department
        ]

    def _chooser(
        self,
        handover: Handover,
        named: str | None,
        known: dict[str, dict[str, int]] | None = None,
    ) -> Receivers:
        """Who may take items and what they hold; `known`: loads carried from an earlier
        batch of the same command (copied, so an attempt that loses a race leaves them)."""
        if known is not None:
            return Receivers(known, handover.customer_limit)
        if named or handover.to_staff:
            staff = [named or handover.to_staff or ""]
        else:
            staff = self._colleagues(handover.department or "", handover.from_staff)
        loads = self.directory.loads(staff)
        return Receivers({s: loads.get(s, {}) for s in staff}, handover.customer_limit)


def _external_userid(customer: Customer) -> str | None:
    return next(
        (i["value"] for i in customer.identities if i["kind"] == "wecom_external_userid"), None
    )
