"""What an auditor asks of the log: one aggregate's history, its state as it was, what changed
between two versions, and everything one request or callback caused.

Events are read from the store itself (the `audit` read model only says where they are), and
shown as stored: personal data stays sealed, as every event holds it. A cleared reader (an
auditor or an admin) may ask to see it in clear, saying why: each sealed value is then opened
with the key that sealed it, and the read is recorded in the archive access log first, like any
read of archived content. The API and the command line both go through the `*_view`
functions here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification

from domain.conversations.aggregates import ACCESS_LOG_KEY, subject_key
from domain.shared import ERASED, Forbidden, InvalidInput, Meta, NotFound, derived_id
from infra.crypto import TOKEN_PREFIX
from infra.events import EventRecord, dumps, sortable_time, to_record
from projections.audit import audit as index

if TYPE_CHECKING:
    from infra.bootstrap import Container

CLEARED_ROLES = ("auditor", "admin")  # who may see personal data in the audit trail in clear
PURPOSE_LENGTH = (4, 200)


def envelope(r: EventRecord) -> dict[str, Any]:
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


def stored_records(
    c: Container, ident: UUID, positions: dict[int, int] | None = None
) -> list[EventRecord]:
    """One aggregate's events from the store, oldest first (positions from the index, when
    given; 0 otherwise)."""
    return [
        to_record(
            Notification(
                id=(positions or {}).get(s.originator_version, 0),
                originator_id=s.originator_id,
                originator_version=s.originator_version,
                topic=s.topic,
                state=s.state,
            ),
            c.customers.mapper,
        )
        for s in c.customers.recorder.select_events(ident)
    ]


def history(c: Container, aggregate_id: str) -> list[dict[str, Any]]:
    """Every event of one aggregate, oldest first, with both times and the whole envelope."""
    ident = _aggregate_id(aggregate_id)
    positions = {v: p for v, p, _ in index.positions_of(c.read_db, str(ident))}
    stored = stored_records(c, ident, positions)
    if not stored:
        raise NotFound(f"aggregate {aggregate_id} not found")
    return [envelope(r) for r in stored]


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
            out.append(envelope(found[0]))
    return out


# --- personal data in clear, for cleared roles, on record -----------------------------------


@dataclass(frozen=True)
class Reveal:
    """A cleared reader's request to see the personal data in clear, and why. The read is
    recorded (reader, role, purpose, what was asked) before anything is shown."""

    reader: str
    role: str
    purpose: str
    meta: Meta


def reveal_request(
    *, reveal: bool, purpose: str | None, reader: str, role: str, meta: Meta
) -> Reveal | None:
    """None when personal data is not asked for (it stays sealed); checked before anything is
    read, so a refusal reads and records nothing."""
    if not reveal:
        return None
    if role not in CLEARED_ROLES:
        raise Forbidden("personal data in the audit trail is shown in clear to auditors and admins")
    why = (purpose or "").strip()
    low, high = PURPOSE_LENGTH
    if not low <= len(why) <= high:
        raise InvalidInput(
            f"state the purpose of reading personal data ({low}-{high} characters); it is recorded",
            field="purpose",
        )
    return Reveal(reader=reader, role=role, purpose=why, meta=meta)


def history_view(c: Container, aggregate_id: str, reveal: Reveal | None = None) -> dict[str, Any]:
    """`history` as the API answers it; with `reveal`, personal data in clear (see `_open`)."""
    events = history(c, aggregate_id)
    body: dict[str, Any] = {"aggregate_id": aggregate_id, "events": events}
    if reveal is not None:
        ident = str(_aggregate_id(aggregate_id))
        candidates = candidate_keys(ident, [e["data"] for e in events])
        slots: list[Slot] = []
        for n, e in enumerate(events):
            sealed_slots(e["data"], f"events[{n}].data", candidates, slots)
        query = {"view": "audit.history", "aggregate_id": ident}
        body.update(_open(c, slots, reveal, query))
    return body


def state_view(
    c: Container,
    aggregate_id: str,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    diff_from: int | None = None,
    reveal: Reveal | None = None,
) -> dict[str, Any]:
    """`state` (by version or recorded time) with, on `diff_from`, what changed since that
    version; with `reveal`, personal data in clear in both (see `_open`)."""
    if as_of is not None and as_of.tzinfo is None:
        raise InvalidInput("as_of must include a timezone", field="as_of")
    found = state(c, aggregate_id, version=version, as_of=as_of)
    body: dict[str, Any] = {
        "aggregate_id": found.aggregate_id,
        "type": found.type,
        "version": found.version,
        "recorded_at": found.recorded_at,
        "state": found.state,
    }
    if diff_from is not None:
        if diff_from > found.version:
            raise InvalidInput(
                f"diff_from must be at most version {found.version}", field="diff_from"
            )
        before = state(c, aggregate_id, version=diff_from)
        body["diff"] = {"from": diff_from, **diff(before.state, found.state)}
    if reveal is not None:
        # Key ids from the whole history: a field that names one may be in an earlier event
        # only (or a later one: key ids are not personal data, whichever event says them).
        records = stored_records(c, UUID(found.aggregate_id))
        candidates = candidate_keys(found.aggregate_id, [*(r.data for r in records), found.state])
        slots: list[Slot] = []
        sealed_slots(body["state"], "state", candidates, slots)
        if "diff" in body:
            sealed_slots(body["diff"], "diff", candidates, slots)
        asked = {"version": version, "as_of": as_of and as_of.isoformat(), "diff_from": diff_from}
        query = {
            "view": "audit.state",
            "aggregate_id": found.aggregate_id,
            **{k: str(v) for k, v in asked.items() if v is not None},
        }
        body.update(_open(c, slots, reveal, query))
    return body


def correlation_view(
    c: Container, correlation_id: str, reveal: Reveal | None = None, limit: int = 1000
) -> dict[str, Any]:
    """`correlation` as the API answers it; with `reveal`, personal data in clear, each value
    opened by what its own aggregate's history names (see `_open`)."""
    events = correlation(c, correlation_id, limit)
    body: dict[str, Any] = {"correlation_id": correlation_id, "events": events}
    if reveal is not None:
        sealed = {e["aggregate_id"] for e in events if sealed_slots(e["data"], "", (), [])}
        candidates = {
            a: candidate_keys(a, [r.data for r in stored_records(c, UUID(a))])
            for a in sorted(sealed)
        }
        slots: list[Slot] = []
        for n, e in enumerate(events):
            if e["aggregate_id"] in candidates:
                sealed_slots(e["data"], f"events[{n}].data", candidates[e["aggregate_id"]], slots)
        query = {"view": "audit.correlation", "correlation_id": correlation_id}
        body.update(_open(c, slots, reveal, query))
    return body


