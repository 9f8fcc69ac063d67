"""The orders context's service layer: platform snapshots in, events out, idempotently.

A push is a batch of one; `scrm orders import` sends batches of many, one transaction each.
Every snapshot is received once (an InboxReceipt keyed by platform and payload digest, saved
with its effects), so a platform's retry changes nothing; a reordered one adds only what is
news (see Order).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID

import orjson

from domain.customers.aggregates import Customer, IdentityClaim, normalise_identity
from domain.customers.merges import follow_merges
from domain.inbox import InboxReceipt
from domain.orders.aggregates import Order
from domain.orders.model import FORWARD, PLATFORMS, STATUSES, OrderSnapshot
from domain.ports import PersonalDataVault
from domain.shared import Gone, InvalidInput, Meta, derived_id
from domain.store import ScrmApplication

MAX_BATCH = 2000


@dataclass(frozen=True)
class OrderOutcome:
    trade_id: str
    order_id: str
    outcome: str  # applied, stale (nothing new), duplicate (this very payload again)


@dataclass(frozen=True)
class ImportResult:
    outcomes: list[OrderOutcome]
    position: int | None

    def count(self, outcome: str) -> int:
        return sum(1 for o in self.outcomes if o.outcome == outcome)


@dataclass(frozen=True)
class PendingBuyer:
    """A platform buyer and what could identify them: a unionid, the phone's keyed hash."""

    platform: str
    buyer_id: str
    unionid: str | None
    phone_key: str | None


def buyer_subject(platform: str, buyer_id: str) -> str:
    """Whose key seals a receiver: the platform buyer, until identity resolution links them
    to a customer (whose erasure then destroys this key too)."""
    return f"{platform}_buyer:{buyer_id}"


