"""The base application every context uses: one shared store, so one log of positions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, RecordConflictError, Transcoding

from domain.shared import ConcurrentUpdate, Meta


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
