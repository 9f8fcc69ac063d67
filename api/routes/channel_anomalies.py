"""Channel anomaly alerts (渠道异常预警, docs/channel-anomalies.md): the alerts the detector
recorded, acknowledged and resolved by people; the thresholds that decide them.

Admins publish thresholds; admins and managers handle alerts; every reader sees them. Every
change answers the position of its last event (read-your-writes with `min_position`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from api.deps import (
    CommandMeta,
    ContainerDep,
    CurrentScope,
    ManagerScope,
    ReaderScope,
    ReadYourWrites,
)
from api.schemas.channels import Acknowledgement, Resolution, ThresholdsChange
from domain.shared import Forbidden, NotFound
from projections.channels import anomalies as read

router = APIRouter(prefix="/v1/channel-anomalies", tags=["channel anomalies"])


@router.get("", dependencies=[ReadYourWrites])
def list_anomalies(
    c: ContainerDep,
    _: ReaderScope,
    code_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    since: Annotated[AwareDatetime | None, Query(description="window start, inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(description="window start, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Alerts, the latest window first."""
    return {
        "items": read.anomalies(
            c.read_db, code_id=code_id, status=status, since=since, until=until, limit=limit
        )
    }


@router.put("/thresholds/{key}", status_code=201)
def publish_thresholds(
    key: str, body: ThresholdsChange, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """The next version of the thresholds of every code (`default`) or of one code (its id)."""
    if scope.role != "admin":
        raise Forbidden("only admins set anomaly thresholds")
    r = c.channels.publish_thresholds(
        key,
        body.definition,
        effective_from=body.effective_from or meta.occurred_at,
        expected_version=body.expected_version,
        meta=meta,
    )
    return {"key": r.id, "thresholds_version": r.version, "position": r.position}


@router.get("/thresholds/{key}")
def thresholds(
    key: str, c: ContainerDep, _: ReaderScope, as_of: AwareDatetime | None = None
) -> object:
    """Every version on record and the one in force at `as_of` (default now; 0 is the
    built-in defaults, shown as `defaults`)."""
    return c.channels.describe_thresholds(key, as_of or datetime.now(UTC))


@router.get("/{anomaly_id}", dependencies=[ReadYourWrites])
def anomaly(anomaly_id: str, c: ContainerDep, _: ReaderScope) -> object:
    found = read.find_anomaly(c.read_db, anomaly_id)
    if found is None:
        raise NotFound(f"channel anomaly {anomaly_id} not found")
    return found


@router.post("/{anomaly_id}/acknowledgement")
def acknowledge(
    anomaly_id: str, body: Acknowledgement, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    r = c.channels.acknowledge(anomaly_id, note=body.note, meta=meta)
    return {"anomaly_id": anomaly_id, "status": "acknowledged", "position": r.position}


@router.post("/{anomaly_id}/resolution")
def resolve(
    anomaly_id: str, body: Resolution, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    r = c.channels.resolve(anomaly_id, outcome=body.outcome, note=body.note, meta=meta)
    return {
        "anomaly_id": anomaly_id,
        "status": "resolved",
        "outcome": body.outcome,
        "position": r.position,
    }
