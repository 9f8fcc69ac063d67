"""Promotions' processes.

- The coupon expiry sweep: the read model finds coupons that lapsed unused, the aggregate
  checks and records each (`CouponExpired`). The API and `scrm promotions expire-coupons` run
  it; so may a scheduler, as often as it likes (a second pass finds nothing new).
- `Loyalty` follows the log: points for completed orders, tiers by spend.
- `review_tiers` is the tier sweep.
- `member_rate`: what a customer's tier takes off a quote (POST /v1/quotes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, ClassVar

from domain.customers.aggregates import BUYER_KINDS
from domain.pricing.rules import MemberRate
from domain.promotions.aggregates import Points
from domain.shared import Meta, NotFound
from infra.events import EventRecord
from infra.processes import BehindTheReadModels
from projections.customers import purchases
from projections.customers.portrait import customer_status
from projections.promotions import promotions as read

if TYPE_CHECKING:
    from infra.bootstrap import Container

SWEEP_BATCH = 1000


def sweep_expired(c: Container, meta: Meta) -> list[str]:
    """Codes expired by this pass (at most SWEEP_BATCH; run again for more)."""
    due = read.due_for_expiry(c.read_db, meta.occurred_at, limit=SWEEP_BATCH)
    return c.promotions.expire_coupons(due, meta=meta)


class Loyalty(BehindTheReadModels):
    """Follows the log behind the read models and keeps the loyalty program's promises:
    points for a completed order (clawed back as it is refunded), points for a buyer's
    completed orders once the buyer is linked to a customer, and the customer's tier by what
    they spent over the program's period. Each is recorded at the business time of the event
    that caused it. What a round records is decided by the aggregates (one earning per order,
    one clawback per refund, a tier change only when the tier changes), so a round retried,
    or run again after a restart or a rebuild of the read models, records nothing twice."""

    MARK, TABLE = "credited", "loyalty_positions"

    def handle(self, records: Sequence[EventRecord]) -> None:
        for record in records:  # only what happened while a program was in force
            if record.name in self.HANDLERS and self.c.promotions.program_at(record.ts()):
                self.HANDLERS[record.name](self, record)

    def _order(self, r: EventRecord, change_ref: str, *, refund: bool) -> None:
        found = purchases.order_worth(self.c.read_db, r.originator_id)
        if found is None:
            return
        kind, buyer, worth, _ = found
        customer = purchases.buyer_customer(self.c.read_db, kind, buyer)
        if customer is None:  # credited when the buyer is linked
            return
        order_ref = f"order:{r.originator_id}"
        if refund and not self._credited(customer, order_ref):
            return  # refunded before completion: the completion credits what is left
        self._credit(customer, {order_ref: worth}, change_ref, r)

    def _completed(self, r: EventRecord) -> None:
        self._order(r, f"order:{r.originator_id}", refund=False)

    def _refunded(self, r: EventRecord) -> None:
        self._order(r, f"refund:{r.originator_id}:{r.data['refund_id']}", refund=True)

    def _linked(self, r: EventRecord) -> None:
        kind, value = r.data["kind"], r.data["value"]
        if kind not in BUYER_KINDS:
            return
        orders = purchases.completed_orders(self.c.read_db, kind, value)
        if orders:
            worths = {f"order:{oid}": worth for oid, worth in orders}
            self._credit(r.originator_id, worths, "", r)

    def _credited(self, customer: str, order_ref: str) -> bool:
        found = self.c.promotions.find(Points, Points.create_id(customer))
        return found is not None and order_ref in found.refs

    def _credit(
        self, customer: str, worths: dict[str, int], change_ref: str, r: EventRecord
    ) -> None:
        meta = r.caused("system:loyalty", "promotions")
        found = self.c.promotions.program_at(meta.occurred_at)
        assert found is not None
        _, program = found
        for order_ref, worth in worths.items():
            self.c.promotions.credit_order(
                customer,
                order_ref,
                program.points_for(worth),
                change_ref=change_ref or order_ref,
                meta=meta,
            )
        review(self.c, [customer], meta)

    HANDLERS: ClassVar[dict[str, Callable[[Loyalty, EventRecord], None]]] = {
        "OrderCompleted": _completed,
        "OrderRefunded": _refunded,
        "CustomerIdentityAdded": _linked,
        "CustomerIdentityLinked": _linked,
    }


def review(c: Container, customers: list[str], meta: Meta, *, enrol: bool = True) -> list[str]:
    """Each customer's tier by their spend over the period of the program in force at the
    command's time; answers the customers whose tier was recorded (a first one, a change)."""
    found = c.promotions.program_at(meta.occurred_at)
    if found is None or not customers:
        return []
    _, program = found
    since = meta.occurred_at - timedelta(days=program.period_days)
    spent = purchases.completed_spend(c.read_db, customers, since, meta.occurred_at)
    changed = []
    for customer in customers:
        if c.promotions.review_membership(customer, spent.get(customer, 0), meta=meta, enrol=enrol):
            changed.append(customer)
    return changed


def review_tiers(c: Container, meta: Meta, page: int = SWEEP_BATCH) -> dict[str, int]:
    """The tier sweep: every member's tier again at the command's time, so spend that has
    left the period lowers a tier even when no order comes. Answers how many were reviewed
    and how many changed; a second pass at the same time changes nothing."""
    reviewed = changed = 0
    after = ""
    while members := read.members_after(c.read_db, after, page):
        changed += len(review(c, members, meta, enrol=False))
        reviewed += len(members)
        after = members[-1]
    return {"reviewed": reviewed, "changed": changed}


def member_rate(c: Container, customer_id: str, at: datetime) -> MemberRate | None:
    """The price rate the customer's tier gives at `at`, for a quote (None: no tier then,
    or a tier that takes nothing off). An unknown customer is refused: a quote for them
    would silently be a stranger's price."""
    if customer_status(c.read_db, customer_id) is None:
        raise NotFound(f"customer {customer_id} not found")
    found = read.membership(c.read_db, customer_id, at)
    if found["tier"] is None:
        return None
    terms = c.promotions.tier_terms(int(found["program_version"]), str(found["tier"]))
    if terms is None:
        return None
    return MemberRate(
        customer_id, str(found["tier"]), Decimal(terms["price_rate"]), int(found["program_version"])
    )
