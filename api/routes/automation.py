"""Automation rules (自动化 SOP; docs/automation.md): publish a rule's next version, pause and
resume it, see its runs and the outbox, and run a sweep of the time, schedule and metric rules.

HQ (the admin role) publishes; admins and managers pause, resume and sweep; every reader sees
the rules; admins, managers and auditors see runs and messages (which name customers)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    CurrentScope,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
)
from api.schemas.automation import RuleToggle, SweepRequest
from api.schemas.customers import ConfigChange
from domain.scope import Scope
from domain.shared import Forbidden, InvalidInput, NotFound, require_aware, require_slug
from infra.automation import sweep
from projections.automation import automation as read

router = APIRouter(prefix="/v1/automation", tags=["automation"])


def _overseer(scope: Scope) -> None:
    if scope.role not in ("admin", "manager", "auditor"):
        raise Forbidden("runs and messages are for admins, managers and auditors")


@router.put("/rules/{key}", status_code=201)
def publish(
    key: str, body: ConfigChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The next version of a rule (the first publishes it), against `expected_version`."""
    if scope.role != "admin":
        raise Forbidden("only HQ (the admin role) publishes automation rules")
    r = c.automation.publish_rule(
        key,
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"key": key, "rule_version": r.version, "position": r.position}


@router.get("/rules", dependencies=[ReadYourWrites])
def rules(c: ContainerDep, _: ReaderScope) -> object:
    return {"items": read.rules(c.read_db)}


@router.get("/rules/{key}")
def rule(key: str, c: ContainerDep, _: ReaderScope, as_of: datetime | None = None) -> object:
    """Every version on record, the one in force at `as_of` (default now), and whether the
    rule is paused."""
    at = require_aware(as_of, "as_of") or datetime.now(UTC)
    found = c.automation.rule(key)
    in_force = found.in_force(at)
    return {
        "key": key,
        "as_of": at.isoformat(),
        "in_force": in_force["rule_version"] if in_force else None,
        "paused": found.paused,
        "versions": found.versions,
        "version": found.version,
    }


@router.post("/rules/{key}/pause")
def pause(
    key: str, c: ContainerDep, _: ManagerScope, meta: CommandMeta,
    body: Annotated[RuleToggle | None, Body()] = None,
) -> object:  # fmt: skip
    r = c.automation.pause(key, reason=(body or RuleToggle()).reason, meta=meta)
    return {"key": key, "paused": True, "position": r.position}


@router.post("/rules/{key}/resume")
def resume(
    key: str, c: ContainerDep, _: ManagerScope, meta: CommandMeta,
    body: Annotated[RuleToggle | None, Body()] = None,
) -> object:  # fmt: skip
    r = c.automation.resume(key, reason=(body or RuleToggle()).reason, meta=meta)
    return {"key": key, "paused": False, "position": r.position}


@router.get("/runs", dependencies=[ReadYourWrites])
def runs(
    c: ContainerDep,
    scope: ReaderScope,
    rule_key: str | None = None,
    customer_id: str | None = None,
    status: Literal["running", "done"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Runs newest first, each with its actions' outcomes."""
    _overseer(scope)
    if rule_key is not None:
        require_slug(rule_key, "rule_key")
        if read.rule(c.read_db, rule_key) is None:
            raise NotFound(f"automation rule {rule_key} not found")
    found = read.runs(
        c.read_db, rule_key=rule_key, customer_id=customer_id, status=status, limit=limit
    )
    return {"items": found}


@router.get("/outbox", dependencies=[ReadYourWrites])
def outbox(
    c: ContainerDep,
    scope: ReaderScope,
    status: Literal["scheduled", "retrying", "sent", "failed"] | None = None,
    customer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Messages newest first, with their status, attempts and the gateway's answer."""
    _overseer(scope)
    return {"items": read.outbox(c.read_db, status=status, customer_id=customer_id, limit=limit)}


@router.post("/sweeps", dependencies=[ReadYourWrites])
def run_sweep(
    c: ContainerDep, _: ManagerScope, meta: CommandMeta,
    body: Annotated[SweepRequest | None, Body()] = None,
) -> object:  # fmt: skip
    """One pass of the time, schedule and metric rules (as `scrm serve`'s scheduler runs
    it); a second pass at the same moment records nothing."""
    at = (body or SweepRequest()).at
    if at is not None and at.tzinfo is None:
        raise InvalidInput("at must include a timezone", field="at")
    return sweep(c, at, requested=meta)
