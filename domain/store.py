"""The base application every context uses: one shared store, so one log of positions."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    InfrastructureFactory,
    InterfaceError,
    JSONTranscoder,
    OperationalError,
    RecordConflictError,
    Transcoder,
    Transcoding,
)
from eventsourcing.utils import Environment, retry

from domain.inbox import InboxOutcome, InboxReceipt
from domain.shared import (
    ConcurrentUpdate,
    Conflict,
    Meta,
    NotFound,
    Recorded,
    require_aware,
    require_slug,
)
from domain.transcoding import OrjsonTranscoder

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

    def __init__(
        self, env: dict[str, str] | None = None, *, share_with: ScrmApplication | None = None
    ):
        # Every context appends to the one log, so one process needs one connection pool:
        # an application built `share_with` another uses that one's infrastructure.
        self._shared_factory = share_with.factory if share_with is not None else None
        self._shared_recorder = share_with.recorder if share_with is not None else None
        super().__init__(env)
        self.on_recorded: list[Callable[[int], None]] = []

    def construct_factory(self, env: Environment) -> InfrastructureFactory:  # type: ignore[type-arg]
        if self._shared_factory is not None:
            return self._shared_factory
        return super().construct_factory(env)

    def construct_recorder(self) -> Any:
        # The one log has one recorder: made (and its tables checked) once, not per context.
        if self._shared_recorder is not None:
            return self._shared_recorder
        return super().construct_recorder()

    def close(self) -> None:
        """The application that made the infrastructure closes it; the others leave it."""
        if self._shared_factory is None:
            super().close()
        else:
            self.closing.set()

    def construct_transcoder(self) -> Transcoder:
        """eventsourcing's JSON transcoder, encoding through orjson (domain/transcoding.py:
        the same stored JSON in about two thirds of the time)."""
        transcoder = self.factory.transcoder()
        if type(transcoder) is JSONTranscoder:
            transcoder = OrjsonTranscoder()
        if isinstance(transcoder, JSONTranscoder):
            self.register_transcodings(transcoder)
        return transcoder

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

    def save_aggregates(self, aggregates: Iterable[Any]) -> int | None:
        """`save_all` for a bulk command's many aggregates (archive ingest: thousands per
        transaction). The same steps as eventsourcing's `Application.save`, minus the two
        runtime `Protocol` isinstance checks it makes on every object (tens of µs each on
        Python 3.11, more than the rest of collecting): these are known to be aggregates."""
        processing = ProcessingEvent[UUID]()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        try:
            recordings = self._record(processing)
        except RecordConflictError:
            raise ConcurrentUpdate(
                "another change to the same record was saved first; reload and try again"
            ) from None
        self._take_snapshots(processing)
        self._notify(recordings)
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

    def existing(self, aggregate_ids: Iterable[UUID]) -> set[UUID]:
        """Which of these aggregates have events in the store: one `SELECT ... = ANY(...)` on
        PostgreSQL, one `IN (...)` per 500 ids on SQLite, instead of one query per aggregate.
        For bulk commands that must tell new records from known ones (archive ingest)."""
        wanted = list(dict.fromkeys(aggregate_ids))
        if not wanted:
            return set()
        recorder: Any = self.recorder
        table = getattr(recorder, "events_table_name", None)
        datastore = getattr(recorder, "datastore", None)
        kind = type(datastore).__name__
        if table and kind == "PostgresDatastore":
            return _existing_postgres(recorder, wanted)
        if table and kind == "SQLiteDatastore":
            return _existing_sqlite(recorder, wanted)
        # Any other recorder (in-memory): one lookup per id, through its public API.
        return {i for i in wanted if recorder.select_events(i, limit=1)}

    def publish_version(
        self,
        cls: Any,
        key: str,
        definition: Any,
        *,
        parse: Callable[[Any], object],
        effective_from: datetime,
        expected_version: int | None,
        meta: Meta,
    ) -> Recorded:
        """The next version of a keyed configuration (`domain.shared.Versions`: a rule set, a
        price strategy); the first publishes it. `parse` checks the definition first (422
        naming the part at fault, nothing recorded). `expected_version` is the version the
        caller last saw (0: none yet): another change in between is a 409."""
        require_slug(key, "key")
        parse(definition)
        when = require_aware(effective_from, "effective_from")
        assert when is not None

        def attempt() -> Recorded:
            found = self.find(cls, cls.create_id(key))
            current = found.current_version if found is not None else 0
            if expected_version is not None and expected_version != current:
                raise Conflict(
                    f"{cls.WHAT} {key} is at version {current}, not {expected_version}",
                    code="stale_version",
                )
            if found is None:
                found = cls(
                    key=key, definition=definition, effective_from=effective_from, meta=meta
                )
            else:
                found.revise(definition, effective_from, meta)
            return Recorded(key, self.save_all(found), found.current_version)

        return self.retrying(attempt)

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


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
def _existing_postgres(recorder: Any, ids: list[UUID]) -> set[UUID]:
    from psycopg.sql import SQL, Identifier

    datastore = recorder.datastore
    statement = SQL(
        "SELECT DISTINCT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%b)"
    ).format(schema=Identifier(datastore.schema), table=Identifier(recorder.events_table_name))
    as_text = datastore.originator_id_type == "text"
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute(statement, ([str(i) for i in ids] if as_text else ids,), prepare=True)
        rows = curs.fetchall()
    return {
        r["originator_id"] if isinstance(r["originator_id"], UUID) else UUID(r["originator_id"])
        for r in rows
    }


_SQLITE_CHUNK = 500  # well under SQLite's bound on parameters per statement


def _existing_sqlite(recorder: Any, ids: list[UUID]) -> set[UUID]:
    found: set[UUID] = set()
    table = recorder.events_table_name
    with recorder.datastore.transaction(commit=False) as curs:
        for start in range(0, len(ids), _SQLITE_CHUNK):
            chunk = [i.hex for i in ids[start : start + _SQLITE_CHUNK]]
            curs.execute(
                f"SELECT DISTINCT originator_id FROM {table}"
                f" WHERE originator_id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update(UUID(row[0]) for row in curs.fetchall())
    return found
