"""Settlement (多档位结算): rule sets, payee groups and payees, earnings as they accrue,
corrections, disputes, closing periods, statements, payouts, the ledger and regional trends.

Admins (finance) configure, close and pay; managers register payees and see their region's
trends; staff (installers) see and dispute their own earnings; auditors read everything.
Every change answers the position of its last event, for read-your-writes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    CurrentScope,
    IfMatch,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
)
from api.responses import OrjsonResponse
from api.schemas.customers import ConfigChange
from api.schemas.settlement import (
    CorrectionCreate,
    DisputeCreate,
    DisputeResolution,
    GroupCreate,
    ItemCreate,
    PayeeChange,
    PayeeCreate,
)
from domain.scope import Scope
from domain.settlement.rules import Facts
from domain.shared import Forbidden, InvalidInput, NotFound
from infra.bootstrap import Container
from infra.events import sortable_time
from infra.settlement import close_period, issue_payouts, line_ref, volumes
from projections.settlement import ledger
from projections.settlement import settlement as read

router = APIRouter(prefix="/v1", tags=["settlement"])


def _finance(scope: Scope) -> None:
    if scope.role != "admin":
        raise Forbidden("only finance (the admin role) can do this")


def _own_payee(c: Container, scope: Scope, payee_id: str) -> dict[str, Any]:
    """The payee, if the caller may see it: staff see only their own."""
    found = read.payee(c.read_db, payee_id)
    if found is None:
        raise NotFound(f"payee {payee_id} not found")
    if scope.role == "staff" and found["staff_id"] != scope.staff_id:
        raise Forbidden("staff see only their own earnings")
    if scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    return found


# --- rule sets and groups -----------------------------------------------------------------


@router.put("/settlement/rule-sets/{key}", status_code=201)
def publish_rule_set(
    key: str, body: ConfigChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The next version of a rule set (see docs/settlement.md for the components)."""
    _finance(scope)
    r = c.settlement.publish_rules(
        key,
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"rule_set": key, "rule_version": r.version, "position": r.position}


@router.get("/settlement/rule-sets", dependencies=[ReadYourWrites])
def rule_sets(c: ContainerDep, _: ReaderScope) -> object:
    return {"items": read.rule_versions(c.read_db)}


@router.get("/settlement/rule-sets/{key}", dependencies=[ReadYourWrites])
def rule_set(key: str, c: ContainerDep, _: ReaderScope) -> object:
    versions = read.rule_versions(c.read_db, key)
    if not versions:
        raise NotFound(f"rule set {key} not found")
    now = sortable_time(datetime.now(UTC))
    in_force = [v for v in versions if v["effective_from"] <= now]
    return {
        "rule_set": key,
        "in_force": max(in_force, key=lambda v: (v["effective_from"], v["rule_version"]))[
            "rule_version"
        ]
        if in_force
        else None,
        "versions": versions,
    }


