"""The coupon expiry sweep: the read model finds coupons that lapsed unused, the aggregate
checks and records each (`CouponExpired`). The API and `scrm promotions expire-coupons` run
it; so may a scheduler, as often as it likes (a second pass finds nothing new)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from domain.shared import Meta
from projections.promotions import promotions as read

if TYPE_CHECKING:
    from infra.bootstrap import Container

SWEEP_BATCH = 1000


def sweep_expired(c: Container, meta: Meta) -> list[str]:
    """Codes expired by this pass (at most SWEEP_BATCH; run again for more)."""
    due = read.due_for_expiry(c.read_db, meta.occurred_at, limit=SWEEP_BATCH)
    return c.promotions.expire_coupons(due, meta=meta)
