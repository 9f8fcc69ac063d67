"""Official Account (公众号) fans: subscribe (possibly through a parametric QR code), SCAN by
someone already following, unsubscribe. A fan whose unionid is already known — from WeCom,
say — joins that customer instead of becoming a second one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from domain.customers.aggregates import Customer, normalise_identity
from domain.customers.privacy import restricted_receipt
from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import ConcurrentUpdate, Conflict, InvalidInput, Meta

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

FAN_EVENTS = ("subscribe", "SCAN", "unsubscribe")


@dataclass(frozen=True)
class FanEvent:
    event: str
    app_id: str
    openid: str
    digest: str
    scene: str | None = None  # the QR scene (EventKey without "qrscene_")
    unionid: str | None = None  # from WeChat's user directory, when it is known

    def __post_init__(self) -> None:
        if self.event not in FAN_EVENTS:
            raise InvalidInput(f"unknown Event {self.event!r}", field="Event")
        normalise_identity("openid", self.openid, within="callback")
        if self.unionid is not None:
            normalise_identity("unionid", self.unionid, within="callback")


def apply_fan_event(app: CustomersApp, fan: FanEvent, meta: Meta) -> InboxOutcome:
    return app.once("wechat_oa", fan.digest, lambda: _apply_once(app, fan, meta))


def _apply_once(app: CustomersApp, fan: FanEvent, meta: Meta) -> InboxOutcome:
    identities = {"openid": fan.openid, **({"unionid": fan.unionid} if fan.unionid else {})}
    customer = app._find_customer(identities)  # a known unionid finds the WeCom-side customer
    if customer is not None and customer.erasure is not None:
        return restricted_receipt(app, "wechat_oa", fan.digest, fan.event, customer, meta)
    code = app.code_for_state(fan.scene)
    to_save: list[Any] = []
    new_customer = customer is None
    if customer is None:
        customer = Customer(
            id=uuid4(),
            owner=None,
            source_channel_code=code.id if code else None,
            identities=[{"kind": k, "value": v} for k, v in identities.items()],
            tags=list(code.tags) if code else [],
            meta=meta,
        )
        try:
            to_save += app._claims(customer.id, identities.items(), meta)
        except Conflict as exc:  # claimed since we looked: a race to retry
            raise ConcurrentUpdate(exc.detail) from None
    else:
        for kind, value in identities.items():
            if not customer.has_identity(kind, value):
                claims = app._claims(customer.id, [(kind, value)], meta, skip_taken=True)
                if claims:
                    customer.add_identity(kind, value, meta)
                    to_save += claims
    code_id = code.id if code else None
    if fan.event == "unsubscribe":
        applied = customer.unsubscribe(fan.app_id, meta)
    elif fan.event == "subscribe" or fan.app_id not in customer.subscriptions:
        # A SCAN from someone we did not know follows is news of a follow.
        applied = customer.subscribe(fan.app_id, channel_code=code_id, meta=meta)
    else:
        applied = True  # a scan by a known follower: only the code's count changes
    if applied and code is not None and fan.event != "unsubscribe":
        code.record_official_account_scan(
            customer_id=customer.id,
            new_customer=new_customer,
            subscribed=fan.event == "subscribe",
            meta=meta,
        )
        customer.tag(list(code.tags), meta)
        to_save.append(code)
    receipt = InboxReceipt(
        source="wechat_oa",
        digest=fan.digest,
        kind=fan.event,
        outcome="applied" if applied else "stale",
        meta=meta,
    )
    position = app.save_all(customer, *to_save, receipt)
    return InboxOutcome("applied" if applied else "stale", str(customer.id), position)
