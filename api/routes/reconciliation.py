"""Reconciliation (自动化对账): finance imports a payment channel's statement, scrm matches it
against the orders and refunds on our books, and the mismatches wait in a list finance works
down. Finance (admin) imports and resolves; auditors read."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import CommandMeta, ContainerDep, CurrentScope, ReadYourWrites
from api.schemas.reconciliation import Channel, FindingResolution, StatementImportCreate
from domain.scope import Scope
from domain.settlement.reconciling import REASONS, resolve_finding
from domain.shared import Forbidden, InvalidInput, NotFound
from infra.reconciliation import decode_statement, import_file
from projections.settlement import reconciliation as read

router = APIRouter(prefix="/v1", tags=["reconciliation"])


def _finance(scope: Scope) -> None:
    if scope.role != "admin":
        raise Forbidden("only finance (the admin role) can do this")


def _reading(scope: Scope) -> None:
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("reconciliation is for finance and auditors")


def _text(body: StatementImportCreate) -> str:
    if (body.content is None) == (body.content_base64 is None):
        raise InvalidInput("send the file as content or as content_base64", field="content")
    if body.content is not None:
        return body.content  # already text: `encoding` describes content_base64 only
    try:
        data = base64.b64decode(body.content_base64 or "", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("content_base64 is not base64", field="content_base64") from None
    return decode_statement(data, body.encoding)


@router.post("/reconciliation/imports", status_code=201)
def import_statement(
    body: StatementImportCreate, c: ContainerDep, scope: CurrentScope, meta: CommandMeta
) -> object:
    """Reconcile one statement file against the books. A malformed file is a 422 naming its
    line and column; the same file again is a 409 naming the earlier import."""
    _finance(scope)
    r = import_file(
        c,
        body.channel,
        _text(body),
        body.file_name,
        body.fee_rate,
        meta,
        tolerance_fen=body.tolerance_fen,
        platforms=body.platforms,
    )
    return {
        "import_id": r.id,
        "channel": body.channel,
        "rows": r.rows,
        "counts": r.counts,
        "findings": r.findings,
        "position": r.position,
    }


@router.get("/reconciliation/imports", dependencies=[ReadYourWrites])
def imports(
    c: ContainerDep,
    scope: CurrentScope,
    channel: Channel | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> object:
    _reading(scope)
    return {"items": read.imports(c.read_db, channel=channel, limit=limit, offset=offset)}


@router.get("/reconciliation/imports/{import_id}", dependencies=[ReadYourWrites])
def one_import(import_id: UUID, c: ContainerDep, scope: CurrentScope) -> object:
    _reading(scope)
    found = read.get_import(c.read_db, str(import_id))
    if found is None:
        raise NotFound(f"statement import {import_id} not found")
    return found


@router.get("/reconciliation/findings", dependencies=[ReadYourWrites])
def findings(
    c: ContainerDep,
    scope: CurrentScope,
    status: Annotated[str | None, Query(pattern="^(open|resolved)$")] = None,
    reason: Annotated[str | None, Query(max_length=40)] = None,
    import_id: UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> object:
    """What finance works down: open findings first by import, each with its reason."""
    _reading(scope)
    if reason is not None and reason not in REASONS:
        raise InvalidInput(f"reason must be one of {', '.join(REASONS)}", field="reason")
    items = read.findings(
        c.read_db,
        status=status,
        reason=reason,
        import_id=str(import_id) if import_id else None,
        limit=limit,
        offset=offset,
    )
    return {"items": items, "next_offset": offset + limit if len(items) == limit else None}


@router.post("/reconciliation/imports/{import_id}/findings/{index}/resolution", status_code=201)
def resolve(
    import_id: UUID,
    index: int,
    body: FindingResolution,
    c: ContainerDep,
    scope: CurrentScope,
    meta: CommandMeta,
) -> object:
    """Finance resolves a finding: explained, adjusted or written off, with a note. Once."""
    _finance(scope)
    r = resolve_finding(c.settlement, import_id, index, body.resolution, body.note, meta)
    return {
        "import_id": r.id,
        "index": index,
        "resolution": body.resolution,
        "position": r.position,
    }
