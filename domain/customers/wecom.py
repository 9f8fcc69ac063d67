"""WeCom 外部联系人 changes (change_external_contact), applied to customers and codes.

Each callback is recorded once (an inbox receipt saved with its effects), and a change older
than what a customer's record already says for that staff member is received but not applied.
An add through a channel code with a welcome message (欢迎语) sends it with the add's
WelcomeCode, after the receipt is saved, so a repeated callback never sends it twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from domain.customers.aggregates import (
    ChannelCode,
    Customer,
    normalise_identity,
)
from domain.customers.privacy import restricted_receipt
from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import ConcurrentUpdate, Conflict, InvalidInput, Meta

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

CONTACT_CHANGES = (
    "add_external_contact",
    "add_half_external_contact",
    "edit_external_contact",
    "del_external_contact",
    "del_follow_user",
    "transfer_fail",
)
ADDS = ("add_external_contact", "add_half_external_contact")  # both may carry a WelcomeCode
WELCOME_CODE_TTL = timedelta(seconds=20)  # WeCom: a WelcomeCode is valid for 20 s


@dataclass(frozen=True)
class ContactChange:
    change_type: str
    staff_id: str  # WeCom UserID
    external_userid: str
    digest: str  # of the decrypted callback: the same callback twice has one effect
    received_at: datetime  # our clock when it arrived: how old its WelcomeCode is
    state: str | None = None  # the contact way's state: which channel code brought them
    welcome_code: str | None = None
    fail_reason: str | None = None

    def __post_init__(self) -> None:
        if self.change_type not in CONTACT_CHANGES:
            raise InvalidInput(f"unknown ChangeType {self.change_type!r}", field="ChangeType")
        if not self.staff_id:
            raise InvalidInput("UserID is required", field="UserID")
        normalise_identity("wecom_external_userid", self.external_userid, within="callback")
        if self.welcome_code is not None and len(self.welcome_code) > 512:
            raise InvalidInput("WelcomeCode is too long", field="WelcomeCode")


@dataclass(frozen=True)
class WelcomeDue:
    """A welcome message decided on with the callback, to send once its receipt is saved."""

    customer_id: UUID
    staff_id: str
    channel_code: UUID
    welcome_code: str
    text: str


@dataclass(frozen=True)
class ContactOutcome(InboxOutcome):
    welcome: WelcomeDue | None = None


def apply_contact_change(app: CustomersApp, change: ContactChange, meta: Meta) -> InboxOutcome:
    outcome = app.once("wecom", change.digest, lambda: _apply_once(app, change, meta))
    due = outcome.welcome if isinstance(outcome, ContactOutcome) else None
    if due is None:  # nothing to send, or a duplicate (whose first delivery decided)
        return outcome
    # Only the delivery that saved the receipt gets here. A crash between that save and this
    # send loses the welcome: at most once, and the code would have expired before a retry.
    failure = app.welcome_sender.send_welcome(due.welcome_code, due.text)
    now = replace(meta, occurred_at=change.received_at)

    def record() -> int | None:
        customer = app.load(Customer, due.customer_id, "customer")
        customer.record_welcome(
            due.staff_id, channel_code=due.channel_code, failure=failure, meta=now
        )
        return app.save_all(customer)

    return replace(outcome, position=app.retrying(record))


def _apply_once(app: CustomersApp, change: ContactChange, meta: Meta) -> InboxOutcome:
    customer = app._find_customer({"wecom_external_userid": change.external_userid})
    if customer is not None and customer.erasure is not None:
        return restricted_receipt(app, "wecom", change.digest, change.change_type, customer, meta)
    code = app.code_for_state(change.state)
    to_save: list[Any] = []
    outcome = "applied"
    new_customer = False
    welcome = None
    kind = change.change_type
    # A removal may be the first we hear of a customer (reordering): the customer is recorded
    # with the removal, so that the older add arriving later is stale, not a resurrection.
    if customer is None and kind == "transfer_fail":
        outcome = "ignored: unknown customer"
    elif customer is None:
        adding = kind.startswith("add_") or kind == "edit_external_contact"
        customer = Customer(
            id=uuid4(),
            owner=change.staff_id if adding and app._can_serve(change.staff_id) else None,
            source_channel_code=code.id if code else None,
            identities=[{"kind": "wecom_external_userid", "value": change.external_userid}],
            tags=list(code.tags) if code else [],
            meta=meta,
        )
        new_customer = True
        try:
            to_save += app._claims(
                customer.id, [("wecom_external_userid", change.external_userid)], meta
            )
        except Conflict as exc:  # claimed since we looked: a race to retry
            raise ConcurrentUpdate(exc.detail) from None
    if customer is not None:
        applied = _apply_to(customer, change, code, app, meta, to_save, new_customer)
        outcome = outcome if applied else "stale"
        if kind in ADDS and code is not None:
            welcome = _welcome(customer, change, code, applied, meta)
        to_save.append(customer)
    to_save.append(
        InboxReceipt(source="wecom", digest=change.digest, kind=kind, outcome=outcome, meta=meta)
    )
    position = app.save_all(*to_save)
    return ContactOutcome(outcome, str(customer.id) if customer else None, position, welcome)


def _welcome(
    customer: Customer, change: ContactChange, code: ChannelCode, applied: bool, meta: Meta
) -> WelcomeDue | None:
    """The welcome to send after the save, if any. A welcome that must not be sent is
    recorded as failed with the callback's other effects, saying why."""
    if not change.welcome_code or not code.welcome_message:
        return None
    failure = None
    if not applied:  # a newer change for this staff member is known: the add is history
        failure = "contact_change_stale"
    elif code.disabled:
        failure = "code_disabled"
    elif change.received_at - meta.occurred_at >= WELCOME_CODE_TTL:
        failure = "welcome_code_expired"
    if failure is not None:
        now = replace(meta, occurred_at=change.received_at)
        customer.record_welcome(change.staff_id, channel_code=code.id, failure=failure, meta=now)
        return None
    return WelcomeDue(
        customer_id=customer.id,
        staff_id=change.staff_id,
        channel_code=code.id,
        welcome_code=change.welcome_code,
        text=code.welcome_message,
    )


def _apply_to(
    customer: Customer,
    change: ContactChange,
    code: ChannelCode | None,
    app: CustomersApp,
    meta: Meta,
    to_save: list[Any],
    new_customer: bool,
) -> bool:
    kind, staff = change.change_type, change.staff_id
    if kind in ADDS:
        added = customer.add_contact(
            staff,
            half=kind == "add_half_external_contact",
            channel_code=code.id if code else None,
            meta=meta,
        )
        if added and code is not None:
            code.record_contact_added(
                customer_id=customer.id, staff_id=staff, new_customer=new_customer, meta=meta
            )
            to_save.append(code)
        if added and customer.owner is None and app._can_serve(staff):
            customer.assign_owner(staff, "wecom_contact_added", meta)
        return added
    if kind == "edit_external_contact":
        return customer.note_contact_edited(staff, meta)
    if kind == "transfer_fail":
        customer.record_transfer_failure(staff, change.fail_reason or "unknown", meta)
        return True
    return customer.remove_contact(
        staff, by="staff" if kind == "del_external_contact" else "customer", meta=meta
    )