def _check(snap: OrderSnapshot) -> None:
    """What every adapter guarantees, checked once more at the boundary of the domain."""
    if snap.platform not in PLATFORMS:
        raise InvalidInput(f"unknown platform {snap.platform!r}", field="platform")
    if snap.status not in STATUSES:
        raise InvalidInput(f"unknown status {snap.status!r}", field="status", code="unknown_status")
    if not snap.trade_id or not snap.buyer_id:
        raise InvalidInput("an order needs its trade id and buyer", field="trade_id")
    if not snap.lines:
        raise InvalidInput("an order needs at least one line", field="lines")
    for name in ("total", "discount", "freight", "payable"):
        value = getattr(snap, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidInput(f"{name} must be a whole number of fen, not negative", field=name)
    if snap.placed_at.tzinfo is None:
        raise InvalidInput("times must be timezone-aware", field="placed_at")


class OrdersApp(ScrmApplication):
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {Order: 50}

    def __init__(
        self,
        vault: PersonalDataVault,
        env: dict[str, str] | None = None,
        *,
        share_with: ScrmApplication | None = None,
    ):
        super().__init__(env, share_with=share_with)
        self.vault = vault

    def receive(self, snap: OrderSnapshot, digest: str, meta: Meta) -> OrderOutcome:
        """One pushed snapshot."""
        return self.receive_batch([(snap, digest)], meta).outcomes[0]

    def receive_batch(self, items: Sequence[tuple[OrderSnapshot, str]], meta: Meta) -> ImportResult:
        """Many snapshots, one transaction: all recorded, or none."""
        if not items:
            raise InvalidInput("a batch needs at least one order", field="orders")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"at most {MAX_BATCH} orders per batch", field="orders")
        for snap, _ in items:
            _check(snap)
        return self.retrying(lambda: self._receive_once(items, meta))

    def _receive_once(self, items: Sequence[tuple[OrderSnapshot, str]], meta: Meta) -> ImportResult:
        receipt_ids = {InboxReceipt.create_id(s.platform, d) for s, d in items}
        order_ids = {Order.create_id(s.platform, s.trade_id) for s, _ in items}
        # The receiver's phone is hashed once per snapshot: the order keeps it, and it is
        # evidence for linking the buyer.
        buyers = [
            PendingBuyer(s.platform, s.buyer_id, s.buyer_unionid, _phone_key(self.vault, s))
            for s, _ in items
        ]
        # One query answers every existence question of the batch (receipts, orders, the
        # buyers' claims and their evidence): a push is a batch of one, and each round trip
        # to the store costs it more CPU than the rest of its checks.
        known = self.existing(receipt_ids | order_ids | _link_query(buyers))
        seen = receipt_ids & known
        stored = order_ids & known
        orders: dict[UUID, Order] = {i: self.repository.get(i) for i in stored}
        self.vault.ensure_keys(
            {derived_id("subject", buyer_subject(s.platform, s.buyer_id)) for s, _ in items}
        )
        receipts: dict[UUID, InboxReceipt] = {}
        outcomes: list[OrderOutcome] = []
        for (snap, digest), buyer in zip(items, buyers, strict=True):
            order_id = Order.create_id(snap.platform, snap.trade_id)
            receipt_id = InboxReceipt.create_id(snap.platform, digest)
            if receipt_id in seen or receipt_id in receipts:
                outcomes.append(OrderOutcome(snap.trade_id, str(order_id), "duplicate"))
                continue
            order = orders.get(order_id)
            applied = order is None
            if order is None:
                order = self._place(snap, meta, buyer.phone_key)
                orders[order_id] = order
            applied = _advance(order, snap, meta) or applied
            outcome = "applied" if applied else "stale"
            receipts[receipt_id] = InboxReceipt(
                source=snap.platform,
                digest=digest,
                kind=f"order:{snap.status}",
                outcome=outcome,
                meta=meta,
            )
            outcomes.append(OrderOutcome(snap.trade_id, str(order_id), outcome))
        links = self._links(buyers, meta, known)
        position = self.save_aggregates([*orders.values(), *receipts.values(), *links])
        return ImportResult(outcomes, position)

    def link_pending(self, buyers: list[PendingBuyer], meta: Meta) -> int:
        """Buyers whose orders came before anything matched them: link those that match now.
        Answers how many were linked. Idempotent (a claimed buyer is skipped)."""

        def attempt() -> int:
            links = self._links(buyers, meta)
            if links:
                self.save_all(*links)
            return sum(1 for a in links if isinstance(a, IdentityClaim))

        return self.retrying(attempt)

    def _links(
        self, buyers: list[PendingBuyer], meta: Meta, known: set[UUID] | None = None
    ) -> list[Any]:
        """A buyer not yet linked to a customer is linked when something verified says who
        they are: the same WeChat unionid, or the same phone (by keyed hash, never in clear).
        The link is a claim on the buyer id plus `CustomerIdentityLinked` (how it matched),
        saved with the orders; a buyer with no match stays pending — their orders wait in
        the read model and follow into the portrait once staff bind them, or a match appears
        (`link_pending`). `known`: which of `_link_query(buyers)` exist, when the caller
        asked already."""
        # Asked in bulk, in one query: which buyers are claimed already, and which of their
        # unionids and phones belong to someone. Only those found are loaded.
        if known is None:
            known = self.existing(_link_query(buyers))
        open_buyers = [b for b in buyers if _claim_of(b) not in known]
        customers: dict[UUID, Customer] = {}
        claims: dict[UUID, IdentityClaim] = {}
        for buyer in open_buyers:
            kind = f"{buyer.platform}_buyer"
            claim_id = _claim_of(buyer)
            if claim_id in claims:
                continue
            for matched_by, key in (("unionid", buyer.unionid), ("phone", buyer.phone_key)):
                evidence_id = IdentityClaim.create_id(matched_by, key) if key else None
                if evidence_id is None or evidence_id not in known:
                    continue
                claim = self.find(IdentityClaim, evidence_id)
                if claim is None:
                    continue
                customer = customers.get(claim.customer_id) or self.find(
                    Customer, claim.customer_id
                )
                if customer is not None and customer.merged_into is not None:
                    # The evidence belongs to a customer merged into another: link there.
                    customer = follow_merges(customer, lambda i: self.find(Customer, i))
                    customer = customers.get(customer.id, customer)
                if customer is None or customer.erasure is not None:
                    break  # a customer who asked to be erased is not processed
                customer.link_identity(kind, buyer.buyer_id, matched_by, meta)
                customers[customer.id] = customer
                claims[claim_id] = IdentityClaim(
                    kind=kind, key=buyer.buyer_id, customer_id=customer.id, meta=meta
                )
                break
        return [*claims.values(), *customers.values()]

    def _place(self, snap: OrderSnapshot, meta: Meta, phone_index: str | None) -> Order:
        subject = buyer_subject(snap.platform, snap.buyer_id)
        sealed = None
        if snap.receiver is not None:
            r = snap.receiver
            try:
                sealed = self.vault.seal(
                    derived_id("subject", subject),
                    orjson.dumps({"name": r.name, "phone": r.phone, "address": r.address}).decode(),
                )
            except Gone:  # the buyer was erased: the order is kept, their details are not
                sealed = None
        buyer = {"kind": f"{snap.platform}_buyer", "id": snap.buyer_id}
        if snap.buyer_unionid:
            buyer["unionid"] = snap.buyer_unionid
        return Order(
            platform=snap.platform,
            trade_id=snap.trade_id,
            shop_id=snap.shop_id,
            buyer=buyer,
            phone_index=phone_index,
            lines=[dict(vars(line)) for line in snap.lines],  # flat: cheaper than asdict
            amounts={
                "total": snap.total,
                "discount": snap.discount,
                "freight": snap.freight,
                "payable": snap.payable,
            },
            region={
                "province": snap.receiver.province if snap.receiver else "",
                "city": snap.receiver.city if snap.receiver else "",
                "district": snap.receiver.district if snap.receiver else "",
            },
            subject=subject,
            sealed_receiver=sealed,
            group_id=snap.group_id,
            meta=_at(meta, snap.placed_at),
        )

    def get(self, order_id: UUID) -> Order:
        return self.load(Order, order_id, "order")


