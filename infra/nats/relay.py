"""The relay: the store's notification log is the outbox; JetStream is the bus.

It publishes every event in log order with `Nats-Msg-Id: scrm:<position>` and records how far
it got only after JetStream acknowledged. Killed at any moment, it restarts from its last
recorded position: anything published but not recorded is published again and JetStream's
de-duplication drops it. Nothing is skipped, because the position only moves past acks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import nats
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import NotFoundError

from infra.db import Database
from infra.events import EventRecord

log = logging.getLogger("scrm.relay")

RELAY_DDL = (
    "CREATE TABLE IF NOT EXISTS relay_positions (stream TEXT PRIMARY KEY, position BIGINT NOT NULL)"
)
DUPLICATE_WINDOW_SECONDS = 600.0


@dataclass
class RelayStats:
    published: int = 0
    duplicates: int = 0


async def ensure_stream(js: JetStreamContext, stream: str, prefix: str) -> None:
    try:
        await js.stream_info(stream)
    except NotFoundError:
        await js.add_stream(
            StreamConfig(
                name=stream,
                subjects=[f"{prefix}.>"],
                storage=StorageType.FILE,
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
        )


class Relay:
    def __init__(
        self,
        db: Database,
        read_log: Callable[[int, int], Sequence[EventRecord]],
        nats_url: str,
        stream: str,
        prefix: str,
        batch: int = 500,
        idle_wait: float = 0.05,
        wait_for_new: Callable[[float], None] | None = None,
    ):
        self.db = db
        self.read_log = read_log
        self.nats_url = nats_url
        self.stream = stream
        self.prefix = prefix
        self.batch = batch
        self.idle_wait = idle_wait
        # Blocks until the store signals new events (PostgreSQL LISTEN) or the timeout passes.
        self.wait_for_new = wait_for_new
        self.stats = RelayStats()
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        with db.transaction() as cur:
            cur.execute(RELAY_DDL)
            cur.execute(
                "INSERT INTO relay_positions (stream, position) VALUES (?, 0)"
                " ON CONFLICT (stream) DO NOTHING",
                (stream,),
            )

    def position(self) -> int:
        rows = self.db.query(
            "SELECT position FROM relay_positions WHERE stream = ?", (self.stream,)
        )
        return int(rows[0][0]) if rows else 0

    def _record(self, position: int) -> None:
        with self.db.transaction() as cur:
            # Never move backwards, even if two relays were started by mistake.
            cur.execute(
                "UPDATE relay_positions SET position = ? WHERE stream = ? AND position < ?",
                (position, self.stream, position),
            )

    async def publish_batch(self, js: JetStreamContext, records: Sequence[EventRecord]) -> None:
        """Publish in order, wait for every ack, then record the last position."""
        futures = [
            await js.publish_async(
                r.subject(self.prefix), r.body(), headers={"Nats-Msg-Id": r.msg_id}
            )
            for r in records
        ]
        acks = await asyncio.gather(*futures)
        self.stats.published += len(acks)
        self.stats.duplicates += sum(1 for a in acks if getattr(a, "duplicate", False))
        await asyncio.to_thread(self._record, records[-1].position)

    async def run(self, until_caught_up: bool = False) -> RelayStats:
        self._loop = asyncio.get_running_loop()
        stopping = self._stopping = asyncio.Event()
        nc = await nats.connect(self.nats_url, max_reconnect_attempts=-1)
        try:
            js = nc.jetstream(publish_async_max_pending=4000)
            await ensure_stream(js, self.stream, self.prefix)
            after = await asyncio.to_thread(self.position)
            while not stopping.is_set():
                records = await asyncio.to_thread(self.read_log, after, self.batch)
                if records:
                    await self.publish_batch(js, records)
                    after = records[-1].position
                    continue
                if until_caught_up:
                    break
                if self.wait_for_new is not None:
                    await asyncio.to_thread(self.wait_for_new, 0.5)
                else:
                    await asyncio.sleep(self.idle_wait)
        finally:
            await nc.close()
        return self.stats

    def stop(self) -> None:
        """Safe to call from any thread or a signal handler."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stopping.set)
