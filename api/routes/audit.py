"""Auditors' questions of the log: one aggregate's history, its state as it was (by version or
by time) with a diff between versions, and everything one request or callback caused. For the
auditor and admin roles; events are shown as stored, personal data sealed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import ContainerDep, CurrentScope, ReadYourWrites
from api.responses import OrjsonResponse
from domain.scope import Scope
from domain.shared import Forbidden, InvalidInput
from infra import audit

router = APIRouter(prefix="/v1/audit", tags=["audit"])


def _auditor(scope: Scope) -> None:
    if scope.role not in ("auditor", "admin"):
        raise Forbidden("the audit trail is for auditors and admins")


@router.get("/aggregates/{aggregate_id}/history", dependencies=[ReadYourWrites])
def history(aggregate_id: str, c: ContainerDep, scope: CurrentScope) -> object:
    """Every event of one aggregate: business and recorded time, actor, source, correlation
    and causation ids, data."""
    _auditor(scope)
    return OrjsonResponse({"aggregate_id": aggregate_id, "events": audit.history(c, aggregate_id)})


@router.get("/aggregates/{aggregate_id}", dependencies=[ReadYourWrites])
def state(
    aggregate_id: str,
    c: ContainerDep,
    scope: CurrentScope,
    version: Annotated[int | None, Query(ge=1)] = None,
    as_of: datetime | None = None,
    diff_from: Annotated[int | None, Query(ge=1)] = None,
) -> object:
    """The state after `version`, or as the store held it at `as_of` (recorded time); with
    `diff_from`, what changed since that version."""
    _auditor(scope)
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput("as_of must include a timezone", field="as_of")
    found = audit.state(c, aggregate_id, version=version, as_of=as_of)
    body: dict[str, object] = {
        "aggregate_id": found.aggregate_id,
        "type": found.type,
        "version": found.version,
        "recorded_at": found.recorded_at,
        "state": found.state,
    }
    if diff_from is not None:
        if diff_from > found.version:
            raise InvalidInput(
                f"diff_from must be at most version {found.version}", field="diff_from"
            )
        before = audit.state(c, aggregate_id, version=diff_from)
        body["diff"] = {"from": diff_from, **audit.diff(before.state, found.state)}
    return OrjsonResponse(body)


@router.get("/correlations/{correlation_id}", dependencies=[ReadYourWrites])
def correlation(correlation_id: str, c: ContainerDep, scope: CurrentScope) -> object:
    """Everything one request or callback caused, across aggregates, in log order."""
    _auditor(scope)
    return OrjsonResponse(
        {"correlation_id": correlation_id, "events": audit.correlation(c, correlation_id)}
    )