@dataclass
class Slot:
    """Where one sealed value sits in an answer, and the key ids that may open it."""

    holder: Any  # the dict or list that holds it
    key: str | int
    path: str  # e.g. events[0].data.summary
    token: str
    candidates: tuple[UUID, ...]
    msgid: str | None = None  # the archived message whose content it is
    aggregate_id: str = ""  # whose history names more candidate keys, if these fail


def sealed_slots(
    value: Any, path: str, candidates: tuple[UUID, ...], out: list[Slot], aggregate: str = ""
) -> list[Slot]:
    """Every sealed value under `value`, with its path (and whose aggregate's it is). Paths
    are built only where a sealed value is found or a container entered: exports walk every
    event with this."""
    is_dict = isinstance(value, dict)
    if is_dict:
        entries: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list):
        entries = enumerate(value)
    else:
        return out
    for k, v in entries:
        if isinstance(v, str):
            if v.startswith(TOKEN_PREFIX):
                # An archived message's content: the access log names the message.
                msgid = value.get("msgid") if is_dict and k == "sealed" else None
                out.append(
                    Slot(
                        value,
                        k,
                        _step(path, k, is_dict),
                        v,
                        candidates,
                        msgid if isinstance(msgid, str) else None,
                        aggregate,
                    )
                )
        elif isinstance(v, dict | list):
            sealed_slots(v, _step(path, k, is_dict), candidates, out, aggregate)
    return out


