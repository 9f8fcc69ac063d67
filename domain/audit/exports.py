"""Archive exports for regulators. Each export is on record (who asked, for what scope, when,
and the digest of what was produced), and exports form a chain: each names the digest of the
one before, so a regulator holding consecutive exports sees that none is missing or altered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Conflict, InvalidInput, Meta, ScrmAggregate, derived_id

CONTEXTS = (
    "audit",
    "automation",
    "campaigns",
    "channels",
    "conversations",
    "customers",
    "handover",
    "inbox",
    "orders",
    "pricing",
    "promotions",
    "segments",
    "settlement",
    "tickets",
)
MAX_FILTER_VALUES = 100


def export_scope(
    since: datetime,
    until: datetime,
    customers: list[str] | None = None,
    staff: list[str] | None = None,
    contexts: list[str] | None = None,
) -> dict[str, Any]:
    """What an export covers, checked: events whose business time is in [since, until),
    narrowed to some customers, staff members or contexts (each list is OR-ed, the lists
    AND-ed)."""
    for name, moment in (("from", since), ("to", until)):
        if moment.tzinfo is None:
            raise InvalidInput(f"{name} must include a timezone", field=name)
    if since >= until:
        raise InvalidInput("from must be before to", field="from")
    ids = []
    for i, value in enumerate(customers or []):
        try:
            ids.append(str(UUID(value)))
        except ValueError:
            raise InvalidInput(
                f"customer {value!r} is not a customer id (UUID)", field=f"customers[{i}]"
            ) from None
    for i, member in enumerate(staff or []):
        if not member.strip() or len(member) > 64:
            raise InvalidInput("a staff id is 1-64 characters", field=f"staff[{i}]")
    for i, context in enumerate(contexts or []):
        if context not in CONTEXTS:
            raise InvalidInput(
                f"unknown context {context!r}; known: {', '.join(CONTEXTS)}", field=f"contexts[{i}]"
            )
    for name, values in (("customers", ids), ("staff", staff or []), ("contexts", contexts or [])):
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidInput(f"at most {MAX_FILTER_VALUES} {name} per export", field=name)
    return {
        "from": since.isoformat(),
        "to": until.isoformat(),
        "customers": sorted(set(ids)),
        "staff": sorted(set(staff or [])),
        "contexts": sorted(set(contexts or [])),
    }


class ExportChain(ScrmAggregate):
    """The exports so far, in order, with the last one's digest."""

    @staticmethod
    def create_id() -> UUID:
        return derived_id("archive-export", "chain")

    @event("Started")
    def __init__(self, meta: Meta):
        self.count = 0
        self.last_digest: str | None = None
        self.last_export: str | None = None

    def extend(self, export_id: UUID, digest: str, previous_digest: str | None, meta: Meta) -> int:
        if previous_digest != self.last_digest:
            raise Conflict(
                "another export was recorded while this one was produced; run it again",
                code="export_chain_moved",
            )
        self._extended(number=self.count + 1, export_id=str(export_id), digest=digest, meta=meta)
        return self.count

    @event("Extended")
    def _extended(self, number: int, export_id: str, digest: str, meta: Meta) -> None:
        self.count = number
        self.last_digest = digest
        self.last_export = export_id


class ArchiveExport(ScrmAggregate):
    """One export: who asked, what it covers, and what was produced (counts, positions, the
    Merkle root of its lines, the digest of its SHA256SUMS, and the export it follows)."""

    @event("Produced")
    def __init__(
        self,
        id: UUID,  # chosen first: the export's files are named by it before it is recorded
        number: int,
        requested_by: str,
        role: str,
        scope: dict[str, Any],
        events: int,
        first_position: int | None,
        last_position: int | None,
        tree_size: int,
        merkle_root: str,
        digest: str,
        previous_digest: str | None,
        signing_keys: dict[str, str],
        meta: Meta,
    ):
        self.number = number
        self.digest = digest
