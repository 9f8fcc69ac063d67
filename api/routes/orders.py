"""E-commerce orders: pushes from the five platforms, and the orders read model.

Douyin and Youzan sign their HTTP pushes: the signature is the authentication. Taobao, JD and
Pinduoduo deliver through their own message services, so whatever relays them here (a
connector the tenant runs) authenticates with an admin bearer token instead. A Douyin or Youzan
message that carries only an order id is completed from the platform's detail API first.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from api.callbacks import MAX_BODY
from api.deps import ContainerDep, CurrentScope, ReadYourWrites, _scope
from domain.orders.model import OrderSnapshot
from domain.orders.platforms import parser_for
from domain.shared import ERASED, Forbidden, InvalidInput, Meta, NotFound, derived_id
from infra.bootstrap import Container
from infra.crypto import mask_name, mask_phone
from infra.orders.fetchers import fetch_details
from infra.orders.signatures import DetailWanted, push_messages, verify_push
from projections.orders.orders import get_order, list_orders

router = APIRouter(tags=["orders"])

PlatformName = Literal["taobao", "jd", "pdd", "douyin", "youzan"]


def payload_digest(payload: Any) -> str:
    """One order message, however the platform spaced or ordered its JSON."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


def snapshots(platform: str, payloads: list[Any]) -> list[tuple[OrderSnapshot, str]]:
    """Every payload through the platform's adapter; the first bad one refuses the lot, its
    field named with the payload's index when there are several."""
    parse = parser_for(platform)
    out = []
    for n, payload in enumerate(payloads):
        if not isinstance(payload, dict):
            raise InvalidInput(f"order {n} is not a JSON object", field=f"orders[{n}]")
        try:
            out.append((parse(payload), payload_digest(payload)))
        except InvalidInput as exc:
            if len(payloads) > 1:
                raise InvalidInput(
                    f"order {n}: {exc.detail}", field=f"orders[{n}].{exc.field}", code=exc.code
                ) from None
            raise
    return out


async def _with_details(platform: str, messages: list[Any], c: Container) -> list[Any]:
    """Douyin and Youzan messages that carry only ids become the detail the platform's API
    gives (infra/orders/fetchers.py); its HTTP calls block, so they run off the event loop."""
    if not any(isinstance(m, DetailWanted) for m in messages):
        return messages
    return await run_in_threadpool(fetch_details, platform, messages, c.order_details)


@router.post("/v1/integrations/orders/{platform}")
async def push(platform: PlatformName, request: Request, c: ContainerDep) -> object:
    body = await request.body()
    if len(body) > MAX_BODY * 8:
        raise InvalidInput("the body is too large", field="body")
    signed = verify_push(platform, request.headers, body, c.settings)
    if signed:
        actor = f"integration:{platform}"
    else:
        scope = _scope(c, request.headers.get("authorization"))
        if scope.role != "admin":
            raise Forbidden(f"{platform} orders are relayed by an admin token (the connector)")
        actor = f"{scope.actor} via integration:{platform}"
    payloads = await _with_details(platform, push_messages(platform, body), c)
    if not payloads:  # e.g. Youzan's test push when the URL is set up: nothing to record
        return {"orders": [], "position": None, "code": 0, "msg": "success"}
    items = snapshots(platform, payloads)
    meta = Meta(
        occurred_at=datetime.now(UTC),
        actor=actor,
        source=platform,
        correlation_id=request.state.correlation_id,
        causation_id=f"push:{platform}:{payload_digest([d for _, d in items])[:32]}",
    )
    result = await run_in_threadpool(c.orders.receive_batch, items, meta)
    answer: dict[str, Any] = {
        "orders": [o.__dict__ for o in result.outcomes],
        "position": result.position,
    }
    if signed:  # what Douyin and Youzan expect back, or they retry
        answer |= {"code": 0, "msg": "success"}
    return answer


def _present(order: dict[str, Any], c: Container, clear: bool) -> dict[str, Any]:
    sealed = order.pop("sealed_receiver")
    subject = order.pop("subject")
    receiver: dict[str, Any] | str | None = None
    if sealed:
        plain = c.vault.unseal(derived_id("subject", subject), sealed)
        if plain is None:
            receiver = ERASED
        else:
            r = orjson.loads(plain)
            receiver = (
                r
                if clear
                else {
                    "name": mask_name(r["name"]),
                    "phone": mask_phone(r["phone"]),
                    "address": "***",
                }
            )
    order["receiver"] = receiver
    return order


@router.get("/v1/orders", dependencies=[ReadYourWrites])
def orders(
    c: ContainerDep,
    scope: CurrentScope,
    platform: PlatformName | None = None,
    buyer_id: Annotated[str | None, Query(max_length=128)] = None,
    status: Literal["placed", "paid", "shipped", "completed", "cancelled"] | None = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> object:
    """Orders for admins and auditors (staff see them on their customers' portraits)."""
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("the order list is for admins and auditors")
    found = list_orders(
        c.read_db, platform=platform, buyer_id=buyer_id, status=status, after=after, limit=limit
    )
    for order in found:
        order.pop("sealed_receiver")
        order.pop("subject")
    return {"items": found, "next_after": found[-1]["position"] if len(found) == limit else None}


@router.get("/v1/orders/{order_id}", dependencies=[ReadYourWrites])
def order(order_id: UUID, c: ContainerDep, scope: CurrentScope) -> object:
    if scope.role not in ("admin", "auditor"):
        raise Forbidden("orders are read by admins and auditors")
    found = get_order(c.read_db, str(order_id))
    if found is None:
        raise NotFound("order not found")
    return _present(found, c, clear=scope.role == "admin")
