"""收件箱: one receipt per integration message, so a message delivered twice has one effect.

The receipt's id derives from the source and a digest of the message, so recording the same
message again conflicts in the store and changes nothing. It is saved in the same atomic save
as the message's effects, and says what became of the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from eventsourcing.domain import event

from domain.shared import Meta, ScrmAggregate, derived_id


class InboxReceipt(ScrmAggregate):
    @staticmethod
    def create_id(source: str, digest: str) -> UUID:
        return derived_id(f"inbox:{source}", digest)

    @event("Received")
    def __init__(self, source: str, digest: str, kind: str, outcome: str, meta: Meta):
        self.source = source
        self.kind = kind
        self.outcome = outcome  # applied, stale (older than what we know), ignored: <why>


@dataclass(frozen=True)
class InboxOutcome:
    outcome: str  # applied, stale, duplicate, received, ignored: <why>
    subject_id: str | None  # e.g. the customer the message concerned
    position: int | None
