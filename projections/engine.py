"""Applies events to read models exactly once: rows and position in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from infra.checkpoints import Checkpoints
from infra.db import Database
from infra.events import EventRecord
from projections.base import Projection


class NotCaughtUp(Exception):
    """Read-your-writes timed out (HTTP 503 with the lag)."""

    def __init__(self, wanted: int, positions: dict[str, int]):
        super().__init__(f"read models have not reached position {wanted}")
        self.wanted = wanted
        self.positions = positions


class ProjectionEngine:
    def __init__(self, db: Database, projections: Sequence[Projection]):
        self.db = db
        self.projections = {p.name: p for p in projections}
        # Called after each batch that applied something has committed (the segment
        # evaluator follows the read models this way).
        self.on_applied: list[Callable[[], object]] = []
        self.checkpoints = Checkpoints(db, "projection_positions", list(self.projections))
        # Which shape of each read model's tables is stored. A read model whose handlers now
        # write a different shape (schema_version went up) must be replayed from the log: the
        # composition root does that before anything reads or writes it.
        self.schemas = Checkpoints(db, "projection_schemas")
        stored = self.schemas.all()
        # (Tables from before versions were recorded are version 1; on a new database a
        # stale read model's replay is of an empty log.)
        self.stale = [p.name for p in projections if stored.get(p.name, 1) < p.schema_version]
        with db.transaction() as cur:
            for p in projections:
                if p.name not in self.stale:
                    p.create(cur)
                    self.schemas.ensure(cur, p.name)
                    self.schemas.advance(cur, p.name, p.schema_version)

    def still_stale(self) -> list[str]:
        """Re-read under the schema lock: another process may have replayed them meanwhile."""
        stored = self.schemas.all()
        return [n for n in self.stale if stored.get(n, 1) < self.projections[n].schema_version]

    def positions(self) -> dict[str, int]:
        found = self.checkpoints.all()
        return {name: found.get(name, 0) for name in self.projections}

    def low_water_mark(self) -> int:
        return min(self.positions().values(), default=0)

    def apply_batch(
        self,
        records: Sequence[EventRecord],
        also: Callable[[Any], None] | None = None,
        only: Iterable[str] | None = None,
    ) -> int:
        """Apply a batch in order; events at or below a projection's position are skipped,
        so redeliveries and re-published duplicates change nothing. `also` runs in the same
        transaction (the projector moves its stream cursor there). Returns events applied."""
        names = list(only) if only is not None else list(self.projections)
        try:
            with self.db.transaction(pipeline=True) as cur:
                # Every position in one statement: one round trip each was most of what a
                # small batch (a push's three events) cost.
                lasts = self.checkpoints.lock_many(cur, names)
                moved: dict[str, int] = {}
                applied = sum(self._apply(cur, name, records, lasts[name], moved) for name in names)
                self.checkpoints.advance_many(cur, moved)
                if also is not None:
                    also(cur)
        except BaseException:
            self._forget(names)
            raise
        if applied:
            for listener in self.on_applied:
                listener()
        return applied

    def _apply(
        self,
        cur: Any,
        name: str,
        records: Sequence[EventRecord],
        last: int | None = None,
        moved: dict[str, int] | None = None,
    ) -> int:
        """`last`: the position, when the caller has locked it already; `moved`: where to
        note the new position for the caller to advance (with the others at once)."""
        projection = self.projections[name]
        if last is None:
            last = self.checkpoints.lock(cur, name)
        applied = 0
        for record in records:
            if record.position <= last:
                continue
            projection.apply(record, cur)
            last = record.position
            applied += 1
        if applied:
            projection.flush(cur)  # rows it held back for one statement per batch
        if applied and moved is not None:
            moved[name] = last
        elif applied:
            self.checkpoints.advance(cur, name, last)
        return applied

    def rebuild(
        self,
        names: str | Sequence[str],
        batches: Iterable[Sequence[EventRecord]],
        progress: Callable[[int], Any] | None = None,
    ) -> int:
        """Drop read models and replay them from the start, reading the log once for all of
        them, in one transaction: readers see the old models until the new ones are complete,
        and a live projector waits."""
        chosen = [names] if isinstance(names, str) else list(names)
        if not chosen:
            return 0
        total = 0
        self._forget(chosen)
        try:
            total = self._rebuild(chosen, batches, progress)
        except BaseException:
            self._forget(chosen)
            raise
        if any(n in self.stale for n in chosen):
            self.stale = [n for n in self.stale if n not in chosen]
        return total

    def _forget(self, names: Iterable[str]) -> None:
        for name in names:
            self.projections[name].forget()

    def _rebuild(
        self,
        chosen: list[str],
        batches: Iterable[Sequence[EventRecord]],
        progress: Callable[[int], Any] | None,
    ) -> int:
        total = 0
        with self.db.transaction(pipeline=True) as cur:
            self.checkpoints.lock_many(cur, chosen)  # in the order apply_batch locks them
            for name in chosen:
                self.projections[name].drop(cur)
                self.projections[name].create(cur)
                self.checkpoints.reset(cur, name)
                self.schemas.ensure(cur, name)
                self.schemas.advance(cur, name, self.projections[name].schema_version)
            if hasattr(cur, "sync"):  # PostgreSQL's pipeline: see _PgCursor.sync
                cur.sync()
            for batch in batches:
                for name in chosen:
                    self._apply(cur, name, batch)
                total += len(batch)
                if progress is not None:
                    progress(len(batch))
        return total

    def wait_for(self, position: int, timeout: float, names: Iterable[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        wanted = list(names) if names is not None else list(self.projections)
        while True:
            positions = self.positions()
            if all(positions[n] >= position for n in wanted):
                return
            if time.monotonic() >= deadline:
                raise NotCaughtUp(position, {n: positions[n] for n in wanted})
            time.sleep(0.01)
