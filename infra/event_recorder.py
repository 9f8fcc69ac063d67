"""The PostgreSQL event recorder: eventsourcing's locked insert, in one statement.

eventsourcing's `PostgresApplicationRecorder` appends a transaction's events with
`SET LOCAL lock_timeout`, `LOCK TABLE ... IN EXCLUSIVE MODE` (so notification ids commit in
the order they were issued), `NOTIFY` and `INSERT ... SELECT ... FROM unnest(%s::
stored_event_uuid[]) RETURNING notification_id`, pipelined, then `COMMIT`. Two things made
that slow here:
- the parameter is one array of composite values that psycopg writes out as text in Python,
  quoting every byte of every event's state (measured: ~9k rows/s, against ~45k rows/s for
  the same rows as four binary arrays, same table, same lock, same RETURNING);
- the table lock is taken in one round trip and released by `COMMIT`, sent in the next:
  between the two it is held while the client process reads the answer and sends the commit.
  In a Python process with dozens of request threads that is a wait for the GIL, and every
  other writer queues behind it (seen under order pushes: ~5 backends waiting on the lock
  while its holder sat `idle in transaction`, ~90 commits/s whatever the CPU left).

`ColumnArraysRecorder` sends the rows as four binary column arrays to a function of its own,
`<table>_insert_<uuid|text>(ids, versions, topics, states, lock_timeout)`, which does the
same four steps (`SET LOCAL lock_timeout`, the same lock, `NOTIFY` on the same channel, the
insert returning the notification ids in order) inside one statement on an autocommit
connection: one round trip, and the lock lives exactly as long as the server needs it. A
duplicate (originator id, version) still fails the statement with the same integrity error,
which eventsourcing turns into a concurrency conflict. Everything else (table, indexes,
reads, retries) is eventsourcing's own. The function is created with the tables (under the
schema lock, see `infra.db.schema_lock`). It is selected by `APPLICATION_RECORDER_TOPIC` in
`Settings.event_store_env()`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from infra import integrity

TOPIC = "infra.event_recorder:ColumnArraysRecorder"


class ColumnArraysRecorder(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        id_type = "uuid" if datastore.originator_id_type == "uuid" else "text"
        self._ids_as_text = id_type == "text"
        function = f"{self.events_table_name.replace('.', '_')}_insert_{id_type}"
        self.check_identifier_length(function)
        schema, table = Identifier(datastore.schema), Identifier(self.events_table_name)
        # The seals of infra/integrity.py: written by the same statement, under the same lock,
        # so that a record without its seal was not written by scrm.
        for statement in (*integrity.ddl("postgres"), integrity.head_row_sql("postgres")):
            self.sql_create_statements.append(SQL(statement))  # type: ignore[arg-type]
        ident_bytes = (
            "uuid_send(r.originator_id)"
            if id_type == "uuid"
            else ("convert_to(r.originator_id, 'UTF8')")
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}(ids {id_type}[],"
                " versions bigint[], topics text[], states bytea[], wait text)"
                " RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$"
                " DECLARE"
                "  r record; d bytea; c bytea; t bytea;"
                "  ps bigint[] := '{{}}'; ds bytea[] := '{{}}'; cs bytea[] := '{{}}';"
                " BEGIN"
                "  PERFORM set_config('lock_timeout', wait, true);"
                "  LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE;"
                "  NOTIFY {channel};"
                "  SELECT chain INTO c FROM {schema}.{head} WHERE id = 1 FOR UPDATE;"
                "  FOR r IN WITH ins AS ("
                "   INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
                "   SELECT * FROM unnest(ids, versions, topics, states)"
                "   RETURNING notification_id, originator_id, originator_version, topic, state)"
                "  SELECT * FROM ins ORDER BY notification_id"
                "  LOOP"
                "   t := convert_to(r.topic, 'UTF8');"
                "   d := sha256({ident_bytes} || int8send(r.originator_version)"
                "    || int4send(octet_length(t)) || t || r.state);"
                "   c := sha256('\\x01'::bytea || c || int8send(r.notification_id) || d);"
                "   ps := ps || r.notification_id; ds := ds || d; cs := cs || c;"
                "   RETURN NEXT r.notification_id;"
                "  END LOOP;"
                "  INSERT INTO {schema}.{seals} (position, digest, chain)"
                "   SELECT * FROM unnest(ps, ds, cs);"
                "  UPDATE {schema}.{head} SET position = ps[array_length(ps, 1)],"
                "   size = size + array_length(ps, 1), chain = c WHERE id = 1;"
                " END;"
                " $BODY$"
            ).format(
                schema=schema,
                function=Identifier(function),
                id_type=SQL(id_type),
                table=table,
                channel=Identifier(self.channel_name),
                head=Identifier(integrity.HEAD),
                seals=Identifier(integrity.SEALS),
                ident_bytes=SQL(ident_bytes),  # type: ignore[arg-type]
            )
        )
        self.insert_call = SQL(
            "SELECT notification_id FROM {schema}.{function}"
            "(%b::{id_type}[], %b::bigint[], %b::text[], %b::bytea[], %s) AS notification_id"
        ).format(schema=schema, function=Identifier(function), id_type=SQL(id_type))
        self._lock_timeout = f"{datastore.lock_timeout}s"

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        ids = [e.originator_id for e in stored_events]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            assert conn.autocommit  # one statement, one transaction
            curs.execute(
                self.insert_call,
                (
                    [str(i) for i in ids] if self._ids_as_text else ids,
                    [e.originator_version for e in stored_events],
                    [e.topic for e in stored_events],
                    [e.state for e in stored_events],
                    self._lock_timeout,
                ),
                prepare=True,
            )
            return [row["notification_id"] for row in curs.fetchall()]


class SealingSQLiteRecorder(SQLiteApplicationRecorder):
    """The embedded store's recorder: eventsourcing's own, plus the seals of
    infra/integrity.py written in the same transaction (which holds SQLite's write lock from
    its first insert, so no other writer's seals can interleave)."""

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *integrity.ddl("sqlite"),
            integrity.head_row_sql("sqlite"),
        ]

    def _insert_events(
        self, c: Any, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if positions:
            integrity.seal(
                c,
                [
                    (p, e.originator_id, e.originator_version, e.topic, e.state)
                    for p, e in zip(positions, stored_events, strict=True)
                ],
            )
        return positions
