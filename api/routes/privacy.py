"""Erasure requests (PIPL Art. 47), legal holds and the retention policy.

Admins make these changes (the data protection officer's role); auditors read them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReadYourWrites
from api.schemas.privacy import ErasureCreate, LegalHoldCreate, RetentionPolicyChange
from domain.customers import privacy
from domain.scope import Scope
from domain.shared import Forbidden, InvalidInput
from infra.jobs import apply_erasures, last_contact_reader
from projections.customers.privacy import list_erasures, list_holds, list_policies

router = APIRouter(prefix="/v1", tags=["privacy"])


def _admin(scope: Scope) -> None:
    if scope.role != "admin":
        raise Forbidden("only an admin (the data protection officer) can do this")


def _reader(scope: Scope) -> None:
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("erasures, holds and retention are read by admins and auditors")


def _outcome(o: privacy.ErasureOutcome) -> dict[str, Any]:
    return {
        "customer_id": str(o.customer_id),
        "status": o.status,
        "retained_until": o.retained_until,
        "legal_holds": o.holds,
        "policy_version": o.policy_version,
        "keys_destroyed": o.destroyed,
        "position": o.position,
    }


@router.post("/customers/{customer_id}/erasure-requests", status_code=202)
def request_erasure(
    customer_id: UUID, body: ErasureCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """Restricts the customer at once; erases now unless a retention period or a legal
    hold still needs the content (then `status` is restricted and says until when)."""
    _admin(scope)
    outcome = privacy.request_erasure(
        c.customers,
        customer_id,
        received_via=body.received_via,
        now=datetime.now(UTC),
        last_contact=last_contact_reader(c),
        meta=meta,
    )
    return _outcome(outcome)


@router.get("/erasure-requests", dependencies=[ReadYourWrites])
def erasure_requests(
    c: ContainerDep,
    scope: CurrentScope,
    status: Literal["restricted", "erased"] | None = None,
    customer_id: UUID | None = None,
) -> object:
    _reader(scope)
    found = list_erasures(
        c.read_db, status=status, customer_id=str(customer_id) if customer_id else None
    )
    return {"items": found}


@router.post("/legal-holds", status_code=201)
def place_hold(
    body: LegalHoldCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    _admin(scope)
    try:
        customer_id = UUID(body.customer_id)
    except ValueError:
        raise InvalidInput("customer_id must be a UUID", field="customer_id") from None
    hold_id, position = privacy.place_legal_hold(
        c.customers,
        customer_id,
        case_reference=body.case_reference,
        authority=body.authority,
        meta=meta,
    )
    return {"hold_id": str(hold_id), "position": position}


@router.post("/legal-holds/{hold_id}/release")
def release_hold(hold_id: UUID, c: ContainerDep, scope: CurrentScope, meta: CommandMeta) -> object:
    """Releases the hold; an erasure that waited only for it is carried out at once."""
    _admin(scope)
    position, outcome = privacy.release_legal_hold(
        c.customers,
        hold_id,
        now=datetime.now(UTC),
        last_contact=last_contact_reader(c),
        meta=meta,
    )
    return {"position": position, "erasure": _outcome(outcome) if outcome else None}


@router.get("/legal-holds", dependencies=[ReadYourWrites])
def legal_holds(
    c: ContainerDep,
    scope: CurrentScope,
    status: Literal["active", "released"] | None = None,
    customer_id: UUID | None = None,
) -> object:
    _reader(scope)
    return {
        "items": list_holds(
            c.read_db, status=status, customer_id=str(customer_id) if customer_id else None
        )
    }


@router.put("/retention-policy")
def set_retention_policy(
    body: RetentionPolicyChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """Publishes the next version; it decides erasures from `effective_from` (default now)."""
    _admin(scope)
    version, position = privacy.set_retention_policy(
        c.customers,
        industry=body.industry,
        communications_years=body.communications_years,
        effective_from=body.effective_from or datetime.now(UTC),
        meta=meta,
    )
    return {"policy_version": version, "position": position}


@router.get("/retention-policy", dependencies=[ReadYourWrites])
def retention_policy(c: ContainerDep, scope: CurrentScope) -> object:
    _reader(scope)
    return {"versions": list_policies(c.read_db), "industry_presets": privacy.INDUSTRY_PRESETS}


@router.post("/privacy/runs")
async def run_privacy(c: ContainerDep, scope: CurrentScope) -> object:
    """Runs the scheduled process now (it also runs every scheduler interval). It decides
    as of the server's clock: no caller can move time forward to erase early."""
    _admin(scope)
    run = await run_in_threadpool(apply_erasures, c)
    return {
        "erased": run.erased,
        "waiting": run.waiting,
        "keys_destroyed": run.keys_destroyed,
        "failed": run.failed,
    }
