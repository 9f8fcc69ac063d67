"""The event as it travels: one record shape for the bus body and for projections.

Projections receive `EventRecord`s whether they follow the store directly (embedded mode) or
JetStream (server mode), so the same projection code runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any
from uuid import UUID

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


@lru_cache(maxsize=512)
def _describe(topic: str) -> tuple[str, str, bool]:
    """(context, name, needs the domain class to decode) for an event topic."""
    cls = resolve_topic(topic)
    return event_context(cls), event_name(cls), getattr(cls, "class_version", 1) > 1


class _NeedsMapper(Exception):
    pass


def _plain(node: Any) -> Any:
    """The transcoder's JSON as plain JSON: what `dumps` makes of the decoded objects."""
    if isinstance(node, dict):
        if len(node) == 2 and "_type_" in node and "_data_" in node:
            kind, value = node["_type_"], node["_data_"]
            if kind == "datetime_iso":
                return value.replace("+00:00", "Z")
            if kind == "uuid_hex":
                return str(UUID(value))
            if kind in ("decimal_str", "meta"):
                return _plain(value)
            raise _NeedsMapper(kind)
        # Only containers can hold a wrapped value: leaves are taken as they are, without a
        # call each (most of an event's values are leaves; this is every read's hot path).
        return {k: _plain(v) if type(v) in _CONTAINERS else v for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) if type(v) in _CONTAINERS else v for v in node]
    return node


_CONTAINERS = (dict, list)


def to_record(notification: Notification, mapper: Mapper[Any]) -> EventRecord:
    """Straight from the stored JSON where it can be (rebuilds and the relay read every
    event); through the domain class when an event needs upcasting or a custom type."""
    context, name, versioned = _describe(notification.topic)
    if not versioned and mapper.cipher is None and mapper.compressor is None:
        try:
            state = _plain(orjson.loads(notification.state))
        except _NeedsMapper:
            state = None
        if state is not None and "class_version" not in state:
            meta = state.pop("meta")
            recorded_at = state.pop("timestamp")
            for hidden in _HIDDEN:
                state.pop(hidden, None)
            return EventRecord(
                position=notification.id,
                originator_id=str(notification.originator_id),
                originator_version=notification.originator_version,
                topic=notification.topic,
                context=context,
                name=name,
                occurred_at=meta["occurred_at"],
                recorded_at=recorded_at,
                actor=meta["actor"],
                source=meta["source"],
                correlation_id=meta["correlation_id"],
                causation_id=meta["causation_id"],
                data=state,
            )
    return to_record_via_domain(notification, mapper)


def to_record_via_domain(notification: Notification, mapper: Mapper[Any]) -> EventRecord:
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


def sortable_time(value: str | datetime) -> str:
    """Fixed-width UTC time (microseconds always present), so that text order is time order
    in any database: '...:00Z' would otherwise sort after '...:00.5Z'."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
