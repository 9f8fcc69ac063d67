"""Fission campaigns (营销裂变): the campaign's versioned rules, each participant with their
invitation code, place in the invite tree, invitations and rewards, the campaign's budget,
and views of its landing page (docs/campaigns.md).

Public methods decide (and raise); the private `@event` methods only assign state.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, Gone, Meta, NotFound, ScrmAggregate, Versions, derived_id


def invitation_code(campaign: str, customer_id: str) -> str:
    """A participant's code, readable and stable: 10 characters of base32 (no 0/1/8/9)."""
    digest = hashlib.sha256(f"fission:{campaign}:{customer_id}".encode()).digest()
    return base64.b32encode(digest[:10]).decode()[:10]


def reward_coupon_code(campaign: str, customer_id: str, tier: int) -> str:
    digest = hashlib.sha256(f"fission-reward:{campaign}:{customer_id}:{tier}".encode()).digest()
    return "FX-" + base64.b32encode(digest[:10]).decode()[:10]


class Campaign(Versions, ScrmAggregate):
    """A campaign's rules, versioned: each decision names the version in force then."""

    VERSION, WHAT, NOT_IN_FORCE = "campaign_version", "campaign", "campaign_not_in_force"

    @staticmethod
    def create_id(key: str) -> UUID:
        return derived_id("campaign", key)

    @event("Published")
    def __init__(self, key: str, definition: dict[str, Any], effective_from: Any, meta: Meta):
        self.key = key
        self.versions = []
        self._add(definition, effective_from, meta)

    def revise(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> int:
        self._revised(
            key=self.key,
            definition=definition,
            effective_from=effective_from,
            campaign_version=len(self.versions) + 1,
            meta=meta,
        )
        return len(self.versions)

    @event("Revised")
    def _revised(
        self,
        key: str,
        definition: dict[str, Any],
        effective_from: Any,
        campaign_version: int,
        meta: Meta,
    ) -> None:
        self._add(definition, effective_from, meta)

    def _add(self, definition: dict[str, Any], effective_from: Any, meta: Meta) -> None:
        self._add_version(
            effective_from, definition=definition, recorded_at=meta.occurred_at, by=meta.actor
        )


class CampaignView(ScrmAggregate):
    """One view of the landing page: appended, never loaded (views are many)."""

    @event("Recorded")
    def __init__(self, campaign: str, code: str | None, meta: Meta):
        self.campaign = campaign


class InvitationCode(ScrmAggregate):
    """Which participant a code belongs to: saved with the participant's joining."""

    @staticmethod
    def create_id(code: str) -> UUID:
        return derived_id("invitation-code", code)

    @event("Claimed")
    def __init__(self, code: str, campaign: str, customer_id: str, meta: Meta):
        self.code = code
        self.campaign = campaign
        self.customer_id = customer_id


class CampaignBudget(ScrmAggregate):
    """What a campaign's rewards have committed (issued or held), against its cap."""

    @staticmethod
    def create_id(campaign: str) -> UUID:
        return derived_id("campaign-budget", campaign)

    @event("Opened")
    def __init__(self, campaign: str, meta: Meta):
        self.campaign = campaign
        self.committed = 0
        self.refs: dict[str, int] = {}

    def reserve(self, ref: str, cost: int, cap: int | None, meta: Meta) -> bool:
        """Commit `cost` for a reward; False (nothing recorded) past the cap."""
        if ref in self.refs:
            return True
        if cap is not None and self.committed + cost > cap:
            return False
        self._reserved(self.campaign, ref, cost, self.committed + cost, meta)
        return True

    @event("Reserved")
    def _reserved(self, campaign: str, ref: str, cost: int, committed: int, meta: Meta) -> None:
        self.committed = committed
        self.refs = {**self.refs, ref: cost}

    def free(self, ref: str, meta: Meta) -> None:
        if ref in self.refs:
            cost = self.refs[ref]
            self._freed(self.campaign, ref, cost, self.committed - cost, meta)

    @event("Freed")
    def _freed(self, campaign: str, ref: str, cost: int, committed: int, meta: Meta) -> None:
        self.committed = committed
        self.refs = {k: v for k, v in self.refs.items() if k != ref}


class Participant(ScrmAggregate):
    """One customer in one campaign: their code, who brought them (the invite tree), the
    invitees they brought, each invitation's flags, and a reward per tier reached, decided
    once. `path` runs from the root of the tree to this participant."""

    @staticmethod
    def create_id(campaign: str, customer_id: str) -> UUID:
        return derived_id("campaign-participant", f"{campaign}:{customer_id}")

    @event("Joined")
    def __init__(
        self,
        campaign: str,
        customer_id: str,
        code: str,
        invited_by: str | None,
        depth: int,
        path: list[str],
        meta: Meta,
    ):
        self.campaign = campaign
        self.customer_id = customer_id
        self.code = code
        self.invited_by = invited_by
        self.depth = depth
        self.path = path
        # invitee -> {"status": arrived|succeeded|rejected, "flags": {reason: open|cleared}}
        self.invites: dict[str, dict[str, Any]] = {}
        self.succeeded: list[str] = []  # invitees in the order their invitations succeeded
        self.rewards: dict[int, dict[str, Any]] = {}  # tier (invites) -> status, cost, ...

    # --- invitations -------------------------------------------------------------------

    def arrive(
        self, invitee: str, device_hash: str | None, ip_hash: str | None, meta: Meta
    ) -> list[str]:
        """An invitee came with this participant's code; answers the flags it raised at once
        (self-invitation, a cycle in the tree). A repeat records nothing."""
        if invitee in self.invites:
            return sorted(self.invites[invitee]["flags"])
        self._arrived(self.campaign, self.customer_id, invitee, device_hash, ip_hash, meta)
        flags = []
        if invitee == self.customer_id:
            flags.append("self_invite")
        elif invitee in self.path:
            flags.append("cycle")
        for reason in flags:
            evidence = {"path": self.path} if reason == "cycle" else {}
            self.flag(invitee, reason, evidence, meta)
        return flags

    @event("InviteeArrived")
    def _arrived(
        self,
        campaign: str,
        customer_id: str,
        invitee: str,
        device_hash: str | None,
        ip_hash: str | None,
        meta: Meta,
    ) -> None:
        self.invites = {**self.invites, invitee: {"status": "arrived", "flags": {}}}

    def flag(self, invitee: str, reason: str, evidence: dict[str, Any], meta: Meta) -> bool:
        """Hold this invitation's rewards for review; once per reason."""
        found = self.invites.get(invitee)
        if found is None or reason in found["flags"]:
            return False
        self._flagged(self.campaign, self.customer_id, invitee, reason, evidence, meta)
        return True

    @event("InviteFlagged")
    def _flagged(
        self,
        campaign: str,
        customer_id: str,
        invitee: str,
        reason: str,
        evidence: dict[str, Any],
        meta: Meta,
    ) -> None:
        found = self.invites[invitee]
        self.invites = {
            **self.invites,
            invitee: {**found, "flags": {**found["flags"], reason: "open"}},
        }

    def succeed(self, invitee: str, how: str, ref: str, meta: Meta) -> bool:
        """The invitee did what counts (added staff, ordered); once per invitation."""
        found = self.invites.get(invitee)
        if found is None or found["status"] != "arrived":
            return False
        count = len(self.counted()) + 1
        self._succeeded(self.campaign, self.customer_id, invitee, how, ref, count, meta)
        return True

    @event("InviteSucceeded")
    def _succeeded(
        self,
        campaign: str,
        customer_id: str,
        invitee: str,
        how: str,
        ref: str,
        count: int,
        meta: Meta,
    ) -> None:
        found = {"status": "succeeded", "how": how, "at": meta.occurred_at.isoformat()}
        self.invites = {**self.invites, invitee: {**self.invites[invitee], **found}}
        self.succeeded = [*self.succeeded, invitee]

    def stayed(self, invitee: str, at: datetime) -> timedelta | None:
        """How long an invitee who added staff stayed before leaving at `at`."""
        found = self.invites.get(invitee)
        if found is None or found.get("how") != "contact_added":
            return None
        return at - datetime.fromisoformat(found["at"])

    def counted(self) -> list[str]:
        """Successful invitations that count toward tiers (not rejected by a reviewer)."""
        return [i for i in self.succeeded if self.invites[i]["status"] == "succeeded"]

    def open_flags(self, invitees: list[str]) -> list[str]:
        return sorted(
            {r for i in invitees for r, s in self.invites[i]["flags"].items() if s == "open"}
        )

    # --- rewards -----------------------------------------------------------------------

    def due_tiers(self, tiers: list[int]) -> list[int]:
        """Tiers reached and not yet decided, lowest first."""
        reached = len(self.counted())
        return [t for t in sorted(tiers) if t <= reached and t not in self.rewards]

    def issue(
        self,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        coupon_code: str | None,
        campaign_version: int,
        meta: Meta,
    ) -> None:
        self._issued(
            self.campaign, self.customer_id, tier, reward, cost, coupon_code, campaign_version,
            self.counted()[:tier], meta,
        )  # fmt: skip

    @event("RewardIssued")
    def _issued(
        self,
        campaign: str,
        customer_id: str,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        coupon_code: str | None,
        campaign_version: int,
        invitees: list[str],
        meta: Meta,
    ) -> None:
        self.rewards = {**self.rewards, tier: {"status": "issued", "cost": cost}}

    def hold(
        self, tier: int, reward: dict[str, Any], cost: int, campaign_version: int, meta: Meta
    ) -> None:
        window = self.counted()[:tier]
        self._held(
            self.campaign, self.customer_id, tier, reward, cost, campaign_version, window,
            self.open_flags(window), meta,
        )  # fmt: skip

    @event("RewardHeld")
    def _held(
        self,
        campaign: str,
        customer_id: str,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        campaign_version: int,
        invitees: list[str],
        reasons: list[str],
        meta: Meta,
    ) -> None:
        self.rewards = {
            **self.rewards,
            tier: {"status": "held", "cost": cost, "reward": reward, "invitees": invitees,
                   "campaign_version": campaign_version},
        }  # fmt: skip

    def withhold(
        self,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        campaign_version: int,
        reason: str,
        meta: Meta,
    ) -> None:
        self._withheld(
            self.campaign, self.customer_id, tier, reward, cost, campaign_version, reason, meta
        )

    @event("RewardWithheld")
    def _withheld(
        self,
        campaign: str,
        customer_id: str,
        tier: int,
        reward: dict[str, Any],
        cost: int,
        campaign_version: int,
        reason: str,
        meta: Meta,
    ) -> None:
        self.rewards = {**self.rewards, tier: {"status": "withheld", "cost": cost}}

    def held(self, tier: int) -> dict[str, Any]:
        """A held reward, for a reviewer; 409 or 410 when it was decided already."""
        found = self.rewards.get(tier)
        if found is None:
            raise NotFound(f"no reward of tier {tier} for this participant")
        if found["status"] == "rejected":
            raise Gone(f"the reward of tier {tier} was rejected", code="reward_rejected")
        if found["status"] == "withheld":
            raise Gone(f"the reward of tier {tier} was withheld", code="reward_withheld")
        if found["status"] != "held":
            raise Conflict(f"the reward of tier {tier} was issued already", code="reward_issued")
        return found

    def release(self, tier: int, note: str, meta: Meta) -> dict[str, Any]:
        found = self.held(tier)
        self._released(self.campaign, self.customer_id, tier, note, found["invitees"], meta)
        return found

    @event("RewardReleased")
    def _released(
        self, campaign: str, customer_id: str, tier: int, note: str, invitees: list[str], meta: Meta
    ) -> None:
        # The reviewer accepted these invitations: their flags are cleared.
        changed = {
            i: {**self.invites[i], "flags": dict.fromkeys(self.invites[i]["flags"], "cleared")}
            for i in invitees
        }
        self.invites = {**self.invites, **changed}
        self.rewards = {**self.rewards, tier: {**self.rewards[tier], "status": "released"}}

    def reject(self, tier: int, note: str, meta: Meta) -> list[str]:
        """Refuse a held reward; the flagged invitations it stood on stop counting."""
        found = self.held(tier)
        flagged = [i for i in found["invitees"] if self.open_flags([i])]
        self._rejected(self.campaign, self.customer_id, tier, note, flagged, meta)
        return flagged

    @event("RewardRejected")
    def _rejected(
        self, campaign: str, customer_id: str, tier: int, note: str, invitees: list[str], meta: Meta
    ) -> None:
        changed = {i: {**self.invites[i], "status": "rejected"} for i in invitees}
        self.invites = {**self.invites, **changed}
        self.rewards = {**self.rewards, tier: {**self.rewards[tier], "status": "rejected"}}
