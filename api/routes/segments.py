"""Segments (智能分组): rules over portrait fields, members kept current by the evaluator, and
the entered/left feed automation follows.

Admins and managers define, revise and retire segments (they are the tenant's configuration);
every reader sees the definitions, and the members and changes of the customers they may see
(staff their own, managers their department's).

`min_position` here means more than elsewhere: the events up to it have been evaluated and the
membership changes that evaluation recorded are visible. So `GET .../members?min_position=P`,
with P the position of an order or of the segment's definition, shows their effect.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query

from api.deps import CommandMeta, ContainerDep, ManagerScope, ReaderScope
from api.schemas.segments import SegmentCreate, SegmentRetirement, SegmentRevision
from domain.scope import Scope
from domain.segments.application import SegmentRecorded
from domain.shared import NotFound
from infra.bootstrap import Container
from projections.segments.segments import get_segment, list_changes, list_members, list_segments

router = APIRouter(prefix="/v1/segments", tags=["segments"])


def _evaluated(
    c: ContainerDep,
    _: ReaderScope,  # authenticate and authorise first: refused callers never wait
    min_position: Annotated[int | None, Query(ge=0)] = None,
    x_min_position: Annotated[int | None, Header(ge=0)] = None,
) -> None:
    wanted = max(min_position or 0, x_min_position or 0)
    if wanted and c.segment_evaluator is not None:
        c.segment_evaluator.wait_for(wanted, c.settings.min_position_timeout)


Evaluated = Depends(_evaluated)


def _recorded(r: SegmentRecorded) -> dict[str, Any]:
    return {"id": r.id, "version": r.version, "position": r.position}


def _existing(c: Container, segment_id: UUID) -> dict[str, Any]:
    found = get_segment(c.read_db, str(segment_id))
    if found is None:
        raise NotFound("segment not found")
    return found


def _owner(scope: Scope) -> str | None:
    return scope.staff_id if scope.role == "staff" else None


@router.post("", status_code=201)
def define(body: SegmentCreate, c: ContainerDep, _: ManagerScope, meta: CommandMeta) -> object:
    return _recorded(
        c.segments.define(name=body.name, rule=body.rule, auto_tag=body.auto_tag, meta=meta)
    )


@router.get("", dependencies=[Evaluated])
def segments(
    c: ContainerDep, _: ReaderScope, status: Literal["live", "retired"] | None = None
) -> object:
    return {"items": list_segments(c.read_db, status)}


@router.get("/{segment_id}", dependencies=[Evaluated])
def segment(segment_id: UUID, c: ContainerDep, _: ReaderScope) -> object:
    """The definition in force, its member count, and every version: who, when, why."""
    return _existing(c, segment_id)


@router.post("/{segment_id}/revisions", status_code=201)
def revise(
    segment_id: UUID, body: SegmentRevision, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    return _recorded(
        c.segments.revise(
            segment_id,
            rule=body.rule,
            reason=body.reason,
            expected_version=body.expected_version,
            meta=meta,
        )
    )


@router.post("/{segment_id}/retire")
def retire(
    segment_id: UUID, body: SegmentRetirement, c: ContainerDep, _: ManagerScope, meta: CommandMeta
) -> object:
    """Members leave (and lose its auto-tag) as the evaluator gets to it."""
    return _recorded(c.segments.retire(segment_id, reason=body.reason, meta=meta))


@router.get("/{segment_id}/members", dependencies=[Evaluated])
def members(
    segment_id: UUID,
    c: ContainerDep,
    scope: ReaderScope,
    after: Annotated[int, Query(ge=0, description="cursor from the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> object:
    _existing(c, segment_id)
    items = list_members(
        c.read_db,
        str(segment_id),
        owner=_owner(scope),
        department=scope.department,
        after=after,
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_after": items[-1]["cursor"] if more else None}


@router.get("/{segment_id}/changes", dependencies=[Evaluated])
def changes(
    segment_id: UUID,
    c: ContainerDep,
    scope: ReaderScope,
    after: Annotated[int, Query(ge=0, description="the last position seen")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> object:
    """Entered and left, in log order: follow it by passing the last position as `after`."""
    _existing(c, segment_id)
    items = list_changes(
        c.read_db,
        str(segment_id),
        owner=_owner(scope),
        department=scope.department,
        after=after,
        limit=limit,
    )
    return {"items": items, "last_position": items[-1]["position"] if items else after}
