"""Compliance: sensitive-word packs (versioned configuration) and the alerts they raise."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReadYourWrites
from domain.shared import Forbidden
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


@router.get("/alerts", dependencies=[ReadYourWrites])
def alerts(
    c: ContainerDep,
    scope: CurrentScope,
    severity: Severity | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    if scope.role not in ("admin", "auditor", "manager"):
        raise Forbidden("alerts are for admins, managers (their department) and auditors")
    return {
        "items": list_alerts(c.read_db, severity=severity, department=scope.department, limit=limit)
    }
