"""Read models as they stood at a time or a log position, rebuilt into a separate database.

An auditor asks "what did the ledger say at quarter end?" or "what did this portrait show on
the 3rd?". The answer is the read model replayed from the start of the log up to a cut: the
last position recorded at or before the time asked (recorded time: what the system knew then,
found in the `audit` read model's index), or a position given outright. The replay runs through
a ProjectionEngine of its own over the target database, with new projection instances, so the
live read models, their positions and their caches are never touched.

Every read model's handlers write and read only its own tables (tests/integration/
test_replay_cli.py replays each one alone), so any subset can be replayed. Its queries may
join others' (the orders dashboards read `portrait_identities`, the purchases profile reads
`orders_*` and `portrait_*`): replay those too when the target is to answer such a query.

The target records what it holds in `replay_info`, one row per read model: the cut, the time
asked, the head of the log then, when the replay started and finished (`replayed_at` empty:
interrupted). Personal data erased after the cut stays erased in the replay: the keys are
destroyed, so what was readable then cannot be read now (docs/replay.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from domain.shared import Conflict, DomainError, InvalidInput
from infra.db import Database, StoreUnavailable
from infra.events import EventRecord, sortable_time
from projections import all_projections
from projections.base import Projection
from projections.engine import ProjectionEngine

if TYPE_CHECKING:
    from infra.bootstrap import Container

INFO = "replay_info"
# Tables a replay target may hold besides the read models' own: the engine's bookkeeping and
# what the replay says of itself. Anything else means the target is not a replay target.
_BOOKKEEPING = frozenset({"projection_positions", "projection_schemas", INFO})

Progress = Callable[[int, int], object]  # (position reached, cut), after each batch


@dataclass(frozen=True)
class Cut:
    """Where a replay stops: the last position it applies."""

    position: int
    as_of: str | None  # the time asked (sortable UTC text), None when a position was given
    head: int  # the head of the log when the cut was taken
    # Events at or before the cut recorded after `as_of`: a recorded time is taken when the
    # command makes the event, a position when it is appended, so concurrent commits may land
    # a few milliseconds out of order (0 almost always; the count says so when they did).
    recorded_after: int = 0


@dataclass(frozen=True)
class ReplayResult:
    projections: tuple[str, ...]
    position: int  # the cut: every event up to and including it is applied
    as_of: str | None
    head: int
    events: int  # events read from the log and offered to the read models
    last_recorded_at: str | None  # recorded time of the last event applied; None: none was
    recorded_after: int = 0


class TargetUnreachable(DomainError):
    code = "target_unreachable"


def known_names() -> list[str]:
    return [p.name for p in all_projections()]


def unknown_names(names: Sequence[str]) -> list[str]:
    known = set(known_names())
    return [n for n in names if n not in known]


def target_url(target: str) -> str:
    """A postgresql:// URL as given; anything else is a SQLite file (its folder created)."""
    if target.startswith(("postgresql://", "postgres://", "sqlite:///")):
        return target
    path = Path(target).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def shown(target: str) -> str:
    """The target as it may be printed: a URL's password is not."""
    parts = urlsplit(target)
    if parts.scheme.startswith("postgres") and parts.password:
        host = parts.netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
        return urlunsplit(parts._replace(netloc=netloc))
    return target


