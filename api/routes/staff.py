from __future__ import annotations

import contextlib
import dataclasses
from typing import Annotated

from fastapi import APIRouter, Body

from api.deps import (
    CommandMeta,
    ContainerDep,
    CustomersAppDep,
    ManagerScope,
    ReadDb,
    ReaderScope,
    ReadYourWrites,
)
from api.schemas.customers import DepartureCreate, Recorded, StaffCreate
from domain.shared import Forbidden
from infra.tickets import hand_over_departed
from projections.customers.staff import list_staff
from projections.engine import NotCaughtUp

router = APIRouter(prefix="/v1/staff", tags=["staff"])


@router.post("", status_code=201, response_model=Recorded)
def register_staff(
    body: StaffCreate, app: CustomersAppDep, scope: ManagerScope, meta: CommandMeta
) -> object:
    if scope.department is not None and body.department != scope.department:
        raise Forbidden("a manager can only register staff in their own department")
    return app.register_staff(
        staff_id=body.id, name=body.name, department=body.department, region=body.region, meta=meta
    )


@router.post("/{staff_id}/departure", status_code=202, response_model=Recorded)
def record_departure(
    staff_id: str,
    app: CustomersAppDep,
    scope: ManagerScope,
    meta: CommandMeta,
    c: ContainerDep,
    body: Annotated[DepartureCreate | None, Body()] = None,
) -> object:
    body = body or DepartureCreate()
    if scope.department is not None and app.get_staff(staff_id).department != scope.department:
        raise Forbidden("a manager can only record departures in their own department")
    recorded = app.record_departure(staff_id, reason=body.reason, meta=meta)
    # Their open tickets go to eligible colleagues now, not at the next scheduled run (which
    # retries whatever could not be handed over here).
    with contextlib.suppress(NotCaughtUp):
        c.engine.wait_for(recorded.position or 0, c.settings.min_position_timeout, ["tickets"])
        if hand_over_departed(c):
            return dataclasses.replace(recorded, position=c.head())
    return recorded


@router.get("", dependencies=[ReadYourWrites])
def get_staff(db: ReadDb, scope: ReaderScope) -> object:
    return {"items": list_staff(db, scope.department)}
