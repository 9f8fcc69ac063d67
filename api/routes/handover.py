"""Staff handover (离职继承 / 在职转接, docs/handover.md): start one, show it with each item's
status and reason, retry what is pending. Admins and the department's managers hand over;
auditors may read."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CommandMeta, ContainerDep, CurrentScope, ManagerScope, ReadYourWrites
from api.schemas.handover import HandoverCreate, HandoverRetry
from domain.scope import Scope
from domain.shared import Forbidden, NotFound
from infra.handover import await_directory, present
from projections.handover import handovers as read

router = APIRouter(prefix="/v1/handovers", tags=["handover"])


def _reader(scope: Scope) -> str | None:
    """The department a reader is limited to (None: all)."""
    if scope.role in ("admin", "auditor"):
        return None
    if scope.role == "manager":
        return scope.department
    raise Forbidden("handovers are for admins, auditors and the department's managers")


@router.post("", status_code=201)
def start_handover(
    body: HandoverCreate, c: ContainerDep, scope: ManagerScope, meta: CommandMeta
) -> object:
    await_directory(c)
    answer = c.handover.start(
        kind=body.kind,
        from_staff=body.from_staff,
        to_staff=body.to_staff,
        department=body.department,
        reason=body.reason,
        key=body.key,
        customer_limit=body.customer_limit,
        scope=scope,
        meta=meta,
    )
    return present(answer)


@router.get("", dependencies=[ReadYourWrites])
def list_handovers(
    c: ContainerDep,
    scope: CurrentScope,
    from_staff: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(pattern="^(open|completed)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    items = read.handovers(
        c.read_db, department=_reader(scope), from_staff=from_staff, status=status, limit=limit
    )
    return {"items": items}


@router.get("/{key}", dependencies=[ReadYourWrites])
def show_handover(
    key: str,
    c: ContainerDep,
    scope: CurrentScope,
    item_status: Annotated[
        str | None, Query(pattern="^(unsettled|handed_over|pending|skipped)$")
    ] = None,
) -> object:
    """The handover, each item with its status, receiver and reason, and every step."""
    department = _reader(scope)
    found = read.find_handover(c.read_db, key, item_status=item_status)
    if found is None or (department is not None and found["from_department"] != department):
        raise NotFound(f"handover {key} not found")
    return found


@router.post("/{key}/retries")
def retry_handover(
    key: str, body: HandoverRetry, c: ContainerDep, scope: ManagerScope, meta: CommandMeta
) -> object:
    await_directory(c)
    answer = c.handover.retry(key, items=body.items, to_staff=body.to_staff, scope=scope, meta=meta)
    return present(answer)
