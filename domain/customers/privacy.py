"""Erasure (PIPL Art. 47), retention and legal holds.

A request restricts the customer at once: hidden from lists, search and portraits, no
processing but storage. The keys are destroyed when no retention period and no legal hold
still needs the content, and then at once. The decision is recorded (`CustomerErased`, no
personal data in it) before the keys go, under the customer's version: a hold placed at the
same moment makes the decision lose its race, so content under hold is never destroyed. If
the process stops between the record and the destruction, the next run finishes the job.

The retention policy and each legal hold are configuration, event-sourced like everything
else, so an auditor sees which policy version deferred or allowed an erasure, and who held what.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import event

from domain.customers.aggregates import BUYER_KINDS, Customer
from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import (
    Conflict,
    Gone,
    InvalidInput,
    Meta,
    NotFound,
    ScrmAggregate,
    Versions,
    derived_id,
    require_text,
)

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

# Starting points per industry, in years of communications kept after the last contact. They
# are defaults to confirm with counsel, not legal advice; the tenant publishes its own.
INDUSTRY_PRESETS: dict[str, int] = {
    "finance": 5,  # e.g. securities and banking sales records
    "insurance": 5,
    "medical": 15,  # outpatient records are kept 15 years
    "education": 3,
    "retail": 0,
    "general": 0,
}
MAX_YEARS = 30


def key_ids(customer: Customer) -> list[UUID]:
    """Every data key holding this customer's personal data: their own, that of each customer
    merged into them (whose phones stay sealed under it), one per archive subject
    (conversation content and notes about it), and one per linked platform buyer (order
    receivers: name, phone, address)."""
    buyers = [f"{i['kind']}:{i['value']}" for i in customer.identities if i["kind"] in BUYER_KINDS]
    merged_in = {m["absorbed_id"] for m in customer.merges} | {
        i["sealed_for"] for i in customer.identities if "sealed_for" in i
    }
    return [
        customer.id,
        *(UUID(k) for k in sorted(merged_in)),
        *(derived_id("subject", s) for s in [*customer.archive_subjects(), *buyers]),
    ]


class RetentionPolicy(Versions, ScrmAggregate):
    """How long communications are kept after the last contact. One policy for the tenant;
    every version is an event with the time it takes effect."""

    VERSION, WHAT = "policy_version", "retention policy"

    @staticmethod
    def create_id() -> UUID:
        return derived_id("privacy", "retention-policy")

    @event("Published")
    def __init__(
        self, industry: str, communications_years: int, effective_from: datetime, meta: Meta
    ):
        self.versions = []
        self._add(industry, communications_years, effective_from)

    def revise(
        self, industry: str, communications_years: int, effective_from: datetime, meta: Meta
    ) -> None:
        self._revised(
            industry=industry,
            communications_years=communications_years,
            effective_from=effective_from,
            policy_version=len(self.versions) + 1,
            meta=meta,
        )

    @event("Revised")
    def _revised(
        self,
        industry: str,
        communications_years: int,
        effective_from: datetime,
        policy_version: int,
        meta: Meta,
    ) -> None:
        self._add(industry, communications_years, effective_from)

    def _add(self, industry: str, years: int, effective_from: datetime) -> None:
        self._add_version(effective_from, industry=industry, communications_years=years)


class LegalHold(ScrmAggregate):
    """Content of one customer that must not be destroyed while a case runs (诉讼保全)."""

    @event("Placed")
    def __init__(self, customer_id: UUID, case_reference: str, authority: str, meta: Meta):
        self.customer_id = customer_id
        self.case_reference = case_reference
        self.active = True

    def release(self, meta: Meta) -> None:
        if not self.active:
            raise Conflict("this legal hold is already released", code="hold_released")
        self._released(meta=meta)

    @event("Released")
    def _released(self, meta: Meta) -> None:
        self.active = False


def restricted_receipt(
    app: CustomersApp, source: str, digest: str, kind: str, customer: Customer, meta: Meta
) -> InboxOutcome:
    """A platform's news about a customer who asked to be erased: kept as a receipt (storage),
    not applied (processing); answered as handled, so the platform stops retrying."""
    receipt = InboxReceipt(
        source=source,
        digest=digest,
        kind=kind,
        outcome=f"ignored: customer {customer.erasure}",
        meta=meta,
    )
    return InboxOutcome(receipt.outcome, str(customer.id), app.save_all(receipt))


@dataclass(frozen=True)
class ErasureOutcome:
    customer_id: UUID
    status: str  # restricted (deferred) or erased
    retained_until: datetime | None
    holds: list[str]
    policy_version: int | None
    position: int | None
    destroyed: int = 0


# How the service layer learns when a customer last communicated (from the archive read
# model, by archive subject); None when never.
LastContact = Callable[[list[str]], datetime | None]


def set_retention_policy(
    app: CustomersApp,
    *,
    industry: str,
    communications_years: int | None,
    effective_from: datetime,
    meta: Meta,
) -> tuple[int, int | None]:
    """Publish the next version. Answers (policy_version, position)."""
    if industry not in INDUSTRY_PRESETS:
        raise InvalidInput(
            f"industry must be one of {', '.join(INDUSTRY_PRESETS)}", field="industry"
        )
    years = INDUSTRY_PRESETS[industry] if communications_years is None else communications_years
    if isinstance(years, bool) or not isinstance(years, int) or not 0 <= years <= MAX_YEARS:
        raise InvalidInput(
            f"communications_years must be a whole number from 0 to {MAX_YEARS}",
            field="communications_years",
        )
    if effective_from.tzinfo is None:
        raise InvalidInput("effective_from must include a timezone", field="effective_from")

    def attempt() -> tuple[int, int | None]:
        policy = app.find(RetentionPolicy, RetentionPolicy.create_id())
        if policy is None:
            policy = RetentionPolicy(
                industry=industry,
                communications_years=years,
                effective_from=effective_from,
                meta=meta,
            )
        else:
            policy.revise(industry, years, effective_from, meta)
        return len(policy.versions), app.save_all(policy)

    return app.retrying(attempt)


def place_legal_hold(
    app: CustomersApp,
    customer_id: UUID,
    *,
    case_reference: str,
    authority: str,
    meta: Meta,
) -> tuple[UUID, int | None]:
    case_reference = require_text(case_reference, "case_reference", max_len=100)
    authority = require_text(authority, "authority", max_len=100)

    def attempt() -> tuple[UUID, int | None]:
        customer = app.load(Customer, customer_id, "customer")
        if customer.erasure == "erased":
            raise Gone("this customer's data has already been erased", code="customer_erased")
        customer.check_not_merged()  # held content is the survivor's now
        hold = LegalHold(
            customer_id=customer_id, case_reference=case_reference, authority=authority, meta=meta
        )
        customer.note_hold(hold.id, meta)
        return hold.id, app.save_all(hold, customer)

    return app.retrying(attempt)


def release_legal_hold(
    app: CustomersApp, hold_id: UUID, *, now: datetime, last_contact: LastContact, meta: Meta
) -> tuple[int | None, ErasureOutcome | None]:
    """Release, then — if an erasure was waiting only for this hold — erase at once."""

    def attempt() -> int | None:
        hold = app.load(LegalHold, hold_id, "legal hold")
        hold.release(meta)
        customer = app.load(Customer, hold.customer_id, "customer")
        customer.note_hold_released(hold.id, meta)
        return app.save_all(hold, customer)

    position = app.retrying(attempt)
    customer = app.load(Customer, _hold_customer(app, hold_id), "customer")
    if customer.erasure != "restricted":
        return position, None
    return position, decide_erasure(app, customer.id, now=now, last_contact=last_contact, meta=meta)


def _hold_customer(app: CustomersApp, hold_id: UUID) -> UUID:
    return app.load(LegalHold, hold_id, "legal hold").customer_id


def request_erasure(
    app: CustomersApp,
    customer_id: UUID,
    *,
    received_via: str,
    now: datetime,
    last_contact: LastContact,
    meta: Meta,
) -> ErasureOutcome:
    received_via = require_text(received_via, "received_via", max_len=50)

    def attempt() -> int | None:
        customer = app.load(Customer, customer_id, "customer")
        customer.restrict_for_erasure(received_via, meta)
        return app.save_all(customer)

    app.retrying(attempt)
    return decide_erasure(app, customer_id, now=now, last_contact=last_contact, meta=meta)


def decide_erasure(
    app: CustomersApp,
    customer_id: UUID,
    *,
    now: datetime,
    last_contact: LastContact,
    meta: Meta,
) -> ErasureOutcome:
    """Erase now if nothing requires the content any longer; otherwise record (once per
    change of reason) why it waits and until when. Idempotent: the scheduler calls it for
    every waiting request, and again for erased ones whose keys a crash left behind."""

    def attempt() -> ErasureOutcome:
        customer = app.load(Customer, customer_id, "customer")
        if customer.erasure is None:
            raise NotFound("no erasure was requested for this customer")
        if customer.erasure == "erased":
            destroyed = sum(app.vault.destroy(k) for k in customer.destroyed_keys)
            return ErasureOutcome(customer.id, "erased", None, [], None, None, destroyed)
        policy = app.find(RetentionPolicy, RetentionPolicy.create_id())
        version = policy.in_force(now) if policy else None
        until = None
        last = last_contact(customer.archive_subjects())
        if version and version["communications_years"] and last is not None:
            until = last + timedelta(days=365 * version["communications_years"])
            until = until if until > now else None
        number = version["policy_version"] if version else None
        holds = sorted(str(h) for h in customer.holds)
        if until is None and not holds:
            keys = key_ids(customer)
            customer.record_erased([str(k) for k in keys], number, meta)
            position = app.save_all(customer)  # the decision first: a racing hold wins
            destroyed = sum(app.vault.destroy(k) for k in keys)
            return ErasureOutcome(customer.id, "erased", None, [], number, position, destroyed)
        reason = "legal_hold" if holds else "retention"
        position = None
        if customer.defer_erasure(reason, until, holds, number, meta):
            position = app.save_all(customer)
        return ErasureOutcome(customer.id, "restricted", until, holds, number, position)

    return app.retrying(attempt)
