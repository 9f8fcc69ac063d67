from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body

from api.deps import (
    CommandMeta,
    CustomersAppDep,
    IfMatch,
    ManagerScope,
    ReadDb,
    ReaderScope,
    ReadYourWrites,
    WriterScope,
)
from api.schemas.customers import (
    ChannelCodeCreate,
    DisableCreate,
    Recorded,
    ScanCreate,
    ScanRecorded,
)
from domain.customers.aggregates import Staff
from domain.shared import Forbidden, NotFound
from projections.customers.channel_stats import code_stats

router = APIRouter(prefix="/v1/channel-codes", tags=["channel codes"])


@router.post("", status_code=201, response_model=Recorded)
def create_channel_code(
    body: ChannelCodeCreate, app: CustomersAppDep, scope: ManagerScope, meta: CommandMeta
) -> object:
    if scope.department is not None:
        for staff_id in body.staff_pool:
            staff = app.find(Staff, Staff.create_id(staff_id))  # unknown staff: the domain's 422
            if staff is not None and staff.department != scope.department:
                raise Forbidden("a manager can only route a code to staff of their own department")
    return app.create_channel_code(
        name=body.name,
        staff_pool=body.staff_pool,
        tags=body.tags,
        welcome_message=body.welcome_message,
        expires_at=body.expires_at,
        max_scans=body.max_scans,
        meta=meta,
    )


@router.post("/{code_id}/disable", status_code=202, response_model=Recorded)
def disable_channel_code(
    code_id: UUID,
    app: CustomersAppDep,
    scope: ManagerScope,
    meta: CommandMeta,
    version: IfMatch,
    body: Annotated[DisableCreate | None, Body()] = None,
) -> object:
    body = body or DisableCreate()
    expected = body.expected_version if body.expected_version is not None else version
    return app.disable_channel_code(
        code_id, reason=body.reason, expected_version=expected, meta=meta
    )


@router.post("/{code_id}/scans", status_code=201, response_model=ScanRecorded)
def scan_channel_code(
    code_id: UUID, body: ScanCreate, app: CustomersAppDep, scope: WriterScope, meta: CommandMeta
) -> object:
    return app.scan_channel_code(
        code_id,
        identities=body.visitor.model_dump(exclude_none=True),
        device=body.device,
        ip=body.ip,
        meta=meta,
    )


@router.get("/{code_id}/stats", dependencies=[ReadYourWrites])
def channel_code_stats(code_id: UUID, db: ReadDb, scope: ReaderScope) -> object:
    stats = code_stats(db, str(code_id), datetime.now(UTC))
    if stats is None:
        raise NotFound("channel code not found")
    return stats