@router.post("/settlement/groups", status_code=201)
def define_group(
    body: GroupCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    _finance(scope)
    r = c.settlement.define_group(
        body.key, name=body.name, cycle=body.cycle, timezone=body.timezone, meta=meta
    )
    return {"key": r.id, "position": r.position}


@router.get("/settlement/groups", dependencies=[ReadYourWrites])
def groups(c: ContainerDep, _: ReaderScope) -> object:
    return {"items": read.groups(c.read_db)}


# --- payees -------------------------------------------------------------------------------


@router.post("/payees", status_code=201)
def register_payee(
    body: PayeeCreate, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    r = c.settlement.register_payee(
        body.payee_id,
        kind=body.kind,
        name=body.name,
        group=body.group,
        rule_set=body.rule_set,
        region=body.region,
        parent=body.parent,
        staff_id=body.staff_id,
        shops=body.shops,
        account=body.account,
        meta=meta,
    )
    return {"payee_id": r.id, "version": r.version, "position": r.position}


@router.patch("/payees/{payee_id}")
def change_payee(
    payee_id: str,
    body: PayeeChange,
    c: ContainerDep,
    _: ManagerScope,
    meta: CommandMeta,
    expected: IfMatch,
) -> object:
    changes = body.model_dump(exclude_unset=True)
    if not changes:
        raise InvalidInput("name at least one field to change", field="body")
    r = c.settlement.change_payee(payee_id, changes, expected_version=expected, meta=meta)
    return {"payee_id": r.id, "version": r.version, "position": r.position}


@router.get("/payees/{payee_id}", dependencies=[ReadYourWrites])
def payee(payee_id: str, c: ContainerDep, scope: CurrentScope) -> object:
    return _own_payee(c, scope, payee_id)


@router.get("/payees/{payee_id}/earnings", dependencies=[ReadYourWrites])
def earnings(
    payee_id: str,
    c: ContainerDep,
    scope: CurrentScope,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> object:
    """The payee's lines as they accrue (a feed: pass `after` = the last position seen), and
    what each open period holds so far."""
    _own_payee(c, scope, payee_id)
    lines = read.earnings(c.read_db, payee_id, after=after, limit=limit)
    return OrjsonResponse(
        {
            "payee_id": payee_id,
            "open_periods": read.open_totals(c.read_db, payee_id),
            "lines": lines,
            "next_after": lines[-1]["position"] if len(lines) == limit else None,
        }
    )


@router.get("/payees/{payee_id}/statements", dependencies=[ReadYourWrites])
def statements(payee_id: str, c: ContainerDep, scope: CurrentScope) -> object:
    _own_payee(c, scope, payee_id)
    return {"payee_id": payee_id, "items": read.statements(c.read_db, payee_id)}


@router.get("/payees/{payee_id}/statements/{group}/{period}", dependencies=[ReadYourWrites])
def statement(
    payee_id: str, group: str, period: str, c: ContainerDep, scope: CurrentScope
) -> object:
    """One closed period's statement: every line with its source, component, rule set version
    and inputs, and the total."""
    _own_payee(c, scope, payee_id)
    found = read.statement(c.read_db, payee_id, group, period)
    if found is None:
        raise NotFound(f"no statement for {payee_id} in period {period} of {group}")
    # Straight to orjson: the rows are plain JSON values already (as the tickets board).
    return OrjsonResponse(found)


# --- items, corrections, disputes ---------------------------------------------------------


@router.post("/settlement/items", status_code=201)
def record_item(body: ItemCreate, c: ContainerDep, _: ManagerScope, meta: CommandMeta) -> object:
    occurred = body.occurred_at
    if occurred.tzinfo is None:
        raise InvalidInput("occurred_at must include a timezone", field="occurred_at")
    facts = Facts(
        kind=body.kind,
        payee_id=body.payee_id,
        occurred_at=occurred.astimezone(UTC),
        service_type=body.service_type,
        template=body.template,
        region=body.region,
        distance_km=Decimal(body.distance_km) if body.distance_km else None,
        urgency=body.urgency,
        rating=body.rating,
        materials_supplied_by=body.materials_supplied_by,
        materials_fee=body.materials_fee,
        amount=body.amount,
    )
    if body.kind == "sale" and not body.amount:
        raise InvalidInput("a sale needs its amount in fen", field="amount")
    item_meta = replace(meta, occurred_at=facts.occurred_at)
    a = c.settlement.accrue(body.source, facts, volumes(c), item_meta)
    return {
        "earning_id": a.id,
        "source": a.source,
        "created": a.created,
        "held": a.held,
        "lines": a.lines,
        "position": a.position,
    }


@router.get("/settlement/held", dependencies=[ReadYourWrites])
def held(c: ContainerDep, _: ReaderScope) -> object:
    """Earnings that could not be priced yet, with the reason (no payee, no price)."""
    return {"items": read.held(c.read_db)}


@router.post("/settlement/corrections", status_code=201)
def correct(
    body: CorrectionCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """Re-price an item under another rule set version: the difference is posted in the current
    cycle, naming the version it corrects. The item's closed statement stays as it was."""
    _finance(scope)
    a = c.settlement.correct(
        body.source,
        rule_version=body.rule_version,
        reason=body.reason,
        volumes_for=volumes(c),
        meta=meta,
    )
    return {"source": a.source, "lines": a.lines, "position": a.position}


@router.post("/settlement/disputes", status_code=201)
def dispute(body: DisputeCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta) -> object:
    """A payee disputes one line of their earnings (staff: their own)."""
    source, index, payee_id = line_ref(c, body.line_id)
    if scope.role not in ("admin", "manager", "staff"):
        raise Forbidden(f"the {scope.role} role cannot dispute")
    _own_payee(c, scope, payee_id)
    r = c.settlement.dispute(source, index, body.reason, meta)
    return {"dispute_id": r.id, "position": r.position}


@router.get("/settlement/disputes", dependencies=[ReadYourWrites])
def disputes(
    c: ContainerDep,
    scope: CurrentScope,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
) -> object:
    if scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    payee_id = None
    if scope.role == "staff":
        payee_id = read.payee_of_staff(c.read_db, scope.staff_id or "") or "-"
    return {"items": read.disputes(c.read_db, status=status, payee_id=payee_id)}


@router.post("/settlement/disputes/{dispute_id}/resolution", status_code=201)
def resolve(
    dispute_id: str,
    body: DisputeResolution,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
) -> object:
    """Finance resolves: an adjustment (posted in the current cycle) or a rejection."""
    _finance(scope)
    source = read.dispute_source(c.read_db, dispute_id)
    if source is None:
        raise NotFound(f"dispute {dispute_id} not found")
    r = c.settlement.resolve_dispute(
        source, dispute_id, outcome=body.outcome, amount=body.amount, note=body.note, meta=meta
    )
    return {"dispute_id": r.id, "outcome": body.outcome, "position": r.position}


# --- periods, payouts ---------------------------------------------------------------------


@router.post("/settlement/groups/{group}/periods/{period}/close", status_code=201)
def close(
    group: str, period: str, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The settlement run: closes the period (once it is over) and answers its totals."""
    _finance(scope)
    r = close_period(c, group, period, meta)
    c.engine.wait_for(r.position or 0, c.settings.min_position_timeout, names=["settlement"])
    return {**(read.closed(c.read_db, group, period) or {}), "position": r.position}


@router.get("/settlement/groups/{group}/periods/{period}", dependencies=[ReadYourWrites])
def period_summary(group: str, period: str, c: ContainerDep, _: ReaderScope) -> object:
    found = read.closed(c.read_db, group, period)
    if found is None:
        c.settlement.period(group, period)  # 404 / 422 for a group or period that is not one
        return {"group_key": group, "period": period, "closed": False}
    return {**found, "closed": True}


@router.post("/settlement/groups/{group}/periods/{period}/payouts", status_code=201)
def payouts_for(
    group: str, period: str, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """Pay everyone a closed period owes; asking again pays nobody twice."""
    _finance(scope)
    assert c.payout_gateway is not None
    return {"items": issue_payouts(c, group, period, c.payout_gateway, meta)}


@router.post("/payouts/{payout_id}/retry", status_code=201)
def retry_payout(
    payout_id: UUID, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    _finance(scope)
    assert c.payout_gateway is not None
    p = c.settlement.retry_payout(payout_id, c.payout_gateway, meta)
    return {
        "payout_id": str(p.id),
        "status": p.status,
        "attempt": p.attempt,
        "idempotency_key": p.idempotency_key,
    }


@router.get("/payouts", dependencies=[ReadYourWrites])
def payouts(
    c: ContainerDep,
    scope: CurrentScope,
    payee_id: str | None = None,
    group: str | None = None,
    period: str | None = None,
) -> object:
    if scope.role == "staff":
        own = read.payee_of_staff(c.read_db, scope.staff_id or "")
        if payee_id is not None and payee_id != own:
            raise Forbidden("staff see only their own payouts")
        payee_id = own or "-"
    elif scope.role == "regulator":
        raise Forbidden("regulators receive exports only")
    return {"items": read.payouts(c.read_db, payee_id=payee_id, group=group, period=period)}


# --- trends and the ledger ----------------------------------------------------------------


@router.get("/dashboards/settlement", dependencies=[ReadYourWrites])
def trends(
    c: ContainerDep,
    scope: CurrentScope,
    region: Annotated[str | None, Query(max_length=80)] = None,
    group: Annotated[str | None, Query(max_length=64)] = None,
) -> object:
    """Settlement by period, component and payee (store, installer) for a region's payees."""
    if scope.role not in ("admin", "manager", "auditor"):
        raise Forbidden("settlement trends are for managers, finance and auditors")
    return {
        "as_of": c.as_of("settlement"),
        "region": region,
        "items": read.trends(c.read_db, region=region, group=group),
    }


def _auditing(scope: Scope) -> None:
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("the ledger is for finance and auditors")


@router.get("/ledger/balances", dependencies=[ReadYourWrites])
def balances(
    c: ContainerDep,
    scope: CurrentScope,
    as_of: datetime | None = None,
    prefix: Annotated[str | None, Query(max_length=100)] = None,
) -> object:
    """Every account's balance, now or as of a business time."""
    _auditing(scope)
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput("as_of must include a timezone", field="as_of")
    at = sortable_time(as_of) if as_of else None
    return {"as_of": at, "balances": ledger.balances(c.read_db, as_of=at, prefix=prefix)}


@router.get("/ledger/accounts/{account}", dependencies=[ReadYourWrites])
def account(
    account: str,
    c: ContainerDep,
    scope: CurrentScope,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    since: datetime | None = None,
    until: datetime | None = None,
) -> object:
    """An account's postings with the running balance, optionally those whose business time
    falls in [since, until): a statement of the account as of any dates."""
    _auditing(scope)
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and moment.tzinfo is None:
            raise InvalidInput(f"{name} must include a timezone", field=name)
    return {
        "account": account,
        "postings": ledger.account_statement(
            c.read_db,
            account,
            since=sortable_time(since) if since else None,
            until=sortable_time(until) if until else None,
            limit=limit,
            after_position=after,
        ),
    }


@router.get("/ledger/check", dependencies=[ReadYourWrites])
def check(c: ContainerDep, scope: CurrentScope) -> object:
    """Debits equal credits, every posting balances, every balance is the sum of its legs."""
    _auditing(scope)
    return ledger.check(c.read_db)
