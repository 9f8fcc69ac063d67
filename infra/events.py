"""The event as it travels: one record shape for the bus body and for projections.

Projections receive `EventRecord`s whether they follow the store directly (embedded mode) or
JetStream (server mode), so the same projection code runs on both.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import resolve_topic

from domain.shared import Meta, event_context, event_name

_HIDDEN = {"originator_id", "originator_version", "timestamp", "meta", "originator_topic"}


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)  # rates travel as strings (CONVENTIONS.md)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default, option=orjson.OPT_UTC_Z)


class EventRecord(NamedTuple):
    """Immutable, and a tuple: made for every event every reader reads (a frozen dataclass
    took 5 µs to construct)."""

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

    def caused(self, actor: str, source: str, at: datetime | None = None) -> Meta:
        """The meta of what a process records because of this event: in its correlation,
        caused by it, at its business time unless told otherwise."""
        return Meta(
            occurred_at=at or self.ts(),
            actor=actor,
            source=source,
            correlation_id=self.correlation_id,
            causation_id=f"event:{self.originator_id}:{self.originator_version}",
        )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@lru_cache(maxsize=512)
def _describe(topic: str) -> tuple[str, str, bool]:
    """(context, name, needs the domain class to decode) for an event topic."""
    cls = resolve_topic(topic)
    return event_context(cls), event_name(cls), getattr(cls, "class_version", 1) > 1


# The transcoder's wrappers whose value is a string (domain/transcoding.py writes them without
# spaces), rewritten in the stored bytes before they are parsed: one regex split in C instead
# of a Python walk over every value of every event. A quote inside a JSON string is always
# escaped, so the pattern only ever matches the transcoder's own objects. One group per kind:
# a datetime (quoted), a UUID's 32 hex digits, a decimal (quoted).
_WRAPPED = re.compile(
    rb'\{"_type_":"(?:datetime_iso","_data_":("[^"\\]*")'
    rb'|uuid_hex","_data_":"([0-9a-f]{32})"'
    rb'|decimal_str","_data_":("[^"\\]*"))\}'
)
_TYPE = b'"_type_":'


def _unwrapped(state: bytes) -> bytes:
    parts = _WRAPPED.split(state)  # text, (when, uuid, number), text, ...
    if len(parts) == 1:
        return state
    out = [parts[0]]
    for i in range(1, len(parts), 4):
        when, uuid = parts[i], parts[i + 1]
        if when is not None:
            out.append(when.replace(b"+00:00", b"Z"))  # as `dumps` writes UTC
        elif uuid is not None:
            out.append(
                b'"%b-%b-%b-%b-%b"' % (uuid[:8], uuid[8:12], uuid[12:16], uuid[16:20], uuid[20:])
            )
        else:
            out.append(parts[i + 2])  # rates travel as strings
        out.append(parts[i + 3])
    return b"".join(out)


def plain_state(state: bytes) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(event state, meta) as plain JSON, what `dumps` makes of the decoded objects; None when
    the state holds a value only the domain class can decode (a custom type), or no meta."""
    if _TYPE not in state:
        return None
    state = _unwrapped(state)
    if state.count(_TYPE) != 1:  # only the meta wrapper may be left
        return None
    try:
        d = orjson.loads(state)
    except orjson.JSONDecodeError:  # NaN, or an integer past 64 bits: the standard decoder's
        return None
    wrapper = d.pop("meta", None)
    if type(wrapper) is not dict or wrapper.get("_type_") != "meta":
        return None
    return d, wrapper["_data_"]


def to_record(notification: Notification, mapper: Mapper[Any]) -> EventRecord:
    return record_from_stored(
        notification.id,
        str(notification.originator_id),
        notification.originator_version,
        notification.topic,
        notification.state,
        mapper,
    )


def record_from_stored(
    position: int,
    originator_id: str,
    originator_version: int,
    topic: str,
    state: bytes,
    mapper: Mapper[Any],
) -> EventRecord:
    """Straight from the stored JSON where it can be (rebuilds, the relay and exports read
    every event); through the domain class when an event needs upcasting or a custom type."""
    context, name, versioned = _describe(topic)
    if not versioned and mapper.cipher is None and mapper.compressor is None:
        decoded = plain_state(state)
        if decoded is not None and "class_version" not in decoded[0]:
            data, meta = decoded
            recorded_at = data.pop("timestamp")
            for hidden in _HIDDEN:
                data.pop(hidden, None)
            return EventRecord(
                position,
                originator_id,
                originator_version,
                topic,
                context,
                name,
                meta["occurred_at"],
                recorded_at,
                meta["actor"],
                meta["source"],
                meta["correlation_id"],
                meta["causation_id"],
                data,
            )
    return to_record_via_domain(
        Notification(
            id=position,
            originator_id=UUID(originator_id),
            originator_version=originator_version,
            topic=topic,
            state=state,
        ),
        mapper,
    )


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
