from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.deps import (
    CommandMeta,
    ContainerDep,
    CustomersAppDep,
    IfMatch,
    ManagerScope,
    ReadDb,
    ReaderScope,
    ReadYourWrites,
    WriterScope,
)
from api.presenters import present_portrait
from api.schemas.customers import (
    BirthdayChange,
    CustomerCreate,
    Identity,
    MergeCreate,
    MergeRecorded,
    MergeUndo,
    OwnerChange,
    Recorded,
    TagsChange,
)
from domain.customers.aggregates import BUYER_KINDS, normalise_identity
from domain.customers.application import Recorded as AppRecorded
from domain.shared import Forbidden, Gone, NotFound
from infra.bootstrap import Container
from infra.jobs import link_pending_buyers
from projections.customers.portrait import (
    get_portrait,
    list_customers,
    merge_survivor,
    owner_department,
)
from projections.customers.purchases import purchase_profiles, purchase_summary
from projections.orders.orders import recent_orders
from projections.tickets.tickets import tickets_of_customer

router = APIRouter(prefix="/v1/customers", tags=["customers"])


@router.post("", status_code=201, response_model=Recorded)
def add_customer(
    body: CustomerCreate,
    app: CustomersAppDep,
    c: ContainerDep,
    scope: WriterScope,
    meta: CommandMeta,
) -> object:
    owner = body.owner
    if scope.role == "staff":
        if owner not in (None, scope.staff_id):
            raise Forbidden("staff add customers for themselves")
        owner = scope.staff_id
    elif (
        scope.role == "manager"
        and owner is not None
        and app.get_staff(owner).department != scope.department
    ):
        raise Forbidden("a manager can only assign staff of their own department")
    recorded = app.add_customer(
        identities=[(i.kind, i.value) for i in body.identities],
        tags=body.tags,
        owner=owner,
        meta=meta,
    )
    return _with_pending_buyers(c, recorded, [(i.kind, i.value) for i in body.identities])


@router.post("/{customer_id}/identities", status_code=202, response_model=Recorded)
def add_identity(
    customer_id: UUID,
    body: Identity,
    app: CustomersAppDep,
    c: ContainerDep,
    scope: WriterScope,
    meta: CommandMeta,
) -> object:
    recorded = app.add_identity(
        customer_id, kind=body.kind, value=body.value, scope=scope, meta=meta
    )
    return _with_pending_buyers(c, recorded, [(body.kind, body.value)])


def _with_pending_buyers(
    c: Container, recorded: AppRecorded, identities: list[tuple[str, str]]
) -> AppRecorded:
    """A unionid or phone just added may be what earlier orders' buyers were waiting for:
    link them now, so the portrait shows their history (the answer's position covers it)."""
    unionids = [v for k, v in identities if k == "unionid"]
    phones = [
        c.vault.blind_index("phone", normalise_identity("phone", v))
        for k, v in identities
        if k == "phone"
    ]
    if (unionids or phones) and link_pending_buyers(c, unionids=unionids, phone_keys=phones):
        return dataclasses.replace(recorded, position=c.head())
    return recorded


@router.post("/{customer_id}/tags", status_code=202, response_model=Recorded)
def change_tags(
    customer_id: UUID,
    body: TagsChange,
    app: CustomersAppDep,
    scope: WriterScope,
    meta: CommandMeta,
    version: IfMatch,
) -> object:
    expected = body.expected_version if body.expected_version is not None else version
    return app.change_tags(
        customer_id,
        add=body.add,
        remove=body.remove,
        expected_version=expected,
        scope=scope,
        meta=meta,
    )


@router.post("/{customer_id}/owner", status_code=202, response_model=Recorded)
def assign_owner(
    customer_id: UUID,
    body: OwnerChange,
    app: CustomersAppDep,
    scope: WriterScope,
    meta: CommandMeta,
    version: IfMatch,
) -> object:
    if scope.role == "staff":
        raise Forbidden("staff cannot reassign customers")
    expected = body.expected_version if body.expected_version is not None else version
    return app.assign_owner(
        customer_id, staff_id=body.staff_id, expected_version=expected, scope=scope, meta=meta
    )


@router.put("/{customer_id}/birthday", status_code=202, response_model=Recorded)
def record_birthday(
    customer_id: UUID,
    body: BirthdayChange,
    app: CustomersAppDep,
    scope: WriterScope,
    meta: CommandMeta,
) -> object:
    """The customer's date of birth, sealed under their key: birthday rules (docs/automation.md)
    find it by a keyed hash of its month and day. The same date again records nothing."""
    return app.record_birthday(customer_id, birthday=body.birthday, scope=scope, meta=meta)


@router.post("/{customer_id}/merges", status_code=201, response_model=MergeRecorded)
def merge(
    customer_id: UUID,
    body: MergeCreate,
    app: CustomersAppDep,
    scope: ManagerScope,
    meta: CommandMeta,
) -> object:
    """Merge `body.customer_id` into this customer (the survivor), saying why."""
    return app.merge_customers(
        customer_id,
        body.customer_id,
        reason=body.reason,
        expected_versions=body.expected_versions,
        scope=scope,
        meta=meta,
    )


@router.post(
    "/{customer_id}/merges/{absorbed_id}/undo", status_code=202, response_model=MergeRecorded
)
def undo_merge(
    customer_id: UUID,
    absorbed_id: UUID,
    body: MergeUndo,
    app: CustomersAppDep,
    scope: ManagerScope,
    meta: CommandMeta,
) -> object:
    """Undo the merge in force of `absorbed_id` into this customer, saying why."""
    return app.undo_merge(customer_id, absorbed_id, reason=body.reason, scope=scope, meta=meta)


@router.get("/{customer_id}/portrait", dependencies=[ReadYourWrites])
def portrait(customer_id: UUID, c: ContainerDep, scope: ReaderScope) -> object:
    found = get_portrait(c.read_db, str(customer_id))
    if found is None:
        raise NotFound("customer not found")
    dept = owner_department(c.read_db, found["owner"]) if scope.role == "manager" else None
    scope.check_customer(found["owner"], dept)
    status = found["status"]
    if status == "merged":  # restricted or erased with the survivor that holds its facts
        status = (merge_survivor(c.read_db, found["id"]) or ("", "active"))[1]
    if status != "active":
        raise Gone(
            f"this customer's data is {status} at their request (PIPL Art. 47)",
            code=f"customer_{status}",
        )
    out = present_portrait(found, scope, c.vault)
    buyers = [(i["kind"], i["value"]) for i in found["identities"] if i["kind"] in BUYER_KINDS]
    profile = purchase_profiles(c.read_db, [str(customer_id)], datetime.now(UTC))
    if str(customer_id) in profile:  # (not if restricted since the read above)
        out.update(purchase_summary(profile[str(customer_id)], recent_orders(c.read_db, buyers)))
    out["tickets"] = tickets_of_customer(c.read_db, str(customer_id))
    return out


@router.get("", dependencies=[ReadYourWrites])
def customers(
    db: ReadDb,
    scope: ReaderScope,
    tag: str | None = None,
    owner: str | None = None,
    channel_code: UUID | None = None,
    after: Annotated[int, Query(ge=0, description="cursor from the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> object:
    if scope.role == "staff":
        if owner not in (None, scope.staff_id):
            raise Forbidden("staff can only list their own customers")
        owner = scope.staff_id
    items = list_customers(
        db,
        tag=tag,
        owner=owner,
        channel_code=str(channel_code) if channel_code else None,
        department=scope.department,
        after=after,
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_after": items[-1]["cursor"] if more else None}
