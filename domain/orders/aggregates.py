"""An e-commerce order (main order with its sub-orders), as a platform reported it.

Platforms push and re-push snapshots, out of order. The Order keeps the furthest status it
has recorded; a snapshot further along adds the steps in between (each with the platform's
own time for it), one that is not adds nothing — a late "paid" never undoes "shipped".
Refunds are facts of their own, once per refund id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.orders.model import FORWARD
from domain.shared import Meta, ScrmAggregate, derived_id


class Order(ScrmAggregate):
    @staticmethod
    def create_id(platform: str, trade_id: str) -> UUID:
        return derived_id(f"order:{platform}", trade_id)

    @event("Placed")
    def __init__(
        self,
        platform: str,
        trade_id: str,
        shop_id: str,
        buyer: dict[str, str],  # {"kind": "<platform>_buyer", "id": ...}, unionid if known
        phone_index: str | None,  # keyed hash of the receiver's phone, for identity links
        lines: list[dict[str, Any]],
        amounts: dict[str, int],  # total, discount, freight, payable (fen)
        region: dict[str, str],  # province, city, district
        subject: str,  # whose key seals the receiver (the platform buyer)
        sealed_receiver: str | None,  # name, phone, street address (personal data)
        group_id: str | None,
        meta: Meta,
    ):
        self.platform = platform
        self.trade_id = trade_id
        self.status = "placed"
        self.refund_ids: tuple[str, ...] = ()
        self.lines = lines

    def rank(self) -> int:
        return len(FORWARD) if self.status == "cancelled" else FORWARD.index(self.status)

    def pay(self, paid: int, meta: Meta) -> None:
        self._paid(paid=paid, meta=meta)

    @event("Paid")
    def _paid(self, paid: int, meta: Meta) -> None:
        self.status = "paid"

    def ship(self, carrier: str | None, tracking_no: str | None, meta: Meta) -> None:
        self._shipped(carrier=carrier, tracking_no=tracking_no, meta=meta)

    @event("Shipped")
    def _shipped(self, carrier: str | None, tracking_no: str | None, meta: Meta) -> None:
        self.status = "shipped"

    def complete(self, meta: Meta) -> None:
        self._completed(meta=meta)

    @event("Completed")
    def _completed(self, meta: Meta) -> None:
        self.status = "completed"

    def cancel(self, reason: str, meta: Meta) -> None:
        self._cancelled(reason=reason, meta=meta)

    @event("Cancelled")
    def _cancelled(self, reason: str, meta: Meta) -> None:
        self.status = "cancelled"

    def refund(
        self, refund_id: str, line_id: str | None, amount: int, full: bool, meta: Meta
    ) -> bool:
        if refund_id in self.refund_ids:
            return False
        self._refunded(refund_id=refund_id, line_id=line_id, amount=amount, full=full, meta=meta)
        return True

    @event("Refunded")
    def _refunded(
        self, refund_id: str, line_id: str | None, amount: int, full: bool, meta: Meta
    ) -> None:
        """`full`: the whole line (or, without a line, the whole order) was refunded."""
        self.refund_ids = (*self.refund_ids, refund_id)
