"""Fission campaigns' service layer: publish a campaign, join it, record views and invitees,
count successful invitations into rewards (issued, held for review, or withheld by the
budget), and review held rewards (docs/campaigns.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from domain.campaigns.aggregates import (
    Campaign,
    CampaignBudget,
    CampaignView,
    InvitationCode,
    Participant,
    invitation_code,
    reward_coupon_code,
)
from domain.campaigns.rules import Rules
from domain.customers.aggregates import Customer
from domain.promotions.aggregates import Coupon
from domain.shared import (
    Conflict,
    Gone,
    InvalidInput,
    Meta,
    NotFound,
    Recorded,
    require_slug,
    require_text,
)
from domain.store import ScrmApplication


@dataclass(frozen=True)
class Joined:
    campaign: str
    customer_id: str
    code: str
    depth: int
    path: list[str]
    position: int | None
    link: str | None = None
    invited_by: str | None = None
    flags: tuple[str, ...] = ()


class CampaignsApp(ScrmApplication):
    def __init__(self, hasher: Any, env: dict[str, str] | None = None, *, share_with: Any = None):
        super().__init__(env, share_with=share_with)
        # The vault's keyed hash: device fingerprints and IPs are compared, never kept.
        self.hasher = hasher
        self._rules: dict[tuple[str, int], Rules] = {}  # a recorded version never changes

    # --- the campaign --------------------------------------------------------------------

    def publish(
        self,
        key: str,
        definition: Any,
        *,
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        return self.publish_version(
            Campaign,
            key,
            definition,
            parse=Rules.parse,
            effective_from=effective_from,
            expected_version=expected_version,
            meta=meta,
        )

    def campaign(self, key: str) -> Campaign:
        require_slug(key, "key")
        return self.load(Campaign, Campaign.create_id(key), f"campaign {key}")

    def rules_at(self, key: str, at: datetime) -> tuple[int, Rules] | None:
        found = self.find(Campaign, Campaign.create_id(key))
        version = found.in_force(at) if found is not None else None
        if version is None:
            return None
        number = int(version["campaign_version"])
        if (key, number) not in self._rules:
            self._rules[(key, number)] = Rules.parse(version["definition"])
        return number, self._rules[(key, number)]

    def _open(self, key: str, at: datetime) -> tuple[int, Rules]:
        self.campaign(key)
        found = self.rules_at(key, at)
        if found is None:
            raise Conflict(f"campaign {key} is not in force yet", code="campaign_not_started")
        rules = found[1]
        if at < rules.starts_at:
            raise Conflict(
                f"campaign {key} starts at {rules.starts_at.isoformat()}",
                code="campaign_not_started",
            )
        if at >= rules.ends_at:
            raise Gone(
                f"campaign {key} ended at {rules.ends_at.isoformat()}", code="campaign_ended"
            )
        return found

    def _customer(self, customer_id: str, field: str = "customer_id") -> str:
        try:
            ident = UUID(customer_id)
        except (ValueError, AttributeError, TypeError):
            raise InvalidInput(f"{field} must be a customer's id", field=field) from None
        if self.find(Customer, ident) is None:
            raise NotFound(f"customer {customer_id} not found")
        return str(ident)

    def participant(self, key: str, customer_id: str) -> Participant:
        return self.load(
            Participant, Participant.create_id(key, customer_id), "participant of " + key
        )

    # --- joining, views, invitees ----------------------------------------------------------

    def _joined(
        self, p: Participant, rules: Rules, position: int | None, flags: Any = ()
    ) -> Joined:
        link = f"{rules.landing_url}?invite={p.code}" if rules.landing_url else None
        return Joined(
            p.campaign, p.customer_id, p.code, p.depth, p.path, position, link, p.invited_by,
            tuple(flags),
        )  # fmt: skip

    def join(self, key: str, customer_id: str, *, meta: Meta) -> Joined:
        """A customer joins at the root of the tree and gets their code; joining again
        answers the same code and records nothing."""
        _, rules = self._open(key, meta.occurred_at)
        customer = self._customer(customer_id)

        def attempt() -> Joined:
            found = self.find(Participant, Participant.create_id(key, customer))
            if found is not None:
                return self._joined(found, rules, None)
            p, claim = self._new_participant(key, customer, None, meta)
            return self._joined(p, rules, self.save_all(p, claim))

        return self.retrying(attempt)

    def _new_participant(
        self, key: str, customer: str, inviter: Participant | None, meta: Meta
    ) -> tuple[Participant, InvitationCode]:
        code = invitation_code(key, customer)
        claim = InvitationCode(code=code, campaign=key, customer_id=customer, meta=meta)
        p = Participant(
            campaign=key,
            customer_id=customer,
            code=code,
            invited_by=inviter.customer_id if inviter else None,
            depth=inviter.depth + 1 if inviter else 0,
            path=[*(inviter.path if inviter else []), customer],
            meta=meta,
        )
        return p, claim

    def record_view(self, key: str, code: str | None, *, meta: Meta) -> int | None:
        self.campaign(key)
        if code is not None:
            require_slug(code, "code")
        return self.save_all(CampaignView(campaign=key, code=code, meta=meta))

    def invite(
        self,
        key: str,
        code: str,
        customer_id: str,
        *,
        device: str | None,
        ip: str | None,
        meta: Meta,
    ) -> Joined:
        """An invitee arrived with a participant's code: they join under the inviter (depth,
        path), and the inviter's invitation is on record with its device and IP (hashed).
        Inviting yourself, or someone above you in the tree, is recorded and flagged; anyone
        else already in the campaign is a 409."""
        require_slug(code, "code")
        for name, value in (("device", device), ("ip", ip)):
            if value is not None:
                require_text(value, name, max_len=200)
        _, rules = self._open(key, meta.occurred_at)
        invitee = self._customer(customer_id)
        claim = self.find(InvitationCode, InvitationCode.create_id(code))
        if claim is None or claim.campaign != key:
            raise NotFound(f"invitation code {code} not found in campaign {key}")
        device_hash = self.hasher.blind_index("device", device) if device else None
        ip_hash = self.hasher.blind_index("ip", ip) if ip else None

        def attempt() -> Joined:
            inviter = self.participant(key, claim.customer_id)
            before = inviter.version
            known = self.find(Participant, Participant.create_id(key, invitee))
            # Only yourself, or someone above you in the tree, is recorded (and flagged).
            elsewhere = invitee != inviter.customer_id and invitee not in inviter.path
            if known is not None and invitee not in inviter.invites and elsewhere:
                raise Conflict(
                    f"customer {invitee} is in campaign {key} already",
                    code="already_participant",
                    field="customer_id",
                )
            flags = inviter.arrive(invitee, device_hash, ip_hash, meta)
            if known is not None:
                position = self.save_all(inviter) if inviter.version != before else None
                return self._joined(known, rules, position, flags)
            p, invitee_claim = self._new_participant(key, invitee, inviter, meta)
            return self._joined(p, rules, self.save_all(inviter, p, invitee_claim), flags)

        return self.retrying(attempt)

    # --- what the fission process records ---------------------------------------------------

    def flag(
        self,
        key: str,
        inviter: str,
        invitee: str,
        reason: str,
        evidence: dict[str, Any],
        meta: Meta,
    ) -> bool:
        def attempt() -> bool:
            p = self.find(Participant, Participant.create_id(key, inviter))
            if p is None or not p.flag(invitee, reason, evidence, meta):
                return False
            self.save_all(p)
            return True

        return self.retrying(attempt)

    def note_leave(
        self, key: str, inviter: str, invitee: str, within: timedelta, by: str, meta: Meta
    ) -> bool:
        """The invitee left again: flagged `quick_leave` when within `within` of adding."""

        def attempt() -> bool:
            p = self.find(Participant, Participant.create_id(key, inviter))
            stayed = p.stayed(invitee, meta.occurred_at) if p is not None else None
            if p is None or stayed is None or not timedelta(0) <= stayed <= within:
                return False
            evidence = {"stayed_minutes": int(stayed.total_seconds() // 60), "by": by}
            if not p.flag(invitee, "quick_leave", evidence, meta):
                return False
            self.save_all(p)
            return True

        return self.retrying(attempt)

    def succeed(self, key: str, inviter: str, invitee: str, how: str, ref: str, meta: Meta) -> bool:
        """Count a successful invitation and decide the tiers it reaches, in one save."""

        def attempt() -> bool:
            p = self.find(Participant, Participant.create_id(key, inviter))
            if p is None or not p.succeed(invitee, how, ref, meta):
                return False
            self.save_all(p, *self._decide(p, meta))
            return True

        return self.retrying(attempt)

    def _decide(self, p: Participant, meta: Meta) -> list[Any]:
        """Each tier newly reached: held when an invitation it stands on is flagged, withheld
        past the budget cap, issued otherwise (a coupon saved with it)."""
        found = self.rules_at(p.campaign, meta.occurred_at)
        if found is None:
            return []
        version, rules = found
        due = p.due_tiers([t.invites for t in rules.tiers])
        if not due:
            return []
        budget = self._budget(p.campaign, meta)
        out: list[Any] = [budget]
        for invites in due:
            tier = rules.tier(invites)
            assert tier is not None
            reward, cost = tier.reward.as_dict(), tier.reward.cost
            ref = f"{p.customer_id}:{invites}"
            if not budget.reserve(ref, cost, rules.budget, meta):
                p.withhold(invites, reward, cost, version, "budget_exhausted", meta)
            elif p.open_flags(p.counted()[:invites]):
                p.hold(invites, reward, cost, version, meta)
            else:
                out.extend(self._issue(p, invites, reward, cost, version, meta))
        return out

    def _budget(self, key: str, meta: Meta) -> CampaignBudget:
        found = self.find(CampaignBudget, CampaignBudget.create_id(key))
        return found if found is not None else CampaignBudget(campaign=key, meta=meta)

    def _issue(
        self,
        p: Participant,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        version: int,
        meta: Meta,
    ) -> list[Any]:
        terms = reward.get("coupon")
        if terms is None:  # a gift: the event is what fulfilment follows
            p.issue(tier, reward, cost, None, version, meta)
            return []
        code = reward_coupon_code(p.campaign, p.customer_id, tier)
        if self.find(Coupon, Coupon.create_id(code)) is not None:  # pragma: no cover
            p.issue(tier, reward, cost, code, version, meta)
            return []
        coupon = Coupon(
            code=code,
            customer_id=p.customer_id,
            kind=terms["kind"],
            value=terms["value"],
            min_spend=terms["min_spend"],
            valid_from=meta.occurred_at,
            expires_at=meta.occurred_at + timedelta(days=terms["valid_days"]),
            issued_by="campaign",
            issuer_ref=f"campaign:{p.campaign}:tier:{tier}",
            meta=meta,
        )
        p.issue(tier, reward, cost, code, version, meta)
        return [coupon]

    # --- review ----------------------------------------------------------------------------

    def release(self, key: str, customer_id: str, tier: int, note: str, *, meta: Meta) -> Recorded:
        """A reviewer accepts a held reward: issued now (its coupon with it)."""
        require_text(note, "note", max_len=500, allow_empty=True)

        def attempt() -> Recorded:
            p = self.participant(key, customer_id)
            held = p.release(tier, note, meta)
            extra = self._issue(
                p, tier, held["reward"], held["cost"], held["campaign_version"], meta
            )
            # Tiers reached meanwhile may stand on the invitations just cleared.
            more = self._decide(p, meta)
            return Recorded(p.customer_id, self.save_all(p, *extra, *more), p.version)

        return self.retrying(attempt)

    def reject(self, key: str, customer_id: str, tier: int, note: str, *, meta: Meta) -> Recorded:
        """A reviewer refuses a held reward: its budget is freed, and the flagged invitations
        it stood on no longer count."""
        require_text(note, "note", max_len=500)

        def attempt() -> Recorded:
            p = self.participant(key, customer_id)
            p.reject(tier, note, meta)
            budget = self._budget(key, meta)
            budget.free(f"{p.customer_id}:{tier}", meta)
            return Recorded(p.customer_id, self.save_all(p, budget), p.version)

        return self.retrying(attempt)
