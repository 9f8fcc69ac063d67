"""Fission campaigns (营销裂变, docs/campaigns.md): publish a campaign, join it, record views
and invitees, show a participant and the campaign's funnel, review held rewards.

Admins and managers publish campaigns and review held rewards; staff (and the landing page's
backend, with a staff token) record joins, views and invitees; every reader sees them.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
    WriterScope,
)
from api.schemas.campaigns import CampaignJoin, CampaignViewed, InviteeArrival, RewardReview
from api.schemas.customers import ConfigChange
from domain.shared import NotFound
from projections.campaigns import campaigns as read

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


@router.put("/{key}", status_code=201)
def publish(
    key: str, body: ConfigChange, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    """The next version of a campaign: period, success, tiers, budget, fraud thresholds."""
    r = c.campaigns.publish(
        key,
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"campaign": key, "campaign_version": r.version, "position": r.position}


@router.get("", dependencies=[ReadYourWrites])
def campaigns(c: ContainerDep, _: ReaderScope) -> object:
    return {"items": read.campaigns(c.read_db)}


@router.get("/{key}")
def campaign(key: str, c: ContainerDep, _: ReaderScope, as_of: datetime | None = None) -> object:
    """Every version on record and the one in force at `as_of` (default now)."""
    at = as_of or datetime.now(UTC)
    found = c.campaigns.campaign(key)
    in_force = found.in_force(at)
    return {
        "campaign": key,
        "as_of": at.isoformat(),
        "in_force": in_force["campaign_version"] if in_force else None,
        "versions": found.versions,
    }


@router.post("/{key}/participants", status_code=201)
def join(
    key: str, body: CampaignJoin, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    """Join at the root of the tree: the participant's code and link (the same again on a
    retry, position null)."""
    return asdict(c.campaigns.join(key, body.customer_id, meta=meta))


@router.post("/{key}/views", status_code=202)
def view(
    key: str, body: CampaignViewed, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    return {"position": c.campaigns.record_view(key, body.code, meta=meta)}


@router.post("/{key}/invitations", status_code=201)
def invitation(
    key: str, body: InviteeArrival, c: ContainerDep, _: WriterScope, meta: CommandMeta
) -> object:
    """An invitee arrived with a code: they join under its owner. Answers the invitee's own
    code, depth and path, and the flags raised at once (self_invite, cycle)."""
    return asdict(
        c.campaigns.invite(
            key, body.code, body.customer_id, device=body.device, ip=body.ip, meta=meta
        )
    )


@router.get("/{key}/participants/{customer_id}", dependencies=[ReadYourWrites])
def participant(key: str, customer_id: str, c: ContainerDep, _: ReaderScope) -> object:
    """Code, place in the tree, invitations with their flags, rewards."""
    found = read.participant(c.read_db, key, customer_id)
    if found is None:
        raise NotFound(f"customer {customer_id} is not in campaign {key}")
    return found


@router.get("/{key}/rewards", dependencies=[ReadYourWrites])
def rewards(
    key: str,
    c: ContainerDep,
    _: ReaderScope,
    status: Literal["issued", "held", "withheld", "released", "rejected"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Rewards by state; `status=held` is the review queue."""
    return {"items": read.rewards(c.read_db, key, status=status, limit=limit)}


@router.get("/{key}/flags", dependencies=[ReadYourWrites])
def flags(key: str, c: ContainerDep, _: ReaderScope) -> object:
    return {"items": read.flags_of(c.read_db, key)}


@router.post("/{key}/participants/{customer_id}/rewards/{tier}/release")
def release(
    key: str,
    customer_id: str,
    tier: int,
    body: RewardReview,
    c: ContainerDep,
    _: ManagerScope,
    meta: CommandMeta,
) -> object:
    r = c.campaigns.release(key, customer_id, tier, body.note, meta=meta)
    return {"status": "issued", "position": r.position}


@router.post("/{key}/participants/{customer_id}/rewards/{tier}/reject")
def reject(
    key: str,
    customer_id: str,
    tier: int,
    body: RewardReview,
    c: ContainerDep,
    _: ManagerScope,
    meta: CommandMeta,
) -> object:
    r = c.campaigns.reject(key, customer_id, tier, body.note, meta=meta)
    return {"status": "rejected", "position": r.position}


@router.get("/{key}/stats", dependencies=[ReadYourWrites])
def stats(key: str, c: ContainerDep, _: ReaderScope) -> object:
    """Funnel (views → joins → invitees → successful invites → rewards), propagation depth
    and breadth, and cost per acquired customer (fen)."""
    c.campaigns.campaign(key)
    return read.stats(c.read_db, key)
