"""The base application every context uses: one shared store, so one log of positions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import JSONTranscoder, RecordConflictError, Transcoding

from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import ConcurrentUpdate, Meta, NotFound

A = TypeVar("A")
R = TypeVar("R")


class MetaAsDict(Transcoding):
    type = Meta
    name = "meta"

    def encode(self, obj: Meta) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Meta:
        occurred_at = data["occurred_at"]
        if isinstance(occurred_at, str):
            occurred_at = datetime.fromisoformat(occurred_at)
        return Meta(
            occurred_at=occurred_at,
            actor=data["actor"],
            source=data["source"],
            correlation_id=data["correlation_id"],
            causation_id=data["causation_id"],
        )


class ScrmApplication(Application):  # type: ignore[type-arg]
    # One name for every context's application: they all append to one log (`scrm_events`),
    # so a position is one number and tracking names one stream.
    name = "scrm"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # eventsourcing names each subclass after itself unless it says otherwise; every
        # context must share the one log, so the name is fixed here for all of them.
        super().__init_subclass__(**kwargs)
        cls.name = ScrmApplication.name

    def __init__(self, env: dict[str, str] | None = None):
        super().__init__(env)
        self.on_recorded: list[Callable[[int], None]] = []

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(MetaAsDict())

    def save_all(self, *aggregates: Any) -> int | None:
        """Save atomically; answer the position of the last event recorded."""
        try:
            recordings = self.save(*aggregates)
        except RecordConflictError:
            raise ConcurrentUpdate(
                "another change to the same record was saved first; reload and try again"
            ) from None
        if not recordings:
            return None
        for hook in self.on_recorded:
            hook(len(recordings))
        return max(r.notification.id for r in recordings)

    # --- plumbing every context's commands use ----------------------------------------------

    def load(self, cls: type[A], aggregate_id: UUID, what: str) -> A:
        found = self.find(cls, aggregate_id)
        if found is None:
            raise NotFound(f"{what} not found")
        return found

    def find(self, cls: type[A], aggregate_id: UUID) -> A | None:
        try:
            found: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return found if isinstance(found, cls) else None

    def retrying(self, attempt: Callable[[], R], tries: int = 12) -> R:
        """Re-run a command whose save lost a race, with jittered backoff so contenders
        spread out; the last loss is answered 409."""
        for n in range(tries - 1):
            try:
                return attempt()
            except ConcurrentUpdate:
                time.sleep(random.uniform(0, min(0.002 * 2**n, 0.05)))
        return attempt()

    def once(self, source: str, digest: str, work: Callable[[], InboxOutcome]) -> InboxOutcome:
        """Handle an integration message once. `work` saves an InboxReceipt with its effects;
        a duplicate racing it loses on the receipt's id and, retried, finds the receipt."""

        def attempt() -> InboxOutcome:
            if self.find(InboxReceipt, InboxReceipt.create_id(source, digest)) is not None:
                return InboxOutcome("duplicate", None, None)
            return work()

        return self.retrying(attempt)

    def receive_only(self, source: str, digest: str, kind: str, meta: Meta) -> InboxOutcome:
        """A message scrm does not act on (yet): kept on record, once, so nothing a platform
        told us is lost and a later version can replay it."""

        def work() -> InboxOutcome:
            receipt = InboxReceipt(
                source=source, digest=digest, kind=kind, outcome="received: not acted on", meta=meta
            )
            return InboxOutcome("received", None, self.save_all(receipt))

        return self.once(source, digest, work)
