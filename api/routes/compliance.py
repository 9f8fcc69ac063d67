"""Compliance: sensitive-word packs (versioned configuration) and the alerts they raise."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandMeta, ContainerDep, CurrentScope, IfMatch, ReadYourWrites
from domain.scope import Scope
from domain.shared import ERASED, Forbidden
from infra.bootstrap import Container
from projections.conversations.alerts import list_alerts

router = APIRouter(prefix="/v1/compliance", tags=["compliance"])

Severity = Literal["low", "medium", "high", "critical"]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    word: str = Field(min_length=1, max_length=50)
    severity: Severity = "medium"


class PackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pack_id: str = Field(min_length=1, max_length=64)
    industry: str = Field(min_length=1, max_length=40)
    rules: list[RuleIn] = Field(min_length=1, max_length=5000)


@router.post("/packs", status_code=201)
def publish_pack(body: PackIn, c: ContainerDep, scope: CurrentScope, meta: CommandMeta) -> object:
    """Publish a pack, or the next version of it (a tenant's own words are a pack too)."""
    if scope.role != "admin":
        raise Forbidden("only admins change sensitive-word packs")
    version, position = c.conversations.publish_pack(
        body.pack_id, body.industry, [r.model_dump() for r in body.rules], meta
    )
    return {"pack_id": body.pack_id, "version": version, "position": position}


@router.post("/packs/shipped", status_code=201)
def install_shipped(c: ContainerDep, scope: CurrentScope, meta: CommandMeta) -> object:
    """Install (or bring up to date) the packs shipped for finance, education, medical."""
    if scope.role != "admin":
        raise Forbidden("only admins change sensitive-word packs")
    return {"versions": c.conversations.install_shipped_packs(meta)}


Status = Literal["open", "acknowledged", "resolved"]


@router.get("/alerts", dependencies=[ReadYourWrites])
def alerts(
    c: ContainerDep,
    scope: CurrentScope,
    severity: Severity | None = None,
    status: Status | None = None,
    staff_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Alerts, oldest message first. Each is attributed to a staff member (`staff_id`: the
    sender if staff, else the first staff recipient); a manager sees those of their
    department's staff."""
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("alerts are for admins, managers (their department) and auditors")
    items = list_alerts(
        c.read_db,
        severity=severity,
        status=status,
        department=scope.department,
        staff_id=staff_id,
        limit=limit,
    )
    for item in items:
        sealed, subject = item.pop("sealed_note"), item.pop("subject")
        item["note"] = (
            None if sealed is None else (c.conversations.unseal_text(subject, sealed) or ERASED)
        )
    return {"items": items}


class Resolution(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(min_length=4, max_length=2000)
    expected_version: int | None = Field(default=None, ge=1)


class Acknowledgement(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expected_version: int | None = Field(default=None, ge=1)


def _may_handle(c: Container, scope: Scope, alert_id: UUID) -> None:
    """Admins handle any alert; managers those raised on their department's staff."""
    if scope.role == "admin":
        return
    if scope.role != "manager":
        raise Forbidden("alerts are handled by admins and managers")
    if not list_alerts(c.read_db, department=scope.department, violation_id=str(alert_id)):
        raise Forbidden("a manager handles the alerts of their own department")


@router.post("/alerts/{alert_id}/acknowledge", status_code=202)
def acknowledge(
    alert_id: UUID,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    version: IfMatch,
    body: Annotated[Acknowledgement | None, Body()] = None,
) -> object:
    _may_handle(c, scope, alert_id)
    expected = body.expected_version if body and body.expected_version else version
    position, new_version = c.conversations.acknowledge_alert(
        alert_id, expected_version=expected, meta=meta
    )
    return {"id": str(alert_id), "position": position, "version": new_version}


@router.post("/alerts/{alert_id}/resolve", status_code=202)
def resolve(
    alert_id: UUID,
    body: Resolution,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
    version: IfMatch,
) -> object:
    _may_handle(c, scope, alert_id)
    expected = body.expected_version if body.expected_version is not None else version
    position, new_version = c.conversations.resolve_alert(
        alert_id, note=body.note, expected_version=expected, meta=meta
    )
    return {"id": str(alert_id), "position": position, "version": new_version}