def _claim_of(buyer: PendingBuyer) -> UUID:
    return IdentityClaim.create_id(f"{buyer.platform}_buyer", buyer.buyer_id)


def _link_query(buyers: list[PendingBuyer]) -> set[UUID]:
    """What `_links` asks the store: the buyers' own claims and the claims their unionids
    and phone hashes would match (asked for every buyer; those of a claimed buyer are
    simply not used)."""
    ids = {_claim_of(b) for b in buyers}
    ids.update(
        IdentityClaim.create_id(kind, key)
        for b in buyers
        for kind, key in (("unionid", b.unionid), ("phone", b.phone_key))
        if key
    )
    return ids


def _phone_key(vault: PersonalDataVault, snap: OrderSnapshot) -> str | None:
    """The receiver's phone as the customers context keys phones (normalised, keyed hash)."""
    if snap.receiver is None or not snap.receiver.phone:
        return None
    try:
        return vault.blind_index("phone", normalise_identity("phone", snap.receiver.phone))
    except InvalidInput:  # masked or malformed: no evidence
        return None


def _at(meta: Meta, when: datetime | None) -> Meta:
    """The envelope with the platform's own time for this step (business time)."""
    return dataclasses.replace(meta, occurred_at=when) if when is not None else meta


def _advance(order: Order, snap: OrderSnapshot, meta: Meta) -> bool:
    """Record what the snapshot knows that the order does not yet: the forward steps between,
    a cancellation, new refunds. Answers whether anything was recorded."""
    before = len(order.pending_events)
    latest = max(
        (t for t in (snap.placed_at, snap.paid_at, snap.shipped_at, snap.completed_at) if t),
        default=snap.placed_at,
    )
    # A cancelled snapshot still tells which steps happened before (a paid order closed by a
    # refund was paid): those are recorded first, so the history reads as it went.
    target = snap.status
    if target == "cancelled":
        done = [
            s
            for s, t in zip(
                FORWARD[1:], (snap.paid_at, snap.shipped_at, snap.completed_at), strict=True
            )
            if t
        ]
        target = done[-1] if done else "placed"
    if order.status != "cancelled":
        for status in FORWARD[order.rank() + 1 : FORWARD.index(target) + 1]:
            if status == "paid":
                order.pay(snap.payable, _at(meta, snap.paid_at or latest))
            elif status == "shipped":
                order.ship(snap.carrier, snap.tracking_no, _at(meta, snap.shipped_at or latest))
            else:
                order.complete(_at(meta, snap.completed_at or latest))
        if snap.status == "cancelled":
            order.cancel(snap.cancel_reason or "closed", _at(meta, snap.cancelled_at or latest))
    paid_by_line: dict[str, Any] = {line["line_id"]: line["paid"] for line in order.lines}
    for refund in snap.refunds:
        whole = paid_by_line.get(refund.line_id) if refund.line_id else snap.payable
        order.refund(
            refund.refund_id,
            refund.line_id,
            refund.amount,
            full=whole is not None and refund.amount >= whole,
            meta=_at(meta, refund.refunded_at),
        )
    return len(order.pending_events) > before
