"""Merging two records of one person (合并客户), and undoing a merge that was wrong.

A merge is two events saved in one recording: `CustomerMerged` on the survivor (what the
absorbed customer brought: identities, tags, contacts, follows, as it had them) and
`CustomerMergedInto` on the absorbed customer. Identity claims keep pointing at the absorbed
customer; whoever resolves a claim follows the pointer (`follow_merges`), so later callbacks,
scans, orders and identity additions about the absorbed customer land on the survivor.

An undo is two events as well, `CustomerMergeUndone` on the absorbed customer (what comes
back, in its state now) and `CustomerUnmerged` on the survivor (what leaves it). Only the
merge in force can be undone; everything else recorded on the survivor meanwhile stays there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from domain.customers.aggregates import Customer
from domain.scope import Scope
from domain.shared import Conflict, InvalidInput, Meta, require_text

if TYPE_CHECKING:
    from domain.customers.application import CustomersApp

# Merging into a merged customer is refused, so a chain only grows when a survivor is merged
# later itself; the bound only guards against a corrupted log.
MAX_CHAIN = 32


@dataclass(frozen=True)
class MergeRecorded:
    """What a merge or an undo answers: the survivor (`id`), the absorbed customer, the
    versions of both and the position of the last event."""

    id: str
    position: int | None
    version: int
    absorbed_id: str
    absorbed_version: int


def follow_merges(customer: Customer, find: Callable[[UUID], Customer | None]) -> Customer:
    """The customer whose record now holds this one's facts: itself, or the survivor of the
    merge in force (followed on, since a survivor may have been merged later itself)."""
    for _ in range(MAX_CHAIN):
        if customer.merged_into is None:
            return customer
        survivor = find(customer.merged_into)
        if survivor is None:
            return customer
        customer = survivor
    raise Conflict(
        f"customer {customer.id} is at the end of too long a chain of merges",
        code="merge_chain_too_long",
    )


def merge_customers(
    app: CustomersApp,
    survivor_id: UUID,
    absorbed_id: UUID,
    *,
    reason: str,
    expected_versions: Mapping[UUID, int] | None,
    scope: Scope,
    meta: Meta,
) -> MergeRecorded:
    reason = require_text(reason, "reason", max_len=500)
    expected = dict(expected_versions or {})
    if set(expected) - {survivor_id, absorbed_id}:
        raise InvalidInput(
            "expected_versions may only name the two customers being merged",
            field="expected_versions",
        )

    def attempt() -> MergeRecorded:
        survivor = app.get_customer(survivor_id, scope)
        absorbed = app.get_customer(absorbed_id, scope)
        survivor.check_version(expected.get(survivor_id))
        absorbed.check_version(expected.get(absorbed_id))
        survivor.absorb(absorbed, reason, meta)
        # The survivor's event first: a read model copies what the absorbed one had before
        # it lets it go.
        position = app.save_all(survivor, absorbed)
        return MergeRecorded(
            str(survivor.id), position, survivor.version, str(absorbed.id), absorbed.version
        )

    # A lost race (a callback for either) is re-decided on the new state; a stated version
    # that is no longer current is answered stale_version.
    return app.retrying(attempt)


def undo_merge(
    app: CustomersApp,
    survivor_id: UUID,
    absorbed_id: UUID,
    *,
    reason: str,
    scope: Scope,
    meta: Meta,
) -> MergeRecorded:
    reason = require_text(reason, "reason", max_len=500)

    def attempt() -> MergeRecorded:
        survivor = app.get_customer(survivor_id, scope)
        absorbed = app.get_customer(absorbed_id, scope)
        survivor.undo_merge(absorbed, reason, meta)
        # What comes back first: a read model copies it from the survivor before it leaves.
        position = app.save_all(absorbed, survivor)
        return MergeRecorded(
            str(survivor.id), position, survivor.version, str(absorbed.id), absorbed.version
        )

    return app.retrying(attempt)
