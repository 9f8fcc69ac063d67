"""What an auditor asks of the log: one aggregate's history, its state as it was, what changed
between two versions, and everything one request or callback caused.

Events are read from the store itself (the `audit` read model only says where they are), and
shown as stored: personal data stays sealed, as every event holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification

from domain.shared import InvalidInput, NotFound
from infra.events import EventRecord, dumps, sortable_time, to_record
from projections.audit import audit as index

if TYPE_CHECKING:
    from infra.bootstrap import Container


def _record(r: EventRecord) -> dict[str, Any]:
    return {
        "position": r.position,
        "aggregate_id": r.originator_id,
        "version": r.originator_version,
        "event": r.name,
        "context": r.context,
        "occurred_at": r.occurred_at,
        "recorded_at": r.recorded_at,
        "actor": r.actor,
        "source": r.source,
        "correlation_id": r.correlation_id,
        "causation_id": r.causation_id,
        "data": r.data,
    }


def _aggregate_id(value: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidInput("the aggregate id must be a UUID", field="aggregate_id") from None


def history(c: Container, aggregate_id: str) -> list[dict[str, Any]]:
    """Every event of one aggregate, oldest first, with both times and the whole envelope."""
    ident = _aggregate_id(aggregate_id)
    positions = {v: p for v, p, _ in index.positions_of(c.read_db, str(ident))}
    stored = c.customers.recorder.select_events(ident)
    if not stored:
        raise NotFound(f"aggregate {aggregate_id} not found")
    out = []
    for s in stored:
        notification = Notification(
            id=positions.get(s.originator_version, 0),
            originator_id=s.originator_id,
            originator_version=s.originator_version,
            topic=s.topic,
            state=s.state,
        )
        out.append(_record(to_record(notification, c.customers.mapper)))
    return out


@dataclass(frozen=True)
class State:
    aggregate_id: str
    type: str
    version: int
    recorded_at: str
    state: dict[str, Any]


def _version_at(c: Container, ident: UUID, as_of: datetime) -> int:
    at = sortable_time(as_of)
    known = [v for v, _, recorded in index.positions_of(c.read_db, str(ident)) if recorded <= at]
    if not known:
        raise NotFound(f"aggregate {ident} did not exist yet at {at}")
    return max(known)


def state(
    c: Container, aggregate_id: str, *, version: int | None = None, as_of: datetime | None = None
) -> State:
    """The aggregate as it was after `version`, or as the store held it at `as_of` (recorded
    time: what the system knew then); the latest without either."""
    ident = _aggregate_id(aggregate_id)
    if version is not None and as_of is not None:
        raise InvalidInput("ask for a version or a time, not both", field="version")
    if as_of is not None:
        version = _version_at(c, ident, as_of)
    try:
        aggregate: Any = c.customers.repository.get(ident, version=version)
    except Exception:  # eventsourcing: AggregateNotFoundError, or a version past the last
        raise NotFound(
            f"aggregate {aggregate_id} has no version {version}"
            if version is not None
            else f"aggregate {aggregate_id} not found"
        ) from None
    if version is not None and aggregate.version != version:
        raise NotFound(f"aggregate {aggregate_id} has no version {version}")
    fields = {
        k.lstrip("_"): v
        for k, v in vars(aggregate).items()
        if k not in ("_pending_events", "_id", "_version", "_created_on", "_modified_on")
    }
    return State(
        aggregate_id=str(ident),
        type=type(aggregate).__qualname__,
        version=aggregate.version,
        recorded_at=sortable_time(aggregate.modified_on),
        state=orjson.loads(dumps(fields)),
    )


def diff(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Field by field: what a later version added, removed and changed (old, new)."""
    return {
        "added": {k: after[k] for k in sorted(set(after) - set(before))},
        "removed": {k: before[k] for k in sorted(set(before) - set(after))},
        "changed": {
            k: {"from": before[k], "to": after[k]}
            for k in sorted(set(before) & set(after))
            if before[k] != after[k]
        },
    }


def correlation(c: Container, correlation_id: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Every event one request or callback caused, across aggregates, in log order."""
    out = []
    for position in index.correlated(c.read_db, correlation_id, limit):
        found = c.read_log(position - 1, 1)
        if found and found[0].position == position:
            out.append(_record(found[0]))
    return out