def parse_as_of(value: str) -> datetime:
    """ISO-8601 with a timezone (a time without one is ambiguous: refused)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"--as-of {value!r} is not an ISO-8601 time (e.g. 2026-09-30T23:59:59+08:00)",
            field="as_of",
        ) from None
    if moment.tzinfo is None:
        raise InvalidInput(
            "--as-of needs a timezone (e.g. 2026-09-30T23:59:59+08:00 or ...Z)", field="as_of"
        )
    return moment


def cut_at(c: Container, as_of: datetime) -> Cut:
    """The last position whose recorded time is at or before `as_of`, from the audit index;
    events the index has not reached yet are read from the log itself."""
    if as_of.tzinfo is None:
        raise InvalidInput("--as-of needs a timezone", field="as_of")
    if as_of > datetime.now(UTC):
        raise InvalidInput(
            "--as-of is in the future: what the system will know then is not known yet",
            field="as_of",
        )
    at = sortable_time(as_of)
    head = c.head()
    indexed, cut, late = 0, 0, 0
    if "audit" in c.engine.projections:
        indexed = c.engine.positions()["audit"]
        rows = c.read_db.query(
            "SELECT MAX(position) FROM audit_index WHERE recorded_at <= ? AND position <= ?",
            (at, indexed),
        )
        cut = int(rows[0][0] or 0)
    tail: list[tuple[int, str]] = [
        (r.position, sortable_time(r.recorded_at))
        for batch in c.log_batches(after=indexed)
        for r in batch
    ]
    cut = max([cut, *(p for p, recorded in tail if recorded <= at)])
    if cut and indexed:
        rows = c.read_db.query(
            "SELECT COUNT(*) FROM audit_index WHERE position <= ? AND recorded_at > ?",
            (min(cut, indexed), at),
        )
        late = int(rows[0][0] or 0)
    late += sum(1 for p, recorded in tail if p <= cut and recorded > at)
    last = tail[-1][0] if tail else 0
    return Cut(position=cut, as_of=at, head=max(head, last), recorded_after=late)


def cut_of(c: Container, *, position: int | None, as_of: datetime | None) -> Cut:
    """Exactly one of a position and a time."""
    if (position is None) == (as_of is None):
        raise InvalidInput("give exactly one of --as-of and --position", field="as_of")
    if as_of is not None:
        return cut_at(c, as_of)
    assert position is not None
    head = c.head()
    if position < 0:
        raise InvalidInput("a position is 0 or more", field="position")
    if position > head:
        raise InvalidInput(
            f"position {position} is past the head of the log ({head})", field="position"
        )
    return Cut(position=position, as_of=None, head=head)


def choose(names: Sequence[str], vault: Any) -> list[Projection]:
    """New instances of the named read models (each once, in the order given), bound to the
    vault: the live ones and what they cache are not shared."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        raise InvalidInput("name at least one read model to replay", field="projection")
    unknown = unknown_names(wanted)
    if unknown:
        raise InvalidInput(
            f"unknown read model {unknown[0]!r}; known: {', '.join(known_names())}",
            field="projection",
        )
    fresh = {p.name: p for p in all_projections(vault)}
    chosen = [fresh[n] for n in wanted]
    for projection in chosen:
        projection.bind(vault)
    return chosen


def _tables(db: Database) -> set[str]:
    if db.dialect == "sqlite":
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    try:
        return {str(r[0]) for r in db.query(sql)}
    except StoreUnavailable:
        raise TargetUnreachable(
            "the target database cannot be reached (a PostgreSQL target must exist already:"
            " create it first, e.g. with createdb)",
            field="into",
        ) from None


def _same(a: str, b: str) -> bool:
    sqlite = "sqlite:///"
    if a.startswith(sqlite) and b.startswith(sqlite):
        return Path(a.removeprefix(sqlite)).resolve() == Path(b.removeprefix(sqlite)).resolve()
    return a == b


def _check_target(
    c: Container, into: Database, chosen: list[Projection], replace: bool
) -> set[str]:
    """Refuse a target that is not ours to write: the live read database, a store, anything
    holding tables other than replayed read models; and one that already holds these read
    models, unless told to replace them."""
    if any(_same(into.url, live.url) for live in (c.read_db, c.key_db)):
        raise Conflict(
            "the target is the live read database; replay into a separate one",
            field="into",
            code="target_is_live",
        )
    existing = {t for t in _tables(into) if not t.startswith("sqlite_")}
    ours = _BOOKKEEPING | {t for p in all_projections() for t in p.tables}
    foreign = sorted(existing - ours)
    if foreign:
        raise Conflict(
            f"the target holds tables that are not replayed read models ({', '.join(foreign[:5])}"
            f"{', ...' if len(foreign) > 5 else ''}): it is not a replay target; give an empty"
            " database or a new file",
            field="into",
            code="not_a_replay_target",
        )
    if existing and INFO not in existing:
        raise Conflict(
            "the target holds read models but no replay_info: it is not a replay target (a live"
            " read database, or a copy of one); give an empty database or a new file",
            field="into",
            code="not_a_replay_target",
        )
    recorded = (
        {str(n): int(p) for n, p in into.query(f"SELECT projection, cut_position FROM {INFO}")}
        if INFO in existing
        else {}
    )
    taken = [p.name for p in chosen if p.name in recorded or existing & set(p.tables)]
    if taken and not replace:
        held = ", ".join(
            f"{n} (cut at position {recorded[n]})" if n in recorded else n for n in taken
        )
        raise Conflict(
            f"the target already holds {held}; give --replace to replace them there, or"
            " another target",
            field="into",
            code="target_exists",
        )
    return existing