def _step(path: str, key: str | int, in_dict: bool) -> str:
    if not in_dict:
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def candidate_keys(aggregate_id: str, values: Iterable[Any]) -> tuple[UUID, ...]:
    """The key ids that may have sealed an aggregate's personal data. The id of a sealed
    value's key is not recorded beside it; by context it is (see docs/audit.md):
    - the aggregate's own id (a customer's phones, a payee's payout account);
    - `derived_id("subject", f"ticket:{id}")` (a ticket without a customer);
    - any UUID in its events (a ticket's `customer_id`, a merged phone's `sealed_for`);
    - `derived_id("subject", s)` for a `subject` or each of `subjects` (archived messages,
      orders' receivers), for the subject of a conversation named by `sender`, `recipients`
      and `room_id` (compliance alerts' notes), and for the archive access log's own subject
      beside a `keyword` (what a read searched for).
    A wrong candidate costs a failed authentication, never a wrong plaintext."""
    ident = UUID(aggregate_id)
    found: dict[UUID, None] = dict.fromkeys([ident, derived_id("subject", f"ticket:{ident}")])
    for value in values:
        _collect(value, found)
    return tuple(found)


def _collect(value: Any, found: dict[UUID, None]) -> None:
    if isinstance(value, dict):
        if "keyword" in value:  # an archive read's search: sealed under the log's own key
            found.setdefault(ACCESS_LOG_KEY)
        subjects = value.get("subjects")
        for s in [value.get("subject"), *(subjects if isinstance(subjects, list) else [])]:
            if isinstance(s, str) and s:
                found.setdefault(derived_id("subject", s))
        sender, recipients, room = (
            value.get("sender"),
            value.get("recipients"),
            value.get("room_id"),
        )
        if isinstance(sender, str) and isinstance(recipients, list) and isinstance(room, str):
            to = [r for r in recipients if isinstance(r, str)]
            found.setdefault(derived_id("subject", subject_key(sender, to, room)))
        for v in value.values():
            _collect(v, found)
    elif isinstance(value, list):
        for v in value:
            _collect(v, found)
    elif isinstance(value, str) and len(value) == 36 and value[8:9] == "-":
        with contextlib.suppress(ValueError):  # not a UUID after all
            found.setdefault(UUID(value))


def _open(c: Container, slots: list[Slot], reveal: Reveal, query: dict[str, str]) -> dict[str, Any]:
    """Each sealed value replaced by its plaintext (opened by the candidate whose key
    authenticates it), by ERASED when its key was destroyed, or left sealed when no candidate
    opens it; then the read recorded in the archive access log (with the archived messages
    whose content was shown), so nothing is shown unrecorded. One key-store round trip."""
    opened = c.vault.open_with_any([(s.token, s.candidates) for s in slots]) if slots else []
    revealed: list[str] = []
    erased: list[str] = []
    unopened: list[str] = []
    msgids: list[str] = []
    for slot, (plain, gone) in zip(slots, opened, strict=True):
        if plain is not None:
            slot.holder[slot.key] = plain
            revealed.append(slot.path)
            if slot.msgid is not None and slot.msgid not in msgids:
                msgids.append(slot.msgid)
        elif gone:
            slot.holder[slot.key] = ERASED
            erased.append(slot.path)
        else:
            unopened.append(slot.path)
    position = c.conversations.record_access(
        reader=reveal.reader,
        role=reveal.role,
        purpose=reveal.purpose,
        query=query,
        message_ids=msgids,
        meta=reveal.meta,
    )
    return {
        "revealed": revealed,
        "erased": erased,
        "unopened": unopened,
        "access_position": position,
    }
