"""The tickets context's scheduled processes and the glue between routing and tickets.

Each is idempotent (the aggregates decide), so several API processes may run them and a
restart never records anything twice."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.conversations.aggregates import is_external
from domain.conversations.compliance import text_of
from domain.shared import Meta
from domain.tickets.application import OpenTicket
from domain.tickets.routing import Decision
from infra.events import EventRecord, sortable_time
from infra.processes import BehindTheReadModels
from projections.customers.purchases import purchase_profiles
from projections.tickets import tickets as read

if TYPE_CHECKING:
    from infra.bootstrap import Container


def _meta(process: str, now: datetime) -> Meta:
    from infra.jobs import scheduler_meta

    return scheduler_meta(process, now)


def breach_overdue_tickets(c: Container, now: datetime | None = None) -> list[str]:
    """`SlaBreached` for every open ticket past its current state's deadline, once."""
    now = now or datetime.now(UTC)
    overdue = read.overdue(c.read_db, sortable_time(now))
    if not overdue:
        return []
    return c.tickets.breach_overdue([UUID(t) for t in overdue], now, _meta("sla", now))


def hand_over_departed(c: Container, now: datetime | None = None) -> dict[str, str | None]:
    """Open tickets of staff who departed go to eligible colleagues."""
    now = now or datetime.now(UTC)
    moved: dict[str, str | None] = {}
    for staff_id, ticket_ids in read.departed_with_open_tickets(c.read_db).items():
        moved |= c.tickets.hand_over(
            staff_id,
            [UUID(t) for t in ticket_ids],
            lambda region, service_type, skill: read.roster(c.read_db, region, service_type, skill),
            _meta("handover", now),
        )
    return moved


def route_incoming(
    c: Container,
    *,
    message_id: str,
    customer_id: UUID | None,
    text: str,
    region: str | None,
    product: str | None,
    meta: Meta,
) -> dict[str, Any]:
    """Routes one customer message once. An `open_ticket` decision updates the customer's
    open ticket of that workflow (a comment with the message) or opens one."""

    def open_or_update(decision: Decision) -> tuple[UUID, str]:
        assert decision.workflow and decision.service_type
        c.engine.wait_for(c.head(), c.settings.min_position_timeout, names=["tickets"])
        if customer_id is not None:
            for ticket in read.board(
                c.read_db, workflow=decision.workflow, open_only=True, limit=1000
            ):
                if ticket["customer_id"] == str(customer_id):
                    tid = UUID(ticket["ticket_id"])
                    c.tickets.comment(tid, text, meta)
                    return tid, "updated"
        opened = c.tickets.open_ticket(
            OpenTicket(
                workflow=decision.workflow,
                service_type=decision.service_type,
                region=region or "unknown",
                description=text,
                customer_id=customer_id,
                conversation_msgid=message_id,
                product=product,
                urgency="urgent" if decision.urgency == "urgent" else "normal",
                idempotency_key=f"routed:{message_id}",  # a retried routing opens one ticket
            ),
            roster=lambda r, s, k: read.roster(c.read_db, r, s, k),
            templates=read.templates_in_force(c.read_db),
            meta=meta,
        )
        return UUID(opened.id), "opened"

    status, decision, version = c.tickets.route_message(
        message_id,
        customer_id=customer_id,
        text=text,
        region=region,
        product=product,
        open_ticket_for=open_or_update,
        meta=meta,
    )
    return {
        "routed": status == "routed",
        "status": status,
        "decision": decision.as_dict() if decision else None,
        "rules_version": version,
        "position": c.head(),
    }


class MessageRouter(BehindTheReadModels):
    """Routes customers' incoming WeCom messages from the archive as they are projected:
    one-to-one messages whose sender is an external contact. Keeps its own checkpoint; a
    message is routed once however often a round is retried (RoutedMessage's id is the
    message's). Nothing is read while no routing rules are published."""

    MARK, TABLE = "routed", "message_router_positions"

    def concerned(self) -> bool:
        """No rules published (as the read model has them): nothing to route."""
        return bool(self.c.read_db.query("SELECT COUNT(*) FROM tickets_routing_rules")[0][0])

    def handle(self, records: Sequence[EventRecord]) -> None:
        for record in records:
            if record.name == "ArchivedMessageArchived" and _incoming(record.data):
                self._route(record)

    def _route(self, record: EventRecord) -> None:
        d = record.data
        payload = self.c.conversations.unseal(d["subject"], d["sealed"])
        text = text_of(payload) if payload is not None else ""
        if not text.strip():  # erased, or nothing a person wrote (an image)
            return
        rows = self.c.read_db.query(
            "SELECT i.customer_id FROM portrait_identities i JOIN portrait_customers c"
            " ON c.customer_id = i.customer_id AND c.status = 'active'"
            " WHERE i.kind = 'wecom_external_userid' AND i.value = ?",
            (d["sender"],),
        )
        customer = rows[0][0] if rows else None
        region = product = None
        if customer is not None:  # where they live and what they bought last, by their orders
            profile = purchase_profiles(self.c.read_db, [customer], datetime.now(UTC))
            p = profile.get(customer) or {}
            region = f"{p.get('province') or ''}{p.get('city') or ''}" or None
            product = _latest_product(self.c, customer)
        route_incoming(
            self.c,
            message_id=d["msgid"],
            customer_id=UUID(customer) if customer else None,
            text=text,
            region=region,
            product=product,
            meta=record.caused("system:routing", "wecom", datetime.now(UTC)),
        )


def _incoming(data: dict[str, Any]) -> bool:
    """A customer writing to staff one-to-one (group chats are not routed)."""
    return not data.get("room_id") and is_external(data.get("sender", ""))


def _latest_product(c: Container, customer_id: str) -> str | None:
    rows = c.read_db.query(
        "SELECT l.title FROM portrait_identities i JOIN orders_orders o"
        " ON o.buyer_kind = i.kind AND o.buyer_id = i.value"
        " JOIN orders_lines l ON l.order_id = o.order_id"
        " WHERE i.customer_id = ? ORDER BY o.placed_at DESC, l.line_id LIMIT 1",
        (customer_id,),
    )
    return rows[0][0] if rows else None