def _info_table(cur: Any) -> None:
    cur.execute(
        f"CREATE TABLE IF NOT EXISTS {INFO} ("
        " projection TEXT PRIMARY KEY, schema_version BIGINT NOT NULL,"
        " cut_position BIGINT NOT NULL, as_of TEXT, head BIGINT NOT NULL,"
        " recorded_after BIGINT NOT NULL, started_at TEXT NOT NULL,"
        " events BIGINT, last_recorded_at TEXT, replayed_at TEXT)"
    )


def _log_until(
    c: Container, cut: int, batch: int, seen: list[EventRecord], progress: Progress | None
) -> Iterator[list[EventRecord]]:
    """The log from its start up to and including `cut`, a batch at a time. Reports progress
    once a batch has been consumed (applied), and keeps the last record in `seen`."""
    after = 0
    if progress is not None:
        progress(0, cut)
    while after < cut:
        # Positions may have gaps, so a batch may reach past the cut: keep what is not.
        records = [r for r in c.read_log(after, min(batch, cut - after)) if r.position <= cut]
        if not records:
            return
        yield records
        after = records[-1].position
        seen[:] = records[-1:]
        if progress is not None:
            progress(after, cut)


def replay_as_of(
    c: Container,
    *,
    names: Sequence[str],
    position: int | None = None,
    as_of: datetime | None = None,
    into: Database,
    replace: bool = False,
    progress: Progress | None = None,
    batch: int = 1000,
) -> ReplayResult:
    """Rebuild the named read models into `into` as they stood at `as_of` (recorded time) or
    after `position`. The target must not hold them already unless `replace`. The log is
    applied in one transaction there, after what is replaced has been dropped and replay_info
    marked unfinished, so the target holds the whole replay or says it does not."""
    chosen = choose(names, c.vault)
    cut = cut_of(c, position=position, as_of=as_of)
    existing = _check_target(c, into, chosen, replace)
    started = sortable_time(datetime.now(UTC))
    # First what the target is to hold, unfinished, and away with what --replace replaces: a
    # replay interrupted from here on says so (replayed_at empty) and is still known as a
    # replay target, and replay_info never describes tables that hold another cut.
    with into.transaction() as cur:
        _info_table(cur)
        for p in chosen:
            p.drop(cur)
            if "projection_positions" in existing:
                cur.execute(
                    "UPDATE projection_positions SET position = 0 WHERE name = ?", (p.name,)
                )
            cur.execute(
                f"INSERT INTO {INFO} (projection, schema_version, cut_position, as_of, head,"
                " recorded_after, started_at, events, last_recorded_at, replayed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
                " ON CONFLICT (projection) DO UPDATE SET schema_version = excluded.schema_version,"
                " cut_position = excluded.cut_position, as_of = excluded.as_of,"
                " head = excluded.head, recorded_after = excluded.recorded_after,"
                " started_at = excluded.started_at, events = NULL, last_recorded_at = NULL,"
                " replayed_at = NULL",
                (
                    p.name,
                    p.schema_version,
                    cut.position,
                    cut.as_of,
                    cut.head,
                    cut.recorded_after,
                    started,
                ),
            )
    engine = ProjectionEngine(into, chosen)
    seen: list[EventRecord] = []
    names_chosen = [p.name for p in chosen]
    # Drops and creates the tables (replacing what --replace allowed), then applies every
    # batch, in one transaction.
    events = engine.rebuild(names_chosen, _log_until(c, cut.position, batch, seen, progress))
    last = sortable_time(seen[-1].recorded_at) if seen else None
    with into.transaction() as cur:
        cur.execute(
            f"UPDATE {INFO} SET events = ?, last_recorded_at = ?, replayed_at = ?"
            f" WHERE projection IN ({', '.join('?' * len(names_chosen))})",
            (events, last, sortable_time(datetime.now(UTC)), *names_chosen),
        )
    return ReplayResult(
        projections=tuple(names_chosen),
        position=cut.position,
        as_of=cut.as_of,
        head=cut.head,
        events=events,
        last_recorded_at=last,
        recorded_after=cut.recorded_after,
    )


def replay_info(db: Database) -> list[dict[str, Any]]:
    """What a replay target says it holds, one row per read model."""
    columns = [
        "projection",
        "schema_version",
        "cut_position",
        "as_of",
        "head",
        "recorded_after",
        "started_at",
        "events",
        "last_recorded_at",
        "replayed_at",
    ]
    rows = db.query(f"SELECT {', '.join(columns)} FROM {INFO} ORDER BY projection")
    return [dict(zip(columns, row, strict=True)) for row in rows]
