"""The fission process (营销裂变): follows the log behind the read models and turns what
invitees do into counted invitations, rewards and fraud flags (docs/campaigns.md).

- An invitee arrives (`ParticipantInviteeArrived`): too many arrivals of the campaign from one
  device fingerprint or one IP within the burst window flag every one of them.
- The invitee adds a staff member (`CustomerContactAdded`) or places an order
  (`OrderPlaced`, the buyer linked to the customer), whichever the campaign counts, after
  arriving and within the period: the invitation succeeded, and the tiers it reaches are
  decided in the same save (issued with the coupon, held, or withheld by the budget).
- The invitee leaves again (`CustomerContactRemoved`) within `quick_leave_minutes` of the
  success: the invitation is flagged `quick_leave`.

What a round records is decided by the aggregates (one success per invitation, one flag per
reason, one decision per tier), so a round retried, or the log followed again from the
start after a restart or a rebuild, records nothing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import ClassVar

from domain.campaigns.rules import Rules
from infra.events import EventRecord
from infra.processes import BehindTheReadModels
from projections.campaigns import campaigns as read
from projections.customers import purchases

ACTOR, SOURCE = "system:fission", "campaigns"


class Fission(BehindTheReadModels):
    MARK, TABLE = "counted", "fission_positions"

    def _rules(self, campaign: str, at: datetime) -> Rules | None:
        found = self.c.campaigns.rules_at(campaign, at)
        return found[1] if found is not None else None

    def _arrived(self, r: EventRecord) -> None:
        d = r.data
        rules = self._rules(d["campaign"], r.ts())
        if rules is None:
            return
        f = rules.fraud
        for column, reason, limit in (
            ("device_hash", "device_burst", f.device_burst),
            ("ip_hash", "ip_burst", f.ip_burst),
        ):
            value = d.get(column)
            if not value:
                continue
            found = read.burst(
                self.c.read_db, d["campaign"], column, value, r.ts() - f.window, r.ts()
            )
            if len(found) < limit:
                continue
            evidence = {"count": len(found), "threshold": limit, "window_minutes": f.window_minutes}
            meta = r.caused(ACTOR, SOURCE)
            for inviter, invitee in found:
                self.c.campaigns.flag(d["campaign"], inviter, invitee, reason, evidence, meta)

    def _success(self, r: EventRecord, customer: str, how: str, ref: str) -> None:
        at = r.ts()
        for invite in read.arrivals_of(self.c.read_db, customer):
            if invite["status"] != "arrived" or datetime.fromisoformat(invite["arrived_at"]) > at:
                continue
            rules = self._rules(invite["campaign"], at)
            if rules is None or rules.success != how or not rules.open_at(at):
                continue
            self.c.campaigns.succeed(
                invite["campaign"], invite["inviter"], customer, how, ref, r.caused(ACTOR, SOURCE)
            )

    def _contact_added(self, r: EventRecord) -> None:
        if not r.data.get("half"):
            self._success(r, r.originator_id, "contact_added", f"staff:{r.data['staff_id']}")

    def _order_placed(self, r: EventRecord) -> None:
        buyer = r.data.get("buyer") or {}
        customer = purchases.buyer_customer(
            self.c.read_db, buyer.get("kind", ""), buyer.get("id", "")
        )
        if customer is not None:
            self._success(r, customer, "first_order", f"order:{r.originator_id}")

    def _contact_removed(self, r: EventRecord) -> None:
        at = r.ts()
        for invite in read.arrivals_of(self.c.read_db, r.originator_id):
            rules = self._rules(invite["campaign"], at)
            if rules is None:
                continue
            self.c.campaigns.note_leave(
                invite["campaign"], invite["inviter"], r.originator_id,
                timedelta(minutes=rules.fraud.quick_leave_minutes), r.data.get("by", ""),
                r.caused(ACTOR, SOURCE),
            )  # fmt: skip

    HANDLERS: ClassVar[dict[str, Callable[[Fission, EventRecord], None]]] = {
        "ParticipantInviteeArrived": _arrived,
        "CustomerContactAdded": _contact_added,
        "CustomerContactRemoved": _contact_removed,
        "OrderPlaced": _order_placed,
    }
