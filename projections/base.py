"""A read model: its tables (prefixed with its name), its event handlers, its queries.

Handlers dispatch on the business name of the event class, so the code that follows the
store in embedded mode and the code that follows JetStream in server mode is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from domain.shared import event_name
from infra.db import Database
from infra.events import EventRecord

Handler = Callable[[Any, EventRecord, Any], None]


def handles(aggregate: type, *events: str) -> Callable[[Handler], Handler]:
    """`@handles(Customer, "Tagged")`: the event classes are looked up now, so a typo fails
    at import rather than silently never matching."""
    names = []
    for name in events:
        event_class = getattr(aggregate, name, None)
        if not isinstance(event_class, type):
            raise TypeError(f"{aggregate.__name__} has no event {name!r}")
        names.append(event_name(event_class))

    def mark(func: Handler) -> Handler:
        func._handles = tuple(names)  # type: ignore[attr-defined]
        return func

    return mark


class Projection:
    name: ClassVar[str]
    ddl: ClassVar[tuple[str, ...]]  # CREATE TABLE/INDEX IF NOT EXISTS, portable SQL
    tables: ClassVar[tuple[str, ...]]  # dropped on rebuild, children first
    # Raise when the handlers start writing a shape that older rows lack and cannot be derived
    # from them: on start-up the read model is replayed from the log (see engine.stale).
    schema_version: ClassVar[int] = 1
    _handlers: ClassVar[dict[str, Handler]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._handlers = {}
        for attr in vars(cls).values():
            for name in getattr(attr, "_handles", ()):
                cls._handlers[name] = attr
        for table in cls.tables:
            assert table.startswith(cls.name + "_"), f"{table} must be prefixed {cls.name}_"

    def __init__(self) -> None:
        # What handlers hold back to write once per batch (`flush`): rows only written while
        # projecting, and counters only added to.
        self.held = Held()
        self.tallies = Tallies()

    def bind(self, vault: Any) -> None:
        """Given the vault by the composition root; only read models that decrypt use it."""

    def forget(self) -> None:
        """Drop what handlers remember between events (caches of rows they wrote): called when
        a batch rolls back or the read model is rebuilt, so nothing of it outlives its rows."""
        self.held.clear()
        self.tallies.clear()

    def flush(self, cur: Any) -> None:
        """Write what handlers held back to write at once; called at the end of each batch,
        in its transaction (a read model whose handlers write one row per event each way
        can save most of its statements)."""
        self.held.write(cur)
        self.tallies.write(cur)

    def handles_event(self, name: str) -> bool:
        return name in self._handlers

    def apply(self, record: EventRecord, cur: Any) -> None:
        handler = self._handlers.get(record.name)
        if handler is not None:
            handler(self, record, cur)

    def create(self, cur: Any) -> None:
        for statement in self.ddl:
            cur.execute(statement)

    def drop(self, cur: Any) -> None:
        for table in self.tables:
            cur.execute(f"DROP TABLE IF EXISTS {table}")


class Held:
    """Rows held back to one `executemany` per statement per batch (`Projection.flush`):
    for rows that handlers only write while projecting, one statement each way per event
    was most of what projecting them cost. A handler that reads such a table writes first."""

    def __init__(self) -> None:
        self._rows: dict[str, list[Sequence[Any]]] = {}

    def add(self, statement: str, row: Sequence[Any]) -> None:
        self._rows.setdefault(statement, []).append(row)

    def write(self, cur: Any) -> None:
        for statement, rows in self._rows.items():  # in the order first held
            cur.executemany(statement, rows)
        self._rows = {}

    def clear(self) -> None:
        self._rows = {}


@dataclass(frozen=True)
class Counter:
    """A rollup table of counters that events only add to: its upsert, which adds
    `excluded` values to the stored ones, and how many leading columns are its key."""

    table: str
    keys: tuple[str, ...]
    columns: tuple[str, ...]

    @property
    def statement(self) -> str:
        cols = (*self.keys, *self.columns)
        adds = ", ".join(f"{c} = {self.table}.{c} + excluded.{c}" for c in self.columns)
        return (
            f"INSERT INTO {self.table} ({', '.join(cols)})"
            f" VALUES ({', '.join('?' * len(cols))})"
            f" ON CONFLICT ({', '.join(self.keys)}) DO UPDATE SET {adds}"
        )


class Tallies:
    """Counter rows summed in memory while a batch is applied and written once at its end
    (`Projection.flush`): one upsert per row touched instead of one per event. Counters
    are only added to, never read back while projecting, so the sum is all that counts."""

    def __init__(self) -> None:
        self._sums: dict[Counter, dict[tuple[Any, ...], list[int]]] = {}

    def add(self, counter: Counter, row: Sequence[Any]) -> None:
        """`row`: the key's values, then the amounts to add, in the counter's column order."""
        n = len(counter.keys)
        key = tuple(row[:n])
        sums = self._sums.setdefault(counter, {})
        found = sums.get(key)
        if found is None:
            sums[key] = [int(v) for v in row[n:]]
        else:
            for i, v in enumerate(row[n:]):
                found[i] += int(v)

    def write(self, cur: Any) -> None:
        for counter, sums in self._sums.items():
            cur.executemany(counter.statement, [(*key, *v) for key, v in sums.items()])
        self._sums = {}

    def clear(self) -> None:
        self._sums = {}


def select(
    db: Database,
    table: str,
    columns: list[str],
    where: list[str],
    params: list[object],
    *,
    order: str,
    limit: int,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Rows of one read-model table as dicts: the shape every query here shares."""
    rows = db.query(
        f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where) or '1=1'}"
        f" ORDER BY {order} LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]
