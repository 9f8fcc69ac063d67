"""Customer groups (客户群), as WeCom's callbacks describe them. Who sees which group follows
its owner, as for customers: staff their own, managers their department's."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import ReadDb, ReaderScope, ReadYourWrites
from domain.shared import Forbidden, NotFound
from projections.customers.groups import get_group, list_groups
from projections.customers.portrait import owner_department

router = APIRouter(prefix="/v1/groups", tags=["groups"])


@router.get("", dependencies=[ReadYourWrites])
def groups(
    db: ReadDb,
    scope: ReaderScope,
    owner: Annotated[str | None, Query(max_length=64)] = None,
    status: Literal["active", "dismissed"] | None = None,
    after: Annotated[int, Query(ge=0, description="cursor from the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> object:
    if scope.role == "staff":
        if owner not in (None, scope.staff_id):
            raise Forbidden("staff can only list their own groups")
        owner = scope.staff_id
    items = list_groups(
        db, owner=owner, status=status, department=scope.department, after=after, limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_after": items[-1]["cursor"] if more else None}


@router.get("/{chat_id}", dependencies=[ReadYourWrites])
def group(db: ReadDb, scope: ReaderScope, chat_id: Annotated[str, Path(max_length=128)]) -> object:
    found = get_group(db, chat_id)
    if found is None:
        raise NotFound("group not found")
    if scope.role == "staff" and found["owner"] != scope.staff_id:
        raise Forbidden("staff can only see their own groups")
    if scope.role == "manager" and owner_department(db, found["owner"]) != scope.department:
        raise Forbidden("managers can only see groups of their own department")
    return found
