"""The event as it travels: one record shape for the bus body and for projections.

Projections receive `EventRecord`s whether they follow the store directly (embedded mode) or
JetStream (server mode), so the same projection code runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic

from domain.shared import event_context, event_name

_HIDDEN = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)  # rates travel as strings (CONVENTIONS.md)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_UTC_Z)


@dataclass(frozen=True)
class EventRecord:
    position: int
    originator_id: str
    originator_version: int
    topic: str
    context: str
    name: str  # ChannelCodeScanned
    occurred_at: str  # ISO-8601 UTC
    recorded_at: str
    actor: str
    source: str
    correlation_id: str
    causation_id: str
    data: dict[str, Any]

    @property
    def msg_id(self) -> str:
        """JetStream de-duplication id: <store>:<position>."""
        return f"scrm:{self.position}"

    def subject(self, prefix: str) -> str:
        return f"{prefix}.{self.context}.{self.name}"

    def body(self) -> bytes:
        return dumps(
            {
                "position": self.position,
                "originator_id": self.originator_id,
                "originator_version": self.originator_version,
                "topic": self.topic,
                "occurred_at": self.occurred_at,
                "recorded_at": self.recorded_at,
                "actor": self.actor,
                "source": self.source,
                "correlation_id": self.correlation_id,
                "causation_id": self.causation_id,
                "data": self.data,
            }
        )

    @classmethod
    def from_body(cls, body: bytes) -> EventRecord:
        d = orjson.loads(body)
        event_class = resolve_topic(d["topic"])
        return cls(
            position=d["position"],
            originator_id=d["originator_id"],
            originator_version=d["originator_version"],
            topic=d["topic"],
            context=event_context(event_class),
            name=event_name(event_class),
            occurred_at=d["occurred_at"],
            recorded_at=d["recorded_at"],
            actor=d["actor"],
            source=d["source"],
            correlation_id=d["correlation_id"],
            causation_id=d["causation_id"],
            data=d["data"],
        )

    def ts(self) -> datetime:
        return datetime.fromisoformat(self.occurred_at)


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def to_record(notification: Notification, mapper: Mapper[Any]) -> EventRecord:
    event = mapper.to_domain_event(notification)
    cls = type(event)
    meta = event.meta  # type: ignore[attr-defined]
    raw = {k: v for k, v in event.__dict__.items() if k not in _HIDDEN}
    data = orjson.loads(dumps(raw))  # the same plain JSON a bus consumer sees
    return EventRecord(
        position=notification.id,
        originator_id=str(notification.originator_id),
        originator_version=notification.originator_version,
        topic=notification.topic,
        context=event_context(cls),
        name=event_name(cls),
        occurred_at=_iso(meta.occurred_at),
        recorded_at=_iso(event.timestamp),  # type: ignore[attr-defined]
        actor=meta.actor,
        source=meta.source,
        correlation_id=meta.correlation_id,
        causation_id=meta.causation_id,
        data=data,
    )
